import assert from "node:assert/strict";
import { test } from "node:test";
import {
  carries,
  dot1q,
  frameKinds,
  lacp,
  lldp,
  MIN_FRAME,
  newMarker,
  qinq,
  stp,
  untagged,
} from "../harness/frames.js";

const SRC = "02:00:00:00:00:01";
const DST = "02:00:00:00:00:02";

test("builders: addresses, ethertypes, tags, lengths, padding and the marker", () => {
  const m = newMarker("u");
  const hasMarker = carries(m);
  const t = dot1q(SRC, DST, 100, m);
  assert.equal(t.subarray(0, 12).toString("hex"), "020000000002020000000001");
  assert.deepEqual([t.readUInt16BE(12), t.readUInt16BE(14), t.readUInt16BE(16)], [0x8100, 100, 0x88b5]);
  const q = qinq(SRC, DST, 200, 201, m);
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((i) => q.readUInt16BE(12 + 2 * i)),
    [0x88a8, 200, 0x8100, 201, 0x88b5],
  );
  const l = lldp(SRC, m);
  assert.equal(l.subarray(0, 6).toString("hex"), "0180c200000e");
  assert.equal(l.readUInt16BE(12), 0x88cc);
  assert.equal(l.readUInt16BE(14) >> 9, 1, "chassis ID TLV first");
  const a = lacp(SRC, m);
  assert.equal(a.subarray(0, 6).toString("hex"), "0180c2000002");
  assert.deepEqual([a.readUInt16BE(12), a[14], a[15], a[16], a[17]], [0x8809, 1, 1, 1, 20]);
  assert.equal(a.length, 14 + 110);
  const s = stp(SRC, m);
  assert.equal(s.subarray(0, 6).toString("hex"), "0180c2000000");
  assert.equal(s.readUInt16BE(12), 3 + 35 + m.length, "802.3 length: LLC + BPDU + marker");
  assert.equal(s.subarray(14, 17).toString("hex"), "424203");
  const u = untagged(SRC, DST, m);
  assert.equal(u.readUInt16BE(12), 0x88b5);
  for (const f of [t, q, l, a, s, u]) {
    assert.ok(f.length >= MIN_FRAME, `${f.length} bytes`);
    assert.ok(hasMarker(f));
    assert.ok(!carries(newMarker("u"))(f), "another marker is not found");
  }
});

test("frameKinds: five named frames from the source, a fresh marker each", () => {
  const kinds = frameKinds(SRC);
  assert.deepEqual(
    kinds.map((k) => k.name),
    ["dot1q", "qinq", "lldp", "lacp", "stp"],
  );
  assert.equal(new Set(kinds.map((k) => k.marker)).size, 5);
  for (const k of kinds) {
    assert.equal(k.frame.subarray(6, 12).toString("hex"), "020000000001");
    assert.ok(carries(k.marker)(k.frame));
  }
  assert.notEqual(frameKinds(SRC)[0]!.marker, kinds[0]!.marker);
});

test("bad MACs, VLAN ids and markers throw", () => {
  assert.throws(() => dot1q("02:00:00:00:00", DST, 1, "m"), /bad MAC/);
  assert.throws(() => dot1q(SRC, DST, 4096, "m"), /VLAN id/);
  assert.throws(() => qinq(SRC, DST, -1, 1, "m"), /VLAN id/);
  assert.throws(() => lacp(SRC, "x".repeat(51)), /marker/);
  assert.throws(() => lldp(SRC, ""), /marker/);
  assert.throws(() => stp(SRC, "with space"), /marker/);
});
