import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AgentError, type ErrorCode } from "../../src/common/errors.js";
import { run } from "../../src/common/exec.js";
import type { LabSpec } from "../../src/model/views.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectNoPing, expectPing } from "../harness/traffic.js";
import { assertNoSharedVlan, hostVeths, kernelLinks, ownedPorts } from "./facts.js";

/** The lab service on a real OVS: typed errors that change nothing, and declarative PUTs. */
const pool = new NetnsPool("lsv");
after(() => pool.destroyAll());

async function rejects(p: Promise<unknown> | (() => unknown), code: ErrorCode, status?: number) {
  const run = typeof p === "function" ? Promise.resolve().then(p) : p;
  await assert.rejects(run, (e: unknown) => {
    assert.ok(e instanceof AgentError, `expected an AgentError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (status !== undefined) assert.equal(e.status, status);
    assert.ok(e.message.length > 0);
    return true;
  });
}

/** Everything a bad request could have touched: OVS ports and tags, veths, nodes' links, records. */
async function snapshot(t: TestAgent, ns: readonly string[]) {
  return {
    ports: (await ownedPorts(t.ovs)).sort((a, b) => a.name.localeCompare(b.name)),
    veths: (await hostVeths(t.ovs)).sort(),
    nodes: await Promise.all(ns.map(kernelLinks)),
    labs: JSON.stringify(t.agent.store.labs()),
  };
}

describe("bad input gives a typed error and changes nothing", () => {
  let t: TestAgent;
  let ns: string[];
  before(async () => {
    t = await startTestAgent();
    ns = await pool.create(3);
    for (const [i, n] of ns.entries())
      await t.agent.labs.addInterfaces("bad", `r${i + 1}`, { netns: n, interfaces: [{ name: "eth1" }] });
    await t.agent.labs.addLink("bad", { a: "r1:eth1", b: "r2:eth1", id: "l12" });
  });
  after(() => t?.close());

  test("unknown lab, node, interface, link, namespace; bad names; linked ends", async () => {
    const labs = t.agent.labs;
    const before1 = await snapshot(t, ns);
    await rejects(() => labs.getLab("nope"), "LAB_NOT_FOUND", 404);
    await rejects(labs.removeLink("nope", "l12"), "LAB_NOT_FOUND", 404);
    await rejects(labs.deleteLab("nope"), "LAB_NOT_FOUND", 404);
    await rejects(labs.removeLink("bad", "l99"), "LINK_NOT_FOUND", 404);
    await rejects(labs.setCarrier("nope", "r1", "eth1", "down"), "LAB_NOT_FOUND", 404);
    await rejects(labs.setCarrier("bad", "ghost", "eth1", "down"), "NODE_NOT_FOUND", 404);
    await rejects(labs.setCarrier("bad", "r1", "eth9", "down"), "INTERFACE_NOT_FOUND", 404);
    await rejects(labs.setLinkCarrier("bad", "l99", "down"), "LINK_NOT_FOUND", 404);
    await rejects(
      labs.addInterfaces("bad", "r4", { netns: "archnet-no-such-ns", interfaces: [{ name: "eth1" }] }),
      "NETNS_NOT_FOUND",
      404,
    );
    await rejects(
      labs.addInterfaces("bad", "r1", {
        netns: ns[0]!,
        interfaces: [{ name: "an-interface-name-too-long" }],
      }),
      "INVALID_NAME",
      400,
    );
    await rejects(
      labs.addInterfaces("bad", "n".repeat(64), { netns: ns[0]!, interfaces: [{ name: "eth2" }] }),
      "INVALID_NAME",
      400,
    );
    await rejects(
      labs.addInterfaces("l".repeat(64), "r1", { netns: ns[0]!, interfaces: [{ name: "eth2" }] }),
      "INVALID_NAME",
      400,
    );
    await rejects(
      labs.addInterfaces("bad", "r1", { netns: ns[1]!, interfaces: [{ name: "eth2" }] }),
      "CONFLICT",
      409,
    );
    await rejects(labs.addLink("bad", { a: "r1:eth1", b: "r3:eth1" }), "ALREADY_LINKED", 409);
    await rejects(labs.addLink("bad", { a: "r3:eth1", b: "r2:eth1" }), "ALREADY_LINKED", 409);
    await rejects(labs.addLink("bad", { a: "r3:eth1", b: "r3:eth1" }), "BAD_REQUEST", 400);
    await rejects(labs.addLink("bad", { a: "r3", b: "r2:eth1" }), "INVALID_NAME", 400);
    await rejects(labs.addLink("bad", { a: "r3:eth1", b: "r2:eth1", id: "l12" }), "CONFLICT", 409);
    await rejects(labs.addLink("bad", { a: "r3:eth1", b: "r1:eth1", id: "bad id" }), "INVALID_NAME", 400);
    const spec: LabSpec = {
      nodes: [{ name: "r1", netns: ns[0]!, interfaces: [{ name: "eth1" }] }],
      links: [
        { a: "r1:eth1", b: "r2:eth1" },
        { a: "r1:eth1", b: "r3:eth1" },
      ],
    };
    await rejects(labs.putLab("bad", spec), "ALREADY_LINKED", 409);
    await rejects(labs.putLab("other", spec), "ALREADY_LINKED", 409);
    await rejects(
      labs.putLab("bad", {
        nodes: [{ name: "r1", netns: "archnet-no-such-ns", interfaces: [{ name: "eth1" }] }],
        links: [],
      }),
      "NETNS_NOT_FOUND",
      404,
    );
    await rejects(
      labs.putLab("bad", {
        nodes: [{ name: "r1", netns: ns[0]!, interfaces: [{ name: "eth1", mtu: 20 }] }],
        links: [],
      }),
      "BAD_REQUEST",
      400,
    );
    assert.deepEqual(await snapshot(t, ns), before1);
    assert.deepEqual(
      labs.listLabs().map((l) => l.lab),
      ["bad"],
      "no lab was created by a rejected request",
    );
  });
});

describe("VLAN ranges exhausted", () => {
  let t: TestAgent;
  let ns: string[];
  before(async () => {
    t = await startTestAgent({
      vlan: {
        local: { min: 100, max: 101 },
        isolated: { min: 1000, max: 1005 },
        overlay: { min: 3000, max: 3001 },
      },
    });
    ns = await pool.create(6);
  });
  after(() => t?.close());

  test("a third link with two local VLANs is VLAN_EXHAUSTED and changes nothing", async () => {
    const labs = t.agent.labs;
    for (const [i, n] of ns.entries())
      await labs.addInterfaces("ex", `r${i}`, { netns: n, interfaces: [{ name: "eth1" }] });
    await labs.addLink("ex", { a: "r0:eth1", b: "r1:eth1" });
    await labs.addLink("ex", { a: "r2:eth1", b: "r3:eth1" });
    const before1 = await snapshot(t, ns);
    await rejects(labs.addLink("ex", { a: "r4:eth1", b: "r5:eth1" }), "VLAN_EXHAUSTED", 409);
    assert.deepEqual(await snapshot(t, ns), before1);
    assert.equal(labs.listLinks("ex").length, 2);
    // A declarative PUT asking for one link too many is refused as a whole.
    const spec: LabSpec = {
      nodes: ns.map((n, i) => ({ name: `r${i}`, netns: n, interfaces: [{ name: "eth1" }] })),
      links: [
        { a: "r0:eth1", b: "r1:eth1" },
        { a: "r2:eth1", b: "r3:eth1" },
        { a: "r4:eth1", b: "r5:eth1" },
      ],
    };
    await rejects(labs.putLab("ex", spec), "VLAN_EXHAUSTED", 409);
    assert.deepEqual(await snapshot(t, ns), before1);
    // Freeing one makes room.
    await labs.removeLink("ex", "r0-eth1--r1-eth1");
    const l = await labs.addLink("ex", { a: "r4:eth1", b: "r5:eth1" });
    assert.equal(l.state, "up");
    assertNoSharedVlan(await ownedPorts(t.ovs));
  });

  test("interfaces beyond the isolated range are VLAN_EXHAUSTED and leave no veth behind", async () => {
    const labs = t.agent.labs;
    const before1 = await snapshot(t, ns);
    await rejects(
      labs.addInterfaces("ex", "r0", { netns: ns[0]!, interfaces: [{ name: "eth2" }] }),
      "VLAN_EXHAUSTED",
      409,
    );
    assert.deepEqual(await snapshot(t, ns), before1);
    await labs.deleteLab("ex");
    assert.deepEqual(await ownedPorts(t.ovs), []);
    assert.deepEqual(await hostVeths(t.ovs), []);
  });
});

describe("declarative PUT", () => {
  let t: TestAgent;
  before(async () => {
    t = await startTestAgent();
  });
  after(() => t?.close());

  test("adds, changes and removes; a second PUT changes nothing; pending links come up", async () => {
    const labs = t.agent.labs;
    const [n1, n2, n3] = (await pool.create(3)) as [string, string, string];
    const spec1: LabSpec = {
      nodes: [
        { name: "r1", netns: n1, interfaces: [{ name: "eth1" }, { name: "eth2" }] },
        { name: "r2", netns: n2, interfaces: [{ name: "eth1" }] },
      ],
      links: [
        { a: "r1:eth1", b: "r2:eth1", id: "l1" },
        // r3 is not declared yet: the link waits for it.
        { a: "r1:eth2", b: "r3:eth1", id: "l2" },
      ],
    };
    const r1 = await labs.putLab("decl", spec1);
    assert.deepEqual(r1.changes.nodes_added.sort(), ["r1", "r2"]);
    assert.deepEqual(r1.changes.links_added.sort(), ["l1", "l2"]);
    const states = (v: typeof r1.lab) => Object.fromEntries(v.links.map((l) => [l.id, l.state]));
    assert.deepEqual(states(r1.lab), { l1: "up", l2: "pending" });
    assert.equal(r1.lab.links.find((l) => l.id === "l2")?.vlan, null);
    await addAddress(n1, "eth1", "198.18.20.1/24");
    await addAddress(n2, "eth1", "198.18.20.2/24");
    await expectPing(n1, "198.18.20.2");

    const again = await labs.putLab("decl", spec1);
    assert.deepEqual(
      Object.values(again.changes).flat(),
      [],
      `a second equal PUT changes nothing: ${JSON.stringify(again.changes)}`,
    );
    await expectPing(n1, "198.18.20.2");

    // r3 appears: the pending link comes up; r2's eth1 gets a new MTU (re-created); l1 moves.
    const spec2: LabSpec = {
      nodes: [
        { name: "r1", netns: n1, interfaces: [{ name: "eth1" }, { name: "eth2" }] },
        { name: "r2", netns: n2, interfaces: [{ name: "eth1", mtu: 1500 }] },
        { name: "r3", netns: n3, interfaces: [{ name: "eth1" }] },
      ],
      links: [
        { a: "r1:eth1", b: "r2:eth1", id: "l1" },
        { a: "r1:eth2", b: "r3:eth1", id: "l2" },
      ],
    };
    const r2 = await labs.putLab("decl", spec2);
    assert.deepEqual(r2.changes.nodes_added, ["r3"]);
    assert.deepEqual(r2.changes.interfaces_removed, ["r2:eth1"]);
    assert.deepEqual(r2.changes.interfaces_added.sort(), ["r2:eth1", "r3:eth1"]);
    assert.deepEqual(states(r2.lab), { l1: "up", l2: "up" });
    const mtu = r2.lab.nodes.find((n) => n.name === "r2")?.interfaces[0]?.mtu;
    assert.equal(mtu, 1500);
    await addAddress(n2, "eth1", "198.18.20.2/24");
    await addAddress(n1, "eth2", "198.18.21.1/24");
    await addAddress(n3, "eth1", "198.18.21.3/24");
    // r2's eth1 is a new device with a new MAC: forget the old neighbour entry.
    await run("ip", ["-n", n1, "neigh", "flush", "all"]);
    await expectPing(n1, "198.18.20.2");
    await expectPing(n1, "198.18.21.3");
    assertNoSharedVlan(await ownedPorts(t.ovs));

    // Remove r2 and link l1, re-point l2: r1:eth2 now to r3... and r1:eth1 to r3? Only one link per end.
    const spec3: LabSpec = {
      nodes: [
        { name: "r1", netns: n1, interfaces: [{ name: "eth1" }] },
        { name: "r3", netns: n3, interfaces: [{ name: "eth1" }] },
      ],
      links: [{ a: "r1:eth1", b: "r3:eth1", id: "l2" }],
    };
    const r3 = await labs.putLab("decl", spec3);
    assert.deepEqual(r3.changes.nodes_removed, ["r2"]);
    assert.deepEqual(r3.changes.interfaces_removed.sort(), ["r1:eth2", "r2:eth1"]);
    assert.deepEqual(r3.changes.links_removed.sort(), ["l1", "l2"]);
    assert.deepEqual(r3.changes.links_added, ["l2"]);
    assert.deepEqual(states(r3.lab), { l2: "up" });
    assert.deepEqual(await kernelLinks(n2).then((l) => l.filter((x) => x.endsWith(":eth1"))), []);
    await addAddress(n3, "eth1", "198.18.20.3/24");
    await expectPing(n1, "198.18.20.3");
    const owned = await ownedPorts(t.ovs);
    assert.equal(owned.length, 2);
    assert.equal((await hostVeths(t.ovs)).length, 2);
    assertNoSharedVlan(owned);

    const empty = await labs.putLab("decl", { nodes: [], links: [] });
    assert.deepEqual(empty.changes.nodes_removed.sort(), ["r1", "r3"]);
    assert.deepEqual(await ownedPorts(t.ovs), []);
    assert.deepEqual(await hostVeths(t.ovs), []);
    await expectNoPing(n1, "198.18.20.3");
    await labs.deleteLab("decl");
  });
});
