import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { LabSpec } from "../../src/model/views.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectPing } from "../harness/traffic.js";
import { assertNoSharedVlan, hostVeths, kernelLinks, ownedPorts, ringLadderSpec } from "../labs/facts.js";

/**
 * kill -9 of the agent in the middle of a 200-link PUT: a fresh agent on the same state and OVS
 * converges the lab, with no duplicate or leaked veth or port and no VLAN shared by two links.
 */
let t: TestAgent;
const pool = new NetnsPool("crs");
let ns: string[] = [];
let child: ChildProcess | undefined;
const CHILD = fileURLToPath(new URL("./agent-child.ts", import.meta.url));

before(async () => {
  t = await startTestAgent();
  await t.stopAgent();
  ns = await pool.create(100);
});
after(async () => {
  child?.kill("SIGKILL");
  await pool.destroyAll();
  await t?.close();
});

function bigSpec(): LabSpec {
  return ringLadderSpec(ns);
}

async function startChild(): Promise<{ proc: ChildProcess; address: string }> {
  const proc = spawn(process.execPath, ["--import", "tsx", CHILD], {
    env: { ...process.env, ARCHNET_TEST_CONFIG: JSON.stringify(t.config) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  child = proc;
  const lines = createInterface({ input: proc.stdout! });
  const address = await new Promise<string>((resolve, reject) => {
    proc.once("exit", (code) => reject(new Error(`agent child exited (${code}) before it was ready`)));
    lines.once("line", (l) => resolve((JSON.parse(l) as { address: string }).address));
  });
  return { proc, address };
}

async function killNow(proc: ChildProcess): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) {
    const gone = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGKILL");
    await gone;
  }
  child = undefined;
}

/** What the switch and the kernel hold must be exactly the declared lab, nothing twice. */
async function assertExactly(spec: LabSpec): Promise<void> {
  const view = t.agent.labs.getLab("x");
  const declared = view.nodes.flatMap((n) => n.interfaces.map((i) => i.host_port)).sort();
  assert.equal(declared.length, 400);
  const owned = await ownedPorts(t.ovs);
  assert.deepEqual(owned.map((p) => p.name).sort(), declared, "one owned port per declared interface");
  assert.deepEqual((await hostVeths(t.ovs)).sort(), declared, "one host veth per declared interface");
  assertNoSharedVlan(owned);
  assert.equal(view.links.length, spec.links.length);
  const notUp = view.links.filter((l) => l.state !== "up");
  assert.deepEqual(notUp, [], "every link is up");
  const vlans = new Set(view.links.map((l) => l.vlan));
  assert.equal(vlans.size, 200, "200 links, 200 VLANs");
  for (const n of [ns[0]!, ns[57]!, ns[99]!]) {
    const ifs = (await kernelLinks(n)).map((l) => l.split(":")[1]).sort();
    assert.deepEqual(ifs, ["eth1", "eth2", "eth3", "eth4", "lo"], `interfaces of ${n}`);
  }
}

for (const killAfterMs of [60, 250, 700]) {
  const name = `kill -9 ${killAfterMs} ms into a 200-link PUT: a fresh agent converges, nothing leaks`;
  test(name, { timeout: 60_000 }, async () => {
    const spec = bigSpec();
    const { proc, address } = await startChild();
    const put = fetch(`${address}/labs/x`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(spec),
    }).then(
      (r) => `HTTP ${r.status}`,
      (e: unknown) => `failed: ${String((e as Error).cause ?? e)}`,
    );
    await sleep(killAfterMs);
    await killNow(proc);
    const outcome = await put;
    const portsAtKill = (await ownedPorts(t.ovs)).length;
    const vethsAtKill = (await hostVeths(t.ovs)).length;

    const t0 = performance.now();
    await t.startAgent();
    const startMs = performance.now() - t0;
    const stored = t.agent.store.lab("x") !== undefined;
    if (stored) {
      // The desired state was durable: the start alone finishes the job.
      await assertExactly(spec);
    }
    const again = await t.agent.labs.putLab("x", spec);
    if (stored) assert.deepEqual(Object.values(again.changes).flat(), [], "nothing left for the PUT to do");
    await assertExactly(spec);
    assert.deepEqual(await t.agent.reconcile(), [], "nothing to repair after convergence");
    console.log(
      `# killed after ${killAfterMs} ms (PUT ${outcome}; ${portsAtKill} ports, ${vethsAtKill} veths at kill; state ${stored ? "stored" : "not stored"}); fresh agent start ${startMs.toFixed(0)} ms`,
    );
    await addAddress(ns[10]!, "eth3", "198.18.50.1/24");
    await addAddress(ns[11]!, "eth3", "198.18.50.2/24");
    await expectPing(ns[10]!, "198.18.50.2");

    await t.agent.labs.deleteLab("x");
    assert.deepEqual(await ownedPorts(t.ovs), []);
    assert.deepEqual(await hostVeths(t.ovs), []);
    await t.stopAgent();
  });
}
