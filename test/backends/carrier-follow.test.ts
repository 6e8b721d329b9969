import assert from "node:assert/strict";
import { test } from "node:test";
import type { CarrierFollow } from "../../src/backends/ovs/carrier/carrier-follow.js";
import type { OvsBackend } from "../../src/backends/ovs/ovs-backend.js";
import { ipBatch } from "../../src/link/index.js";
import type { OperState } from "../../src/model/views.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { lowerUp, until } from "../harness/carrier.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectNoPing, expectPing } from "../harness/traffic.js";

/**
 * A cable has two ends (OVS backend, real switch and namespaces): when one end of a link goes
 * dead, the node at the other end loses carrier too, and gets it back when the cause clears.
 */
const IP = ["198.18.31.1", "198.18.31.2", "198.18.31.3"] as const;
const LAB = "cfol";

function follow(t: TestAgent): CarrierFollow {
  return (t.agent.services.backend as OvsBackend).follow;
}

function operStates(t: TestAgent): Record<string, OperState> {
  const out: Record<string, OperState> = {};
  for (const n of t.agent.labs.getLab(LAB).nodes) {
    for (const i of n.interfaces) out[n.name] = i.oper_state;
  }
  return out;
}

/** Waits until both nodes' carrier and the views are as expected. */
async function expectState(
  t: TestAgent,
  ns: readonly string[],
  carrier: readonly boolean[],
  oper: Record<string, OperState>,
): Promise<void> {
  await until(
    "carrier",
    () => Promise.all(ns.map((n) => lowerUp(n))),
    (v) => v.every((c, i) => c === carrier[i]),
  );
  await until(
    "oper_state",
    () => operStates(t),
    (v) => Object.entries(oper).every(([k, s]) => v[k] === s),
  );
}

async function setup(
  t: { after(fn: () => Promise<void>): void },
  nodes: number,
  backend: "ovs" | "local" = "ovs",
) {
  const pool = new NetnsPool("cfol");
  const agent = await startTestAgent({ backend });
  t.after(async () => {
    await agent.agent.labs.deleteLab(LAB).catch(() => undefined);
    await pool.destroyAll();
    await agent.close();
  });
  const ns = await pool.create(nodes);
  await agent.agent.labs.putLab(LAB, {
    nodes: ns.map((n, i) => ({ name: `n${i}`, netns: n, interfaces: [{ name: "eth1" }] })),
    links: [{ a: "n0:eth1", b: "n1:eth1", id: "l" }],
  });
  for (const [i, n] of ns.entries()) await addAddress(n, "eth1", `${IP[i]}/24`);
  await expectPing(ns[0]!, IP[1]);
  return { agent, ns };
}

const nodeLink = (ns: string, state: "up" | "down") =>
  ipBatch([["link", "set", "dev", "eth1", state]], { netns: { name: ns } });

test("a node shuts its port: the peer loses carrier and ping stops both ways; up again: both have carrier, ping passes", async (t) => {
  const { agent, ns } = await setup(t, 2);
  const [a, b] = ns as [string, string];
  await nodeLink(a, "down");
  await expectState(agent, ns, [false, false], { n0: "no_carrier", n1: "peer_down" });
  const metrics = await agent.agent.services.metrics.registry.metrics();
  for (const state of ["no_carrier", "peer_down"])
    assert.match(metrics, new RegExp(`^archnet_interfaces\\{lab="${LAB}",state="${state}"\\} 1$`, "m"));
  await expectNoPing(b, IP[0], { timeoutS: 0.3 });
  await expectNoPing(a, IP[1], { timeoutS: 0.3 });
  await nodeLink(a, "up");
  await expectState(agent, ns, [true, true], { n0: "up", n1: "up" });
  await expectPing(a, IP[1]);
  await expectPing(b, IP[0]);
});

test("API carrier down on one end: both ends down (admin_down, peer_down); up: both back", async (t) => {
  const { agent, ns } = await setup(t, 2);
  const b = ns[1]!;
  await agent.agent.labs.setCarrier(LAB, "n0", "eth1", "down");
  await expectState(agent, ns, [false, false], { n0: "admin_down", n1: "peer_down" });
  await expectNoPing(b, IP[0], { timeoutS: 0.3 });
  // The peer's hold is not the user's intent: the record keeps n1 up.
  assert.equal(agent.agent.store.labs()[0]?.nodes.n1?.interfaces.eth1?.carrier, "up");
  await agent.agent.labs.setCarrier(LAB, "n0", "eth1", "up");
  await expectState(agent, ns, [true, true], { n0: "up", n1: "up" });
  await expectPing(b, IP[0]);
});

