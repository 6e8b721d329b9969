import assert from "node:assert/strict";
import { test } from "node:test";
import { PcapReader, summarize } from "../../src/cli/pcap-summary.js";
import { formatKbit, parseKbit, parseMs, parsePct } from "../../src/cli/units.js";
import { isAgentError } from "../../src/common/errors.js";
import { netemFieldsOf, sameImpairment, validateImpairment } from "../../src/labs/impairment.js";
import { parseRootQdisc, qdiscLine, sameShape, tbfBurst } from "../../src/link/tc.js";

test("qdisc lines: netem with every option given (zeros too), tbf for a rate alone, del for none", () => {
  assert.deepEqual(qdiscLine("h1", undefined, 1500), ["qdisc", "del", "dev", "h1", "root"]);
  assert.deepEqual(qdiscLine("h1", {}, 1500), ["qdisc", "del", "dev", "h1", "root"]);
  assert.deepEqual(
    qdiscLine("h1", { rate_kbit: 10_000 }, 1500).join(" "),
    [`qdisc replace dev h1 root tbf rate 10000kbit burst ${tbfBurst(10_000, 1500)} latency 100ms`][0],
  );
  assert.equal(
    qdiscLine("h1", { delay_ms: 1.5, loss_pct: 0.25 }, 1500).join(" "),
    "qdisc replace dev h1 root netem limit 10000 delay 1.5ms 0ms loss 0.25% duplicate 0% reorder 0% corrupt 0% rate 0bit",
  );
  assert.equal(
    qdiscLine("h1", { delay_ms: 20, jitter_ms: 5, reorder_pct: 1, rate_kbit: 500 }, 9000).join(" "),
    "qdisc replace dev h1 root netem limit 10000 delay 20ms 5ms loss 0% duplicate 0% reorder 1% corrupt 0% rate 500kbit",
  );
  // The bucket holds two frames of the MTU at least (jumbo frames would be dropped otherwise).
  assert.ok(tbfBurst(64, 9000) >= 2 * 9000);
});

test("tc's JSON read back as shapes (netem as the kernel test host printed it), compared with tolerance", () => {
  const netem = parseRootQdisc({
    kind: "netem",
    root: true,
    options: {
      limit: 1000,
      delay: { delay: 0.001499, jitter: 0.000249, correlation: 0 },
      "loss-random": { loss: 0.1, correlation: 0 },
      duplicate: { duplicate: 0.02, correlation: 0 },
      reorder: { reorder: 0.03, correlation: 0 },
      corrupt: { corrupt: 0.01, correlation: 0 },
      rate: { rate: 125000, packetoverhead: 0, cellsize: 0, celloverhead: 0 },
      ecn: false,
      gap: 1,
    },
  });
  assert.deepEqual(netem, {
    kind: "shape",
    shape: {
      delay_ms: 1.499,
      jitter_ms: 0.249,
      loss_pct: 10,
      duplicate_pct: 2,
      corrupt_pct: 1,
      reorder_pct: 3,
      rate_kbit: 1000,
    },
  });
  const want = {
    delay_ms: 1.5,
    jitter_ms: 0.25,
    loss_pct: 10,
    duplicate_pct: 2,
    corrupt_pct: 1,
    reorder_pct: 3,
    rate_kbit: 1000,
  };
  assert.ok(sameShape(want, netem));
  assert.ok(!sameShape({ ...want, loss_pct: 11 }, netem));
  const tbf = parseRootQdisc({
    kind: "tbf",
    root: true,
    options: { rate: 1_250_000, burst: 5000, lat: 50000 },
  });
  assert.deepEqual(tbf, { kind: "shape", shape: { rate_kbit: 10_000 } });
  assert.ok(sameShape({ rate_kbit: 10_000 }, tbf));
  // A rate through netem is not a rate through tbf.
  assert.ok(
    !sameShape({ rate_kbit: 10_000 }, { kind: "shape", shape: { rate_kbit: 10_000, delay_ms: 0.5 } }),
  );
  assert.deepEqual(parseRootQdisc({ kind: "noqueue", root: true }), { kind: "none" });
  assert.deepEqual(parseRootQdisc({ kind: "htb", root: true }), { kind: "other", qdisc: "htb" });
  assert.ok(sameShape(undefined, { kind: "none" }));
  assert.ok(!sameShape(undefined, tbf));
  // reorder without a gap does nothing: it is not read as a reorder.
  assert.deepEqual(
    parseRootQdisc({
      kind: "netem",
      options: { reorder: { reorder: 0.03 }, gap: 0, delay: { delay: 0.02 } },
    }),
    { kind: "shape", shape: { delay_ms: 20 } },
  );
});

