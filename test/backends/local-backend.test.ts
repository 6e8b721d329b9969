import assert from "node:assert/strict";
import { after, before, type TestContext, test } from "node:test";
import { capability } from "../../src/backends/network-backend.js";
import { AgentError } from "../../src/common/errors.js";
import { ipJson } from "../../src/link/index.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, ifindex, NetnsPool, nsExec } from "../harness/netns.js";
import { expectNoPing, expectPing } from "../harness/traffic.js";

/** The legacy backend: links are veth pairs directly between the nodes' namespaces. */
let t: TestAgent;
const pool = new NetnsPool("lcl");

before(async () => {
  t = await startTestAgent({ backend: "local" });
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

/** Deletes the lab when the test ends, also when it fails: a lab left behind fails the next tests. */
function dropLabAfter(ctx: TestContext, lab: string): void {
  ctx.after(async () => {
    if (t.agent.labs.listLabs().some((l) => l.lab === lab)) await t.agent.labs.deleteLab(lab);
  });
}

async function linkShow(ns: string, dev: string): Promise<string> {
  return (await nsExec(ns, ["ip", "link", "show", "dev", dev])).stdout;
}
async function exists(ns: string, dev: string): Promise<boolean> {
  const links = await ipJson<{ ifname: string }[]>(["link", "show"], { name: ns });
  return links.some((l) => l.ifname === dev);
}

test("link pings, isolation holds, carrier down is NO-CARRIER and stops traffic, up restores", async (ctx) => {
  dropLabAfter(ctx, "l1");
  const [n1, n2, n3] = (await pool.create(3)) as [string, string, string];
  const labs = t.agent.labs;
  assert.equal(t.agent.services.backend.name, "local");
  await labs.putLab("l1", {
    nodes: [
      { name: "r1", netns: n1, interfaces: [{ name: "eth1", mtu: 1400 }] },
      { name: "r2", netns: n2, interfaces: [{ name: "eth1", mtu: 1400 }, { name: "eth2" }] },
      { name: "r3", netns: n3, interfaces: [{ name: "eth1" }] },
    ],
    links: [{ a: "r1:eth1", b: "r2:eth1", id: "l12" }],
  });
  // Only linked interfaces exist.
  assert.equal(await exists(n3, "eth1"), false);
  assert.match(await linkShow(n1, "eth1"), /mtu 1400/);
  await addAddress(n1, "eth1", "198.18.20.1/24");
  await addAddress(n2, "eth1", "198.18.20.2/24");
  await expectPing(n1, "198.18.20.2", { count: 2 });
  assert.equal(t.agent.labs.getLab("l1").links[0]?.state, "up");

  // Isolation: r3 linked to r2:eth2 cannot reach r1's link; r2:eth2 is its own segment.
  await labs.addLink("l1", { a: "r3:eth1", b: "r2:eth2", id: "l23" });
  await addAddress(n3, "eth1", "198.18.20.3/24");
  await addAddress(n2, "eth2", "198.18.21.2/24");
  await addAddress(n3, "eth1", "198.18.21.3/24");
  await expectNoPing(n3, "198.18.20.1");
  await expectPing(n3, "198.18.21.2");

  // Carrier down on r1:eth1: r1 sees NO-CARRIER, no traffic; up restores, same device.
  const before1 = await ifindex(n1, "eth1");
  await labs.setCarrier("l1", "r1", "eth1", "down");
  assert.match(await linkShow(n1, "eth1"), /NO-CARRIER/);
  await expectNoPing(n1, "198.18.20.2");
  await labs.setCarrier("l1", "r1", "eth1", "up");
  assert.doesNotMatch(await linkShow(n1, "eth1"), /NO-CARRIER/);
  await expectPing(n1, "198.18.20.2");
  assert.equal(await ifindex(n1, "eth1"), before1);

  // Link carrier down: both ends lose the link; up restores.
  const down = await labs.setLinkCarrier("l1", "l12", "down");
  assert.equal(down.state, "down");
  await expectNoPing(n1, "198.18.20.2");
  await labs.setLinkCarrier("l1", "l12", "up");
  await expectPing(n1, "198.18.20.2");

  // Status lists the pairs as veth ports.
  const st = await t.agent.services.backend.status();
  assert.equal(st.backend, "local");
  assert.deepEqual(st.ports.map((p) => `${p.type} ${p.link} ${p.interface}`).sort(), [
    "veth l12 eth1",
    "veth l12 eth1",
    "veth l23 eth1",
    "veth l23 eth2",
  ]);

  // Unlink deletes the pair; relink creates it again.
  await labs.removeLink("l1", "l12");
  assert.equal(await exists(n1, "eth1"), false);
  assert.equal(await exists(n2, "eth1"), false);
  await labs.addLink("l1", { a: "r1:eth1", b: "r2:eth1", id: "l12" });
  await addAddress(n1, "eth1", "198.18.20.1/24");
  await addAddress(n2, "eth1", "198.18.20.2/24");
  await expectPing(n1, "198.18.20.2");

  // A pair deleted by hand is re-created by reconciliation; a restarted agent adopts pairs.
  await nsExec(n3, ["ip", "link", "del", "eth1"]);
  assert.equal(t.agent.labs.getLab("l1").links.find((l) => l.id === "l23")?.state, "up");
  const repairs = await t.agent.reconcile();
  assert.deepEqual(repairs, ["lab l1: link l23 re-created"]);
  assert.equal(await exists(n3, "eth1"), true);
  const kept = await ifindex(n1, "eth1");
  await t.restart();
  assert.equal(await ifindex(n1, "eth1"), kept);
  assert.deepEqual(await t.agent.reconcile(), []);
  assert.equal(t.agent.labs.getLab("l1").links.find((l) => l.id === "l12")?.state, "up");

  // Cleanup finds nothing of a healthy lab; teardown removes every pair.
  assert.deepEqual(await t.agent.cleanup.audit(), []);
  await t.agent.labs.deleteLab("l1");
  for (const ns of [n1, n2, n3]) {
    const names = (await ipJson<{ ifname: string }[]>(["link", "show"], { name: ns })).map((l) => l.ifname);
    assert.deepEqual(names, ["lo"]);
  }
});

test("overlay and plugin are not supported (501 with a reason)", async () => {
  const b = t.agent.services.backend;
  assert.equal(b.overlay, undefined);
  assert.equal(b.dockerPorts, undefined);
  assert.ok(b.orphans, "cleanup is supported");
  assert.match(b.unsupported.overlay ?? "", /ARCHETYPE_AGENT_BACKEND=ovs/);
  assert.match(b.unsupported.dockerPorts ?? "", /plugin/);
  const notSupported = (why: RegExp) => (e: unknown) =>
    e instanceof AgentError && e.code === "NOT_SUPPORTED" && e.status === 501 && why.test(e.message);
  assert.throws(() => capability(b, "dockerPorts"), notSupported(/plugin/));
  await assert.rejects(
    t.agent.services.overlays.attach({
      lab: "x",
      link: "x1",
      node: "a",
      interface: "eth1",
      vni: 5001,
      local_ip: "198.18.0.1",
      remote_ip: "198.18.0.2",
    }),
    notSupported(/ARCHETYPE_AGENT_BACKEND=ovs/),
  );
  assert.deepEqual(t.agent.services.overlays.status(), []);
});

test("cleanup: a pair whose namespace died is reported as stale state and forgotten", async (ctx) => {
  dropLabAfter(ctx, "l2");
  const [n1, n2] = (await pool.create(2)) as [string, string];
  await t.agent.labs.putLab("l2", {
    nodes: [
      { name: "a", netns: n1, interfaces: [{ name: "eth1" }] },
      { name: "b", netns: n2, interfaces: [{ name: "eth1" }] },
    ],
    links: [{ a: "a:eth1", b: "b:eth1", id: "ab" }],
  });
  await pool.destroyAll(); // both namespaces (and the pair) are gone
  const orphans = await t.agent.cleanup.audit();
  assert.deepEqual(
    orphans.map((o) => `${o.kind} ${o.name}`),
    ["state l2/ab"],
  );
  assert.deepEqual((await t.agent.cleanup.run()).length, 1);
  assert.equal(t.agent.labs.getLab("l2").links[0]?.state, "pending");
  await t.agent.labs.deleteLab("l2");
});