test("rewire while a peer is down: the held end comes back with its new, live peer", async (t) => {
  const { agent, ns } = await setup(t, 3);
  const [a, b, c] = ns as [string, string, string];
  await nodeLink(a, "down");
  await expectState(agent, [b], [false], { n0: "no_carrier", n1: "peer_down" });
  await agent.agent.labs.putLab(LAB, {
    nodes: ns.map((n, i) => ({ name: `n${i}`, netns: n, interfaces: [{ name: "eth1" }] })),
    links: [{ a: "n1:eth1", b: "n2:eth1", id: "m" }],
  });
  await expectState(agent, [b, c], [true, true], { n1: "up", n2: "up" });
  await expectPing(b, IP[2]);
  // And the other way: wired to the dead n0, n2 is held down.
  await agent.agent.labs.putLab(LAB, {
    nodes: ns.map((n, i) => ({ name: `n${i}`, netns: n, interfaces: [{ name: "eth1" }] })),
    links: [{ a: "n0:eth1", b: "n2:eth1", id: "k" }],
  });
  await expectState(agent, [b, c], [true, false], { n0: "no_carrier", n1: "up", n2: "peer_down" });
});

test("flap storm: 50 toggles in a burst leave both ends right, with bounded work per flap", async (t) => {
  const { agent, ns } = await setup(t, 2);
  const [a, b] = ns as [string, string];
  const f = follow(agent);
  const storm = (last: "up" | "down") => {
    const lines: string[][] = [];
    for (let i = 0; i < 50; i++) lines.push(["link", "set", "dev", "eth1", i % 2 === 0 ? "down" : "up"]);
    if (last === "down") lines.push(["link", "set", "dev", "eth1", "down"]);
    return ipBatch(lines, { netns: { name: a } });
  };
  const before = f.changes;
  await storm("up");
  await f.idle();
  await expectState(agent, ns, [true, true], { n0: "up", n1: "up" });
  await expectPing(b, IP[0]);
  await storm("down");
  await expectState(agent, ns, [false, false], { n0: "no_carrier", n1: "peer_down" });
  await f.idle();
  // At most one hold and one release of the peer per flap seen (coalesced bursts do less).
  const work = f.changes - before;
  assert.ok(work <= 2 * 51, `${work} carrier changes for 51 flaps`);
  t.diagnostic(`flap storm: ${work} peer carrier changes, ${f.rounds} evaluation rounds`);
});

test("an agent restart while one end is down keeps the peer down and the views right", async (t) => {
  const { agent, ns } = await setup(t, 2);
  const [a, b] = ns as [string, string];
  await nodeLink(a, "down");
  await expectState(agent, ns, [false, false], { n0: "no_carrier", n1: "peer_down" });
  await agent.restart();
  await agent.agent.settled();
  await follow(agent).idle();
  assert.equal(await lowerUp(b), false, "the restarted agent let the held end up");
  assert.equal(follow(agent).changes, 0, "the restarted agent released and held the peer again");
  assert.deepEqual(operStates(agent), { n0: "no_carrier", n1: "peer_down" });
  assert.equal(agent.agent.store.labs()[0]?.nodes.n1?.interfaces.eth1?.carrier, "up");
  await nodeLink(a, "up");
  await expectState(agent, ns, [true, true], { n0: "up", n1: "up" });
  await expectPing(b, IP[0]);
});

test("local backend: a direct pair is one veth, so the peer loses carrier by nature; the view says why", async (t) => {
  const { agent, ns } = await setup(t, 2, "local");
  const [a, b] = ns as [string, string];
  await nodeLink(a, "down");
  await until(
    "peer carrier",
    () => lowerUp(b),
    (c) => !c,
  );
  await expectNoPing(b, IP[0], { timeoutS: 0.3 });
  await nodeLink(a, "up");
  await until(
    "peer carrier",
    () => lowerUp(b),
    (c) => c,
  );
  await expectPing(b, IP[0]);
  await agent.agent.labs.setCarrier(LAB, "n0", "eth1", "down");
  assert.deepEqual(operStates(agent), { n0: "admin_down", n1: "peer_down" });
  await agent.agent.labs.setCarrier(LAB, "n0", "eth1", "up");
  assert.deepEqual(operStates(agent), { n0: "up", n1: "up" });
  await expectPing(b, IP[0]);
});

test("a node's namespace goes away: its peer loses carrier", async (t) => {
  const { agent, ns } = await setup(t, 2);
  const [a, b] = ns as [string, string];
  await ipBatch([["netns", "del", a]]);
  await expectState(agent, [b], [false], { n1: "peer_down" });
  await expectNoPing(b, IP[0], { timeoutS: 0.3 });
});
