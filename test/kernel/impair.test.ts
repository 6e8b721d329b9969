import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { LabSpec } from "../../src/model/views.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { needsKernelHost, ON_KERNEL_HOST } from "../harness/kernel-host.js";
import { addAddress, NetnsPool, nsExec } from "../harness/netns.js";
import { expectPing } from "../harness/traffic.js";

/**
 * What only a kernel with netem can show (the kernel test host): a link's delay as round-trip
 * time, its loss as lost pings, and every netem field applied and read back from tc.
 */
let t: TestAgent;
const pool = new NetnsPool("kim");
let n1: string;
let n2: string;
const LAB = "kim";

before(async () => {
  if (!ON_KERNEL_HOST) return;
  t = await startTestAgent();
  [n1, n2] = (await pool.create(2)) as [string, string];
  const spec: LabSpec = {
    nodes: [
      { name: "a", netns: n1, interfaces: [{ name: "eth1", mtu: 1500 }] },
      { name: "b", netns: n2, interfaces: [{ name: "eth1", mtu: 1500 }] },
    ],
    links: [{ a: "a:eth1", b: "b:eth1", id: "l1" }],
  };
  await t.agent.labs.putLab(LAB, spec);
  await addAddress(n1, "eth1", "198.18.31.1/24");
  await addAddress(n2, "eth1", "198.18.31.2/24");
  await expectPing(n1, "198.18.31.2");
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

/** ping's summary: loss (percent) and min/avg rtt (ms). */
async function pings(count: number, intervalS: number): Promise<{ loss: number; min: number; avg: number }> {
  const r = await nsExec(
    n1,
    ["ping", "-n", "-q", "-c", String(count), "-i", String(intervalS), "-W", "2", "198.18.31.2"],
    { okCodes: [1], timeoutMs: 300_000 },
  );
  const loss = /([\d.]+)% packet loss/.exec(r.stdout);
  const rtt = /= ([\d.]+)\/([\d.]+)\//.exec(r.stdout);
  assert.ok(loss, r.stdout);
  return { loss: Number(loss[1]), min: Number(rtt?.[1] ?? Number.NaN), avg: Number(rtt?.[2] ?? Number.NaN) };
}

test("a 20 ms delay a->b shows as a round trip of at least 20 ms", needsKernelHost, async () => {
  const before = await pings(5, 0.2);
  const view = await t.agent.services.impairments.set(LAB, "l1", { a_to_b: { delay_ms: 20 } });
  assert.equal(view.in_sync, true, JSON.stringify(view));
  assert.deepEqual(view.applied?.a_to_b, { delay_ms: 20 });
  const after = await pings(10, 0.05);
  assert.ok(after.min >= 20, `min rtt ${after.min} ms with 20 ms delay (before: ${before.min} ms)`);
  await t.agent.services.impairments.set(LAB, "l1", undefined);
  const cleared = await pings(5, 0.05);
  assert.ok(cleared.min < 20, `min rtt ${cleared.min} ms after clearing`);
});

test("10% loss a->b loses 5-15% of 1000 pings", needsKernelHost, async (ctx) => {
  await t.agent.services.impairments.set(LAB, "l1", { a_to_b: { loss_pct: 10 } });
  const r = await pings(1000, 0.002);
  ctx.diagnostic(`loss over 1000 pings: ${r.loss}%`);
  assert.ok(r.loss >= 5 && r.loss <= 15, `loss ${r.loss}% with 10% configured`);
  await t.agent.services.impairments.set(LAB, "l1", undefined);
  assert.equal((await pings(50, 0.002)).loss, 0);
});

test(
  "every netem field is applied and read back; a rate joins netem; restart keeps it",
  needsKernelHost,
  async () => {
    const want = {
      a_to_b: {
        delay_ms: 5,
        jitter_ms: 1,
        loss_pct: 0.5,
        corrupt_pct: 0.1,
        duplicate_pct: 0.2,
        reorder_pct: 3,
        rate_kbit: 50_000,
      },
      b_to_a: { delay_ms: 2, rate_kbit: 20_000 },
    };
    const view = await t.agent.services.impairments.set(LAB, "l1", want);
    assert.equal(view.in_sync, true, JSON.stringify(view));
    assert.deepEqual(view.applied, want);
    // A smaller change leaves nothing of the old one behind (netem keeps what a change omits).
    const less = await t.agent.services.impairments.set(LAB, "l1", { a_to_b: { loss_pct: 1 } });
    assert.deepEqual(less.applied, { a_to_b: { loss_pct: 1 }, b_to_a: {} });
    assert.equal(less.in_sync, true);
    // netem to tbf and back.
    const rate = await t.agent.services.impairments.set(LAB, "l1", { a_to_b: { rate_kbit: 9000 } });
    assert.deepEqual(rate.applied, { a_to_b: { rate_kbit: 9000 }, b_to_a: {} });
    await t.agent.services.impairments.set(LAB, "l1", want);
    await t.restart();
    const after = await t.agent.services.impairments.get(LAB, "l1");
    assert.equal(after.in_sync, true);
    assert.deepEqual(after.applied, want);
    await t.agent.services.impairments.set(LAB, "l1", undefined);
    await expectPing(n1, "198.18.31.2");
  },
);