test("impairment bodies: validated field by field, rounded, zeros dropped, cross-field rules", () => {
  assert.equal(validateImpairment(undefined), undefined);
  assert.equal(validateImpairment({}), undefined);
  assert.equal(validateImpairment({ a_to_b: {}, b_to_a: { loss_pct: 0 } }), undefined);
  assert.deepEqual(validateImpairment({ a_to_b: { delay_ms: 20.00049, loss_pct: 1.00004 } }), {
    a_to_b: { delay_ms: 20, loss_pct: 1 },
  });
  const bad: [unknown, RegExp][] = [
    [{ a_to_b: { loss_pct: 101 } }, /a_to_b\.loss_pct must be a number from 0 to 100/],
    [{ a_to_b: { delay_ms: -1 } }, /delay_ms/],
    [{ a_to_b: { delay_ms: Number.NaN } }, /delay_ms/],
    [{ a_to_b: { rate_kbit: 7 } }, /at least 8/],
    [{ a_to_b: { rate_kbit: 8.5 } }, /whole number/],
    [{ b_to_a: { jitter_ms: 1 } }, /jitter_ms needs a delay_ms/],
    [{ b_to_a: { reorder_pct: 1 } }, /reorder_pct needs a delay_ms/],
    [{ b_to_a: { speed: 1 } }, /b_to_a\.speed is not an impairment field/],
    [{ up: {} }, /up is not a direction/],
    [{ a_to_b: 5 }, /must be an object/],
    [[], /must be an object/],
    ["x", /must be an object/],
    [{ __proto__: { loss_pct: 1 } }, /./],
  ];
  for (const [body, why] of bad.slice(0, -1)) {
    assert.throws(
      () => validateImpairment(body),
      (e) => isAgentError(e, "BAD_REQUEST") && why.test(e.message),
      JSON.stringify(body),
    );
  }
  assert.deepEqual(netemFieldsOf({ a_to_b: { rate_kbit: 8, loss_pct: 1 }, b_to_a: { delay_ms: 1 } }), [
    "a_to_b.loss_pct",
    "b_to_a.delay_ms",
  ]);
  assert.deepEqual(netemFieldsOf({ a_to_b: { rate_kbit: 8 } }), []);
  assert.ok(sameImpairment({ a_to_b: { loss_pct: 1 } }, { a_to_b: { loss_pct: 1 }, b_to_a: {} }));
  assert.ok(!sameImpairment({ a_to_b: { loss_pct: 1 } }, { b_to_a: { loss_pct: 1 } }));
});

test("CLI units: times, percentages and rates as tc writes them", () => {
  assert.equal(parseMs("20ms"), 20);
  assert.equal(parseMs("1.5"), 1.5);
  assert.equal(parseMs("500us"), 0.5);
  assert.equal(parseMs("2s"), 2000);
  assert.equal(parsePct("1%"), 1);
  assert.equal(parsePct("0.5"), 0.5);
  assert.equal(parseKbit("10mbit"), 10_000);
  assert.equal(parseKbit("10Mbit"), 10_000);
  assert.equal(parseKbit("1gbit"), 1_000_000);
  assert.equal(parseKbit("640"), 640);
  for (const [f, t] of [
    [parseMs, "20 ms"],
    [parseMs, "fast"],
    [parsePct, "-1%"],
    [parseKbit, "10mbps"],
    [parseKbit, "1.5kbit"],
  ] as const)
    assert.throws(() => f(t), t);
  assert.equal(formatKbit(10_000), "10Mbit");
  assert.equal(formatKbit(1500), "1500kbit");
  assert.equal(formatKbit(2_000_000), "2Gbit");
});

test("the terminal summary of a pcap stream: frames across chunks, one line each", () => {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(1, 20);
  const mac = (last: number) => [2, 0, 0, 0, 0, last];
  const ip = (last: number) => [198, 18, 51, last];
  const icmp = Buffer.from([
    ...mac(2),
    ...mac(1),
    0x08,
    0x00,
    ...[0x45, 0, 0, 84, 0, 0, 0x40, 0, 64, 1, 0, 0, ...ip(1), ...ip(2)],
    ...[8, 0, 0, 0, 0, 7, 0, 1],
    ...new Array(56).fill(0),
  ]);
  const arp = Buffer.from([
    ...[255, 255, 255, 255, 255, 255],
    ...mac(1),
    0x08,
    0x06,
    ...[0, 1, 8, 0, 6, 4, 0, 1],
    ...mac(1),
    ...ip(1),
    ...[0, 0, 0, 0, 0, 0],
    ...ip(2),
  ]);
  const rec = (data: Buffer, sec: number) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(sec, 0);
    h.writeUInt32LE(250, 4);
    h.writeUInt32LE(data.length, 8);
    h.writeUInt32LE(data.length, 12);
    return Buffer.concat([h, data]);
  };
  const all = Buffer.concat([header, rec(icmp, 1), rec(arp, 2)]);
  const reader = new PcapReader();
  const frames = [
    ...reader.push(all.subarray(0, 30)),
    ...reader.push(all.subarray(30, 61)),
    ...reader.push(all.subarray(61)),
  ];
  assert.equal(frames.length, 2);
  assert.match(
    summarize(frames[0]!),
    /^\d\d:\d\d:\d\d\.000250 02:00:00:00:00:01 > 02:00:00:00:00:02 198\.18\.51\.1 > 198\.18\.51\.2 ICMP echo request id 7 seq 1, \d+ bytes$/,
  );
  assert.match(summarize(frames[1]!), /ARP who-has 198\.18\.51\.2 tell 198\.18\.51\.1/);
});
