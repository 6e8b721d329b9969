import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { ping } from "../harness/traffic.js";
import { assertNoSharedVlan, ownedPorts, pingWithin, until } from "../labs/facts.js";

/**
 * Reconciliation: the agent restarted, ovs-vswitchd or ovsdb-server restarted, the bridge or a
 * tag changed by hand. Links must pass traffic again without any API call.
 */
let t: TestAgent;
const pool = new NetnsPool("rcv");
const PAIRS = 3;
let ns: string[] = [];
const ip = (i: number) => `198.18.30.${i + 1}`;

before(async () => {
  t = await startTestAgent();
  ns = await pool.create(PAIRS * 2 + 2);
  await t.agent.labs.putLab("rc", {
    nodes: ns.map((n, i) => ({ name: `n${i}`, netns: n, interfaces: [{ name: "eth1" }] })),
    links: Array.from({ length: PAIRS }, (_, p) => ({
      a: `n${2 * p}:eth1`,
      b: `n${2 * p + 1}:eth1`,
      id: `p${p}`,
    })),
  });
  for (const [i, n] of ns.entries()) await addAddress(n, "eth1", `${ip(i)}/24`);
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

/**
 * How long a repair may take before the test gives up: a deadline against a hang, not a speed
 * target (an emulated kernel beside a CPU hog took over 2 s for a del-br); the times are printed
 * and the speed targets are in make bench.
 */
const REPAIR_MS = 60_000;

/** Every pair pings within `ms`; returns the slowest time. */
async function allPairsPing(ms: number): Promise<number> {
  const times = await Promise.all(
    Array.from({ length: PAIRS }, (_, p) => pingWithin(ns[2 * p]!, ip(2 * p + 1), ms)),
  );
  return Math.max(...times);
}

function linkStates() {
  return Object.fromEntries(t.agent.labs.listLinks("rc").map((l) => [l.id, `${l.state}/${l.vlan}`]));
}

test("links pass traffic at the start", async () => {
  await allPairsPing(REPAIR_MS);
  assertNoSharedVlan(await ownedPorts(t.ovs));
});

test("an agent restart keeps links passing traffic and rebuilds the VLAN allocator", async () => {
  const before1 = linkStates();
  const ports1 = await ownedPorts(t.ovs);
  await t.restart();
  assert.deepEqual(linkStates(), before1, "same links, states and VLANs after a restart");
  assert.deepEqual(await ownedPorts(t.ovs), ports1, "a restart changes nothing in OVS");
  await allPairsPing(REPAIR_MS);
  // The spare pair gets a VLAN nobody uses.
  const spare = await t.agent.labs.addLink("rc", { a: `n${2 * PAIRS}:eth1`, b: `n${2 * PAIRS + 1}:eth1` });
  const used = Object.values(before1).map((s) => Number(s.split("/")[1]));
  assert.ok(spare.vlan !== null && !used.includes(spare.vlan), `VLAN ${spare.vlan} is new (in use: ${used})`);
  assertNoSharedVlan(await ownedPorts(t.ovs));
  await pingWithin(ns[2 * PAIRS]!, ip(2 * PAIRS + 1), REPAIR_MS);
  await t.agent.labs.removeLink("rc", spare.id);
});

test("ovs-vswitchd restarted: links pass traffic again without any API call", async () => {
  await t.ovs.restartVswitchd();
  const ms = await allPairsPing(REPAIR_MS);
  console.log(`# traffic back ${ms} ms after ovs-vswitchd restarted`);
  assertNoSharedVlan(await ownedPorts(t.ovs));
});

test("ovsdb-server restarted: links pass traffic again and the agent works", async () => {
  const before1 = linkStates();
  await t.ovs.stopDbServer();
  await t.ovs.startDbServer();
  const ms = await allPairsPing(REPAIR_MS);
  console.log(`# traffic back ${ms} ms after ovsdb-server restarted`);
  await until(
    () => t.agent.services.backend.status().then((s) => s.connected),
    REPAIR_MS,
    "agent reconnected",
  );
  await until(() => JSON.stringify(linkStates()) === JSON.stringify(before1), REPAIR_MS, "link views back");
  const l = await t.agent.labs.addLink("rc", { a: `n${2 * PAIRS}:eth1`, b: `n${2 * PAIRS + 1}:eth1` });
  assert.equal(l.state, "up");
  await pingWithin(ns[2 * PAIRS]!, ip(2 * PAIRS + 1), REPAIR_MS);
  await t.agent.labs.removeLink("rc", l.id);
});

test("the bridge deleted by hand comes back with its ports, links ping again", async () => {
  const t0 = performance.now();
  await t.ovs.vsctl(["del-br", t.config.bridge]);
  const portsMs = await until(
    async () => (await ownedPorts(t.ovs)).length === ns.length,
    REPAIR_MS,
    "bridge and owned ports re-created",
  );
  const ms = await allPairsPing(REPAIR_MS);
  console.log(
    `# traffic back ${Math.round(performance.now() - t0)} ms after del-br (ports back ${portsMs} ms later, ping poll ${ms} ms)`,
  );
  const states = Object.values(linkStates());
  assert.ok(
    states.every((s) => s.startsWith("up/")),
    `links up again: ${JSON.stringify(linkStates())}`,
  );
  assertNoSharedVlan(await ownedPorts(t.ovs));
});

test("a tag changed by hand on an owned port is fixed; a port deleted by hand comes back", async () => {
  const [victim] = (await ownedPorts(t.ovs)).filter((p) => p.ids.archetype_link === "p0");
  assert.ok(victim);
  const other = (await ownedPorts(t.ovs)).find((p) => p.ids.archetype_link === "p1");
  // Put p0's port into p1's VLAN: that would merge two links.
  await t.ovs.vsctl(["set", "Port", victim.name, `tag=${other?.tag}`]);
  await until(
    async () => {
      const ports = await ownedPorts(t.ovs);
      const v = ports.find((p) => p.name === victim.name);
      return (
        v?.tag !== other?.tag &&
        ports.filter((p) => p.ids.archetype_link === "p0").every((p) => p.tag === v?.tag)
      );
    },
    REPAIR_MS,
    "tag fixed",
  );
  assertNoSharedVlan(await ownedPorts(t.ovs));
  await allPairsPing(REPAIR_MS);

  // An unlinked port put into a link's VLAN by hand is isolated again.
  const spare = (await ownedPorts(t.ovs)).find((p) => p.ids.archetype_node === `n${2 * PAIRS}`);
  assert.ok(spare && !spare.ids.archetype_link);
  await t.ovs.vsctl(["set", "Port", spare.name, `tag=${other?.tag}`]);
  await until(
    async () => (await ownedPorts(t.ovs)).find((p) => p.name === spare.name)?.tag === spare.tag,
    REPAIR_MS,
    "stray port isolated again",
  );
  assert.equal(await ping(ns[2 * PAIRS]!, ip(2)), false, "the stray port reaches nothing");

  await t.ovs.vsctl(["del-port", t.config.bridge, victim.name]);
  await until(
    async () => (await ownedPorts(t.ovs)).some((p) => p.name === victim.name),
    REPAIR_MS,
    "port re-added",
  );
  await allPairsPing(REPAIR_MS);
  assertNoSharedVlan(await ownedPorts(t.ovs));
});
