import assert from "node:assert/strict";
import { after, test } from "node:test";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { needsKernelHost } from "../harness/kernel-host.js";
import { NetnsPool } from "../harness/netns.js";

/**
 * Figures, not targets (the VM is emulated, so only ratios measured side by side mean anything):
 * lab bring-up and hot connect/disconnect on the kernel datapath against the userspace one, in
 * the same VM, same run. Printed for the README and the notes.
 */
const LINKS = 30;
const HOT_OPS = 20;
const agents: TestAgent[] = [];
const pool = new NetnsPool("kfg");

after(async () => {
  await pool.destroyAll();
  for (const a of agents) await a.close();
});

interface Figures {
  bringUpMs: number;
  connectP50Ms: number;
  teardownMs: number;
}

async function measure(datapath: "system" | "netdev"): Promise<Figures> {
  const t = await startTestAgent({ datapath });
  agents.push(t);
  const ns = await pool.create(LINKS * 2);
  const lab = `kfg-${datapath}`;
  const nodes = ns.map((n, i) => ({ name: `n${i}`, netns: n, interfaces: [{ name: "eth1" }] }));
  const links = Array.from({ length: LINKS }, (_, i) => ({
    id: `l${i}`,
    a: `n${2 * i}:eth1`,
    b: `n${2 * i + 1}:eth1`,
  }));
  const t0 = performance.now();
  await t.agent.labs.putLab(lab, { nodes, links });
  const bringUpMs = performance.now() - t0;
  const dp = (await t.ovs.vsctl(["get", "Bridge", t.config.bridge, "datapath_type"])).trim();
  assert.equal(dp, datapath, "the agent's bridge is on the datapath being measured");

  const hot: number[] = [];
  for (let i = 0; i < HOT_OPS; i++) {
    const link = links[i % LINKS]!;
    await t.agent.labs.removeLink(lab, link.id);
    const s = performance.now();
    await t.agent.labs.addLink(lab, link);
    hot.push(performance.now() - s);
  }
  const t1 = performance.now();
  await t.agent.labs.deleteLab(lab);
  const teardownMs = performance.now() - t1;
  hot.sort((a, b) => a - b);
  return { bringUpMs, connectP50Ms: hot[Math.floor(hot.length / 2)]!, teardownMs };
}

test(
  `kernel vs userspace datapath in one VM: bring-up of ${LINKS} links, hot connect, teardown`,
  needsKernelHost,
  async () => {
    const kernel = await measure("system");
    const user = await measure("netdev");
    const row = (name: string, k: number, u: number) =>
      `${name}: kernel ${k.toFixed(1)} ms, userspace ${u.toFixed(1)} ms, kernel/userspace ${(k / u).toFixed(2)}`;
    console.log(row(`bring-up of ${LINKS} links`, kernel.bringUpMs, user.bringUpMs));
    console.log(row("hot connect p50 (VLAN retag, until applied)", kernel.connectP50Ms, user.connectP50Ms));
    console.log(row(`teardown of ${LINKS} links`, kernel.teardownMs, user.teardownMs));
  },
);
