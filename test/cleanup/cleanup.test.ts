import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { OvsBackend } from "../../src/backends/ovs/ovs-backend.js";
import { run } from "../../src/common/exec.js";
import { listLinks } from "../../src/link/index.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { TEST_DATAPATH } from "../harness/kernel-host.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectPing } from "../harness/traffic.js";

/**
 * Orphans made by hand are found and removed; everything that is not an orphan (foreign ports and
 * bridges, bridge members, young resources) is left exactly as it was.
 */
/** Longer than any set-up takes, even in the emulated kernel test host: what the agent made stays young. */
const GRACE_S = 600;
let t: TestAgent;
let sw: string;
const pool = new NetnsPool("cln");

before(async () => {
  t = await startTestAgent({ cleanupGraceS: GRACE_S });
  sw = t.ovs.netns!;
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

const ipn = (args: string[]) => run("ip", ["-n", sw, ...args]);
async function veth(name: string, peer: string): Promise<void> {
  await ipn(["link", "add", name, "type", "veth", "peer", "name", peer]);
  await ipn(["link", "set", name, "up"]);
  await ipn(["link", "set", peer, "up"]);
}
function marks(ids: Record<string, string>): string[] {
  return Object.entries(ids).map(([k, v]) => `external_ids:${k}=${v}`);
}
async function ports(bridge: string): Promise<string[]> {
  return (await t.ovs.vsctl(["list-ports", bridge]))
    .split("\n")
    .filter((l) => l !== "")
    .sort();
}
async function kernel(): Promise<string[]> {
  return (await listLinks({ name: sw })).map((l) => l.name).sort();
}
function hostPort(lab: string, node: string, iface: string): string {
  const v = t.agent.labs.getLab(lab);
  const i = v.nodes.find((n) => n.name === node)?.interfaces.find((x) => x.name === iface);
  assert.ok(i, `${lab} ${node}:${iface}`);
  return i.host_port;
}
const key = (o: { kind: string; name: string }) => `${o.kind} ${o.name}`;

/** Until the agent's OVSDB cache has the port (its change is what schedules the drift reconcile). */
async function untilCached(port: string): Promise<void> {
  const backend = t.agent.services.backend as OvsBackend;
  const deadline = Date.now() + 30_000;
  while (!backend.ovsdb.portByName(port)) {
    if (Date.now() > deadline) assert.fail(`port ${port} never reached the agent's cache`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("hand-made orphans are reported, then removed in one pass; nothing else is touched", async () => {
  const br = t.config.bridge;
  const labs = t.agent.labs;
  const [n1, n2, n3, n4, n5] = (await pool.create(5)) as [string, string, string, string, string];
  const old = String(Date.now() - 3_600_000);

  // Lab "old": one link, plus r1:eth2 whose kernel device will vanish.
  await labs.putLab("old", {
    nodes: [
      { name: "r1", netns: n1, interfaces: [{ name: "eth1" }, { name: "eth2" }] },
      { name: "r2", netns: n2, interfaces: [{ name: "eth1" }] },
    ],
    links: [{ a: "r1:eth1", b: "r2:eth1" }],
  });
  await addAddress(n1, "eth1", "198.18.8.1/24");
  await addAddress(n2, "eth1", "198.18.8.2/24");
  // Lab "gone": removed from the desired state behind the agent's back.
  await labs.putLab("gone", {
    nodes: [{ name: "r3", netns: n3, interfaces: [{ name: "eth1" }] }],
    links: [],
  });
  const lostPort = hostPort("old", "r1", "eth2");
  const gonePort = hostPort("gone", "r3", "eth1");
  await t.agent.store.deleteLab("gone");

  // Ports with our marks whose owners do not exist.
  await veth("vhghost1", "xgh1");
  await t.ovs.vsctl([
    "add-port",
    br,
    "vhghost1",
    "tag=3001",
    "--",
    "set",
    "port",
    "vhghost1",
    ...marks({ archetype_kind: "node", archetype_lab: "ghost", archetype_created: old }),
  ]);
  await veth("vpghost1", "vcghost1");
  await t.ovs.vsctl([
    "add-port",
    br,
    "vpghost1",
    "tag=3002",
    "--",
    "set",
    "port",
    "vpghost1",
    ...marks({ archetype_kind: "plugin", archetype_lab: "ghost", archetype_created: old }),
  ]);
  await t.ovs.vsctl([
    "add-port",
    br,
    "vxlan4242",
    "tag=3003",
    "--",
    "set",
    "interface",
    "vxlan4242",
    "type=vxlan",
    "options:remote_ip=198.18.0.9",
    "options:key=4242",
    "--",
    "set",
    "port",
    "vxlan4242",
    ...marks({
      archetype_kind: "overlay",
      archetype_lab: "ghost",
      archetype_link: "lx",
      archetype_created: old,
    }),
  ]);
  // A stray veth with our prefix, on no bridge.
  await veth("vhstray1", "xst1");

  // Not orphans: a foreign port (our prefix, no marks) and a plain one on our bridge; a foreign
  // bridge whose port even carries our marks; a Linux bridge member; a veth without our prefix.
  await veth("vhforeign1", "xfo1");
  await veth("fgn1", "xfg1");
  await t.ovs.vsctl(["add-port", br, "vhforeign1"]);
  await t.ovs.vsctl(["add-port", br, "fgn1"]);
  await veth("vhfbr1", "xfb1");
  await t.ovs.vsctl(["add-br", "fbr8", "--", "set", "bridge", "fbr8", "datapath_type=netdev"]);
  await t.ovs.vsctl([
    "add-port",
    "fbr8",
    "vhfbr1",
    "--",
    "set",
    "port",
    "vhfbr1",
    ...marks({ archetype_kind: "node", archetype_lab: "ghost", archetype_created: old }),
  ]);
  await ipn(["link", "add", "lbr8", "type", "bridge"]);
  await veth("vhlbr1", "xlb1");
  await ipn(["link", "set", "vhlbr1", "master", "lbr8"]);
  await veth("zzloose1", "xzl1");

  // The marked ports above look like drift: let that reconcile run, then make the last orphan.
  await untilCached("vhfbr1");
  await t.agent.settled();
  await ipn(["link", "del", lostPort]);

  // Everything the agent made is younger than the grace period, the stray veth is seen for the
  // first time: only the hand-made ports with old marks are orphans yet.
  const first = await t.agent.cleanup.audit();
  assert.deepEqual(first.map(key).sort(), [
    "overlay_port vxlan4242",
    "plugin_endpoint vpghost1",
    "port vhghost1",
  ]);

  // Everything made so far becomes old, everything made from here on stays young: the grace
  // period is set, right before the audit, to the age of this moment (no waiting on the clock).
  const split = Date.now();
  // A young lab and young hand-made resources.
  await labs.putLab("young", {
    nodes: [
      { name: "r4", netns: n4, interfaces: [{ name: "eth1" }] },
      { name: "r5", netns: n5, interfaces: [{ name: "eth1" }] },
    ],
    links: [{ a: "r4:eth1", b: "r5:eth1" }],
  });
  await addAddress(n4, "eth1", "198.18.9.1/24");
  await addAddress(n5, "eth1", "198.18.9.2/24");
  await veth("vhyoung1", "xyo1");
  await t.ovs.vsctl([
    "add-port",
    br,
    "vhyoung1",
    "--",
    "set",
    "port",
    "vhyoung1",
    // Stamped an hour ahead: young whatever the audit's clock says (a drift reconcile holding the
    // audit's lock on a busy machine moves its moment past a stamp of now).
    ...marks({
      archetype_kind: "node",
      archetype_lab: "ghost",
      archetype_created: String(Date.now() + 3_600_000),
    }),
  ]);
  await veth("vhstray2", "xst2");
  await untilCached("vhyoung1");
  await t.agent.settled(); // (its reconcile also re-created the lost device: lose it again)
  await t.agent.reconcile();
  await ipn(["link", "del", lostPort]);

  const expected = [
    "overlay_port vxlan4242",
    "plugin_endpoint vpghost1",
    `port ${gonePort}`,
    `port ${lostPort}`,
    "port vhghost1",
    "veth vhstray1",
  ].sort();
  t.config.cleanupGraceS = (Date.now() - split + 1) / 1000;
  const audited = await t.agent.cleanup.audit();
  assert.deepEqual(audited.map(key).sort(), expected);
  const reasons = new Map(audited.map((o) => [o.name, o.reason]));
  assert.match(reasons.get(lostPort)!, /kernel interface no longer exists/);
  assert.match(reasons.get(gonePort)!, /lab gone, which does not exist/);

  const ovsBefore = await ports(br);
  const fbrBefore = await ports("fbr8");
  const kernelBefore = await kernel();
  const removed = await t.agent.cleanup.run();
  assert.deepEqual(removed.map(key).sort(), expected);

  const gonePorts = new Set(["vxlan4242", "vpghost1", gonePort, lostPort, "vhghost1"]);
  assert.deepEqual(
    await ports(br),
    ovsBefore.filter((p) => !gonePorts.has(p)),
  );
  assert.deepEqual(await ports("fbr8"), fbrBefore);
  const goneDevices = new Set(["vhghost1", "xgh1", "vpghost1", "vcghost1", gonePort, "vhstray1", "xst1"]);
  // On the kernel datapath the last VXLAN port takes the kernel's tunnel device with it.
  if (TEST_DATAPATH === "system") goneDevices.add("vxlan_sys_4789");
  assert.deepEqual(
    await kernel(),
    kernelBefore.filter((n) => !goneDevices.has(n)),
  );
  const member = await listLinks({ name: sw });
  assert.equal(member.find((l) => l.name === "vhlbr1")?.master, "lbr8");
  for (const kept of ["vhforeign1", "fgn1", "vhyoung1", "vhstray2", "zzloose1", "vhfbr1"])
    assert.ok(kernelBefore.includes(kept) && (await kernel()).includes(kept), kept);

  // Removal counted per kind; a second pass finds nothing; the labs still work.
  const counted = (await t.agent.services.metrics.cleanupRemoved.get()).values;
  assert.equal(
    counted.reduce((s, v) => s + v.value, 0),
    6,
  );
  // A second audit finds nothing more, except the young hand-made things once they have aged.
  const again = await t.agent.cleanup.audit();
  assert.ok(
    again.every((o) => o.name === "vhyoung1" || o.name === "vhstray2"),
    JSON.stringify(again),
  );
  await expectPing(n1, "198.18.8.2");
  await expectPing(n4, "198.18.9.2");

  // The lost interface is the reconciler's to bring back.
  assert.equal(t.agent.labs.getLab("old").nodes.find((n) => n.name === "r1")?.interfaces[1]?.present, false);
  await t.agent.reconcile();
  assert.equal(t.agent.labs.getLab("old").nodes.find((n) => n.name === "r1")?.interfaces[1]?.present, true);

  await t.ovs.vsctl(["del-br", "fbr8"]);
  await labs.deleteLab("old");
  await labs.deleteLab("young");
});
