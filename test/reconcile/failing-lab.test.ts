import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createAgent } from "../../src/agent.js";
import { isAgentError } from "../../src/common/errors.js";
import { silentLogger } from "../../src/common/log.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool, nsExec } from "../harness/netns.js";
import { expectPing } from "../harness/traffic.js";
import { until } from "../labs/facts.js";

/**
 * One lab that cannot be converged does not stop the others: the agent starts, the good lab is
 * repaired and pings, the bad one is reported (its view, metrics) and converges once it can.
 */
let t: TestAgent;
const pool = new NetnsPool("flab");
let ns: string[] = [];

before(async () => {
  t = await startTestAgent();
  ns = await pool.create(4);
  for (const [lab, [a, b]] of [
    ["good", [ns[0]!, ns[1]!]],
    ["bad", [ns[2]!, ns[3]!]],
  ] as const) {
    await t.agent.labs.putLab(lab, {
      nodes: [
        { name: "a", netns: a, interfaces: [{ name: "eth1" }] },
        { name: "b", netns: b, interfaces: [{ name: "eth1" }] },
      ],
      links: [{ a: "a:eth1", b: "b:eth1", id: "ab" }],
    });
  }
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

const hostPort = (lab: string) =>
  t.agent.labs.getLab(lab).nodes.find((n) => n.name === "a")!.interfaces[0]!.host_port;

const macOf = async (netns: string) =>
  (await nsExec(netns, ["cat", "/sys/class/net/eth1/address"])).stdout.trim();

async function metric(name: string): Promise<string> {
  const text = await t.agent.services.metrics.registry.getSingleMetricAsString(name);
  return text
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("\n");
}

test("an agent starts with a lab it cannot converge; the other lab is repaired and pings", async () => {
  const [good, bad] = [hostPort("good"), hostPort("bad")];
  const macBefore = await macOf(ns[0]!);
  await t.stopAgent();
  // Both labs lose a veth while the agent is down; the bad lab's node meanwhile has a device of
  // its own named like the interface, so the veth cannot be made again there.
  await nsExec(t.ovs.netns!, ["ip", "link", "del", good]);
  await nsExec(t.ovs.netns!, ["ip", "link", "del", bad]);
  await nsExec(ns[2]!, ["ip", "link", "add", "eth1", "type", "bridge"]);

  await t.startAgent();
  const badView = t.agent.labs.getLab("bad");
  assert.match(badView.reconcile_error ?? "", /eth1|exists/, "the bad lab says why");
  assert.equal(t.agent.labs.getLab("good").reconcile_error, undefined);
  assert.match(await metric("archnet_lab_reconcile_failures_total"), /\{lab="bad"\} [1-9]/);
  assert.doesNotMatch(await metric("archnet_lab_reconcile_failures_total"), /lab="good"/);
  assert.match(await metric("archnet_labs_unconverged"), /^archnet_labs_unconverged 1$/m);

  assert.equal(await macOf(ns[0]!), macBefore, "the re-created end has its MAC");
  await addAddress(ns[0]!, "eth1", "198.18.61.1/24"); // the re-created end has no address yet
  await addAddress(ns[1]!, "eth1", "198.18.61.2/24");
  await expectPing(ns[0]!, "198.18.61.2");
  assert.equal(t.agent.labs.getLab("good").links[0]?.state, "up");

  // Once the obstacle is gone the agent's retry converges the bad lab; the error clears.
  await nsExec(ns[2]!, ["ip", "link", "del", "eth1"]);
  const ms = await until(
    () => t.agent.labs.getLab("bad").reconcile_error === undefined,
    15_000,
    "bad lab converged by the retry",
  );
  console.log(`# bad lab converged ${ms} ms after its obstacle went`);
  assert.match(await metric("archnet_labs_unconverged"), /^archnet_labs_unconverged 0$/m);
  await addAddress(ns[2]!, "eth1", "198.18.62.1/24");
  await addAddress(ns[3]!, "eth1", "198.18.62.2/24");
  await expectPing(ns[2]!, "198.18.62.2");
  assert.deepEqual(await t.agent.reconcile(), []);
});

test("the local backend: a lab it cannot converge is reported, the other lab is repaired and pings", async () => {
  const local = await startTestAgent({ backend: "local" });
  const lpool = new NetnsPool("flal");
  try {
    const [a1, b1, a2, b2] = (await lpool.create(4)) as [string, string, string, string];
    for (const [lab, a, b] of [
      ["good", a1, b1],
      ["bad", a2, b2],
    ] as const) {
      await local.agent.labs.putLab(lab, {
        nodes: [
          { name: "a", netns: a, interfaces: [{ name: "eth1" }] },
          { name: "b", netns: b, interfaces: [{ name: "eth1" }] },
        ],
        links: [{ a: "a:eth1", b: "b:eth1", id: "ab" }],
      });
    }
    const macBefore = await macOf(a1);
    await local.stopAgent();
    // Both pairs go while the agent is down; the bad lab's node gets a device of its own as eth1.
    await nsExec(a1, ["ip", "link", "del", "eth1"]);
    await nsExec(a2, ["ip", "link", "del", "eth1"]);
    await nsExec(a2, ["ip", "link", "add", "eth1", "type", "bridge"]);

    await local.startAgent();
    assert.match(local.agent.labs.getLab("bad").reconcile_error ?? "", /ab not created/);
    assert.equal(local.agent.labs.getLab("good").reconcile_error, undefined);
    assert.equal(await macOf(a1), macBefore, "the re-created pair has its MACs");
    await addAddress(a1, "eth1", "198.18.63.1/24");
    await addAddress(b1, "eth1", "198.18.63.2/24");
    await expectPing(a1, "198.18.63.2");

    await nsExec(a2, ["ip", "link", "del", "eth1"]);
    await until(
      () => local.agent.labs.getLab("bad").reconcile_error === undefined,
      15_000,
      "bad lab converged by the retry",
    );
    await addAddress(a2, "eth1", "198.18.64.1/24");
    await addAddress(b2, "eth1", "198.18.64.2/24");
    await expectPing(a2, "198.18.64.2");
  } finally {
    await lpool.destroyAll();
    await local.close();
  }
});

test("an agent whose switch is unreachable still fails to start, with its reason", async () => {
  const stateDir = await mkdtemp(join(tmpdir(), "archnet-state-"));
  try {
    await assert.rejects(
      createAgent(
        { ...t.config, stateDir, ovsdb: `unix:${join(stateDir, "no-such-db.sock")}` },
        { logger: silentLogger() },
      ),
      (e: unknown) => isAgentError(e, "OVS_UNREACHABLE"),
    );
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
});
