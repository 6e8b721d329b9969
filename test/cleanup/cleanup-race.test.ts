import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { listLinks } from "../../src/link/index.js";
import type { OrphanView } from "../../src/model/views.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { NetnsPool } from "../harness/netns.js";

/**
 * Cleanup with no grace period, every 100 ms, during a 200-link provisioning: the exclusive lock
 * means a pass never sees a half-made lab, so nothing is lost.
 */
let t: TestAgent;
const pool = new NetnsPool("clr");

before(async () => {
  t = await startTestAgent({ cleanupGraceS: 0 });
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

test("cleanup every 100 ms during a 200-link provisioning removes nothing", async (ctx) => {
  const names = await pool.create(100, { loUp: false });
  const nodes = names.map((ns, i) => ({
    name: `n${i}`,
    netns: ns,
    interfaces: [1, 2, 3, 4].map((k) => ({ name: `eth${k}` })),
  }));
  const links: { a: string; b: string }[] = [];
  for (let i = 0; i < 100; i += 2)
    for (const k of [1, 2, 3, 4]) links.push({ a: `n${i}:eth${k}`, b: `n${i + 1}:eth${k}` });
  assert.equal(links.length, 200);

  const removed: OrphanView[] = [];
  let passes = 0;
  const passMs: number[] = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const s0 = performance.now();
      removed.push(...(await t.agent.cleanup.run()));
      passMs.push(performance.now() - s0);
      passes++;
      await sleep(100);
    }
  })();
  const started = performance.now();
  let putMs = 0;
  try {
    await sleep(150); // a pass or two before the lab starts
    await t.agent.labs.putLab("big", { nodes, links });
    putMs = performance.now() - started - 150;
    await sleep(1000); // and a few after it
  } finally {
    stop = true;
    await loop;
  }
  assert.deepEqual(removed, [], "cleanup removed something during provisioning");
  assert.ok(passes >= 3, `only ${passes} cleanup passes ran`);

  const lab = t.agent.labs.getLab("big");
  assert.equal(lab.links.length, 200);
  const vlans = new Set<number>();
  for (const l of lab.links) {
    assert.equal(l.state, "up", `link ${l.id}`);
    assert.ok(l.vlan !== null);
    vlans.add(l.vlan);
  }
  assert.equal(vlans.size, 200, "every link has its own VLAN");
  const ifaces = lab.nodes.flatMap((n) => n.interfaces);
  assert.equal(ifaces.length, 400);
  assert.ok(ifaces.every((i) => i.present));
  const kernel = new Set((await listLinks({ name: t.ovs.netns! })).map((l) => l.name));
  assert.ok(ifaces.every((i) => kernel.has(i.host_port)));

  // Timing at 400 ports: an audit that finds nothing, and a pass that removes nothing.
  const audits: number[] = [];
  const runs: number[] = [];
  for (let i = 0; i < 7; i++) {
    let s = performance.now();
    assert.deepEqual(await t.agent.cleanup.audit(), []);
    audits.push(performance.now() - s);
    s = performance.now();
    assert.deepEqual(await t.agent.cleanup.run(), []);
    runs.push(performance.now() - s);
  }
  // And a pass that removes a whole lab's worth of orphans: the lab dropped behind the agent's back.
  await t.agent.store.deleteLab("big");
  let s = performance.now();
  const found = await t.agent.cleanup.audit();
  const auditAll = performance.now() - s;
  s = performance.now();
  const gone = await t.agent.cleanup.run();
  const runAll = performance.now() - s;
  assert.equal(found.length, 400);
  assert.equal(gone.length, 400);
  const after = new Set((await listLinks({ name: t.ovs.netns! })).map((l) => l.name));
  assert.ok(ifaces.every((i) => !after.has(i.host_port)));
  assert.deepEqual(
    (await t.agent.services.backend.status()).ports.filter((p) => p.type !== "internal"),
    [],
  );
  ctx.diagnostic(
    `putLab 200 links/400 ifaces with cleanup every 100 ms: ${Math.round(putMs)} ms, ${passes} passes ` +
      `(${passMs.map((x) => Math.round(x)).join(", ")} ms); ` +
      `at 400 ports: audit median ${median(audits).toFixed(1)} ms, empty run median ${median(runs).toFixed(1)} ms; ` +
      `400 orphans: audit ${auditAll.toFixed(1)} ms, removal run ${runAll.toFixed(1)} ms`,
  );
});
