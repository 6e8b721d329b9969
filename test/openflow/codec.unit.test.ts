import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeFlowMod } from "../../src/openflow/flow-mod.js";
import { FrameStream } from "../../src/openflow/frame-stream.js";
import { negotiate } from "../../src/openflow/hello.js";
import { decodeMatch, encodeMatch } from "../../src/openflow/match.js";
import { encodeMessage, type Message } from "../../src/openflow/message.js";
import { encodePortMod } from "../../src/openflow/port-mod.js";
import { OFPP_NORMAL } from "../../src/openflow/ports.js";

test("a FLOW_MOD with an in_port match and one output is 88 bytes, fields where OpenFlow 1.3 puts them", () => {
  const b = encodeFlowMod(
    {
      command: "add",
      cookie: 0xabn,
      priority: 100,
      match: { inPort: 5 },
      actions: [{ output: OFPP_NORMAL }],
    },
    7,
  );
  assert.equal(b.length, 8 + 40 + 16 + 24);
  assert.deepEqual([b[0], b[1], b.readUInt16BE(2), b.readUInt32BE(4)], [4, 14, 88, 7]);
  assert.equal(b.readBigUInt64BE(8), 0xabn);
  assert.equal(b.readUInt16BE(30), 100);
  assert.equal(b.readUInt32BE(48 + 8), 5, "in_port value after the OXM header");
  assert.equal(b.readUInt32BE(64 + 8 + 4), OFPP_NORMAL);
  assert.throws(() => encodeFlowMod({ command: "add", cookie: -1n }, 1), /64-bit/);
});

test("matches round-trip; an empty match is 8 bytes", () => {
  assert.equal(encodeMatch({}).length, 8);
  assert.deepEqual(decodeMatch(encodeMatch({ inPort: 0xfffffff0 }), 0), {
    match: { inPort: 0xfffffff0 },
    bytes: 16,
  });
});

test("the frame stream splits messages across and within chunks, and refuses a length below the header", () => {
  const got: Message[] = [];
  const errors: Error[] = [];
  const s = new FrameStream(
    (m) => got.push(m),
    (e) => errors.push(e),
  );
  const a = encodeMessage(2, 1, Buffer.from("abc"));
  const b = encodeMessage(3, 2);
  const all = Buffer.concat([a, b]);
  for (const byte of all) s.push(Buffer.from([byte]));
  s.push(all);
  assert.deepEqual(
    got.map((m) => [m.type, m.xid, m.body.toString()]),
    [
      [2, 1, "abc"],
      [3, 2, ""],
      [2, 1, "abc"],
      [3, 2, ""],
    ],
  );
  s.push(Buffer.from([4, 0, 0, 4, 0, 0, 0, 0]));
  assert.equal(errors.length, 1);
});

test("version negotiation: bitmaps decide; without one the lower header version does", () => {
  const bitmap = (bits: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt16BE(1, 0);
    b.writeUInt16BE(8, 2);
    b.writeUInt32BE(bits, 4);
    return b;
  };
  assert.equal(negotiate(6, bitmap((1 << 1) | (1 << 4) | (1 << 6))), 4);
  assert.equal(negotiate(6, bitmap((1 << 1) | (1 << 6))), undefined);
  assert.equal(negotiate(1, Buffer.alloc(0)), undefined);
  assert.equal(negotiate(5, Buffer.alloc(0)), 4);
});

test("a PORT_MOD is 40 bytes and changes only OFPPC_PORT_DOWN; bad input is refused before any I/O", () => {
  const down = encodePortMod({ portNo: 7, hwAddr: "0a:1b:2c:3d:4e:5f", down: true }, 9);
  assert.equal(down.length, 40);
  assert.deepEqual([down[0], down[1], down.readUInt16BE(2), down.readUInt32BE(4)], [4, 16, 40, 9]);
  assert.equal(down.readUInt32BE(8), 7);
  assert.equal(down.subarray(16, 22).toString("hex"), "0a1b2c3d4e5f");
  assert.deepEqual([down.readUInt32BE(24), down.readUInt32BE(28), down.readUInt32BE(32)], [1, 1, 0]);
  const up = encodePortMod({ portNo: 7, hwAddr: "0a:1b:2c:3d:4e:5f", down: false }, 9);
  assert.deepEqual([up.readUInt32BE(24), up.readUInt32BE(28)], [0, 1]);
  assert.throws(() => encodePortMod({ portNo: 7, hwAddr: "nope", down: true }, 1), /not a MAC/);
  assert.throws(
    () => encodePortMod({ portNo: 0, hwAddr: "0a:1b:2c:3d:4e:5f", down: true }, 1),
    /not a physical port/,
  );
});
