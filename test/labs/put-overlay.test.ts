import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { run } from "../../src/common/exec.js";
import { hostPortName } from "../../src/model/derived-names.js";
import type { LabSpec, OverlaySpec } from "../../src/model/views.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectNoPing, expectPing } from "../harness/traffic.js";
import { startTwoHosts, type TwoHosts } from "../harness/two-hosts.js";
import { ovsPorts, until } from "./facts.js";

/**
 * Overlay links go with their interface: a PUT that leaves the interface (or its node) out, and
 * DELETE of the lab, detach the tunnel (VXLAN port, VLAN and record gone) so that a later
 * interface of the same name is a new, isolated one and does not rejoin the remote tunnel.
 * Two simulated hosts; b1 on host B keeps its side of the tunnel throughout.
 */
let h: TwoHosts;
const pool = new NetnsPool("pov");
let a1: string;
let a2: string;
let b1: string;
const LAB = "ov";
const VNI = 5201;
const A1 = "198.19.5.1/24";
const B1 = "198.19.5.2";

before(async () => {
  h = await startTwoHosts();
  [a1, a2, b1] = (await pool.create(3)) as [string, string, string];
  await h.a.agent.labs.putLab(LAB, spec({ eth1: true }));
  await h.b.agent.labs.addInterfaces(LAB, "b1", { netns: b1, interfaces: [{ name: "eth1" }] });
  await addAddress(b1, "eth1", `${B1}/24`);
  const b: OverlaySpec = { ...overlay(), node: "b1", local_ip: h.b.ip, remote_ip: h.a.ip };
  await h.b.agent.services.overlays.attach(b, { wait: true });
});
after(async () => {
  await pool.destroyAll();
  await h?.close();
});

/** Host A's lab: a1 with eth2 and, unless left out, eth1 (the overlay's); a2 always. */
function spec(opts: { eth1?: boolean; mtu?: number; noA1?: boolean }): LabSpec {
  const ifs = [...(opts.eth1 ? [{ name: "eth1", mtu: opts.mtu }] : []), { name: "eth2" }];
  return {
    nodes: [
      ...(opts.noA1 ? [] : [{ name: "a1", netns: a1, interfaces: ifs }]),
      { name: "a2", netns: a2, interfaces: [{ name: "eth1" }] },
    ],
    links: [],
  };
}

function overlay(): OverlaySpec {
  return {
    lab: LAB,
    link: "x1",
    node: "a1",
    interface: "eth1",
    vni: VNI,
    local_ip: h.a.ip,
    remote_ip: h.b.ip,
  };
}

/** a1:eth1's address (again: the interface may be a new device). */
async function addressA1(): Promise<void> {
  await run("ip", ["-n", a1, "addr", "flush", "dev", "eth1"]);
  await addAddress(a1, "eth1", A1);
}

async function attachA(): Promise<number> {
  const v = await h.a.agent.services.overlays.attach(overlay(), { wait: true });
  await addressA1();
  await expectPing(a1, B1, { count: 2, timeoutS: 2 });
  assert.ok(v.vlan !== null);
  return v.vlan;
}

/** Host A has nothing left of the tunnel: no VXLAN port, no port on its VLAN, no record, no status. */
async function tunnelGone(vlan: number): Promise<void> {
  const ports = await ovsPorts(h.a.ovs);
  assert.deepEqual(
    ports.filter((p) => p.name === `vxlan${VNI}` || p.tag === vlan).map((p) => p.name),
    [],
    "neither the VXLAN port nor any port on the overlay VLAN is left",
  );
  assert.equal(h.a.agent.store.overlays.get(`${LAB}/x1`), undefined);
  assert.deepEqual(
    h.a.agent.services.overlays.status().map((t) => t.link),
    [],
  );
}

/** a1:eth1 exists again under the same name: isolated, even after reconcile and a restart. */
async function doesNotRejoin(vlan: number): Promise<void> {
  await addressA1();
  for (const step of ["put", "reconcile", "restart"]) {
    if (step === "reconcile") await h.a.agent.reconcile();
    if (step === "restart") {
      await h.a.stopAgent();
      await h.a.startAgent();
    }
    const hostPort = h.a.agent.store.lab(LAB)!.nodes.a1!.interfaces.eth1!.hostPort;
    const port = (await ovsPorts(h.a.ovs)).find((p) => p.name === hostPort);
    assert.ok(port, `${hostPort} is on the bridge (${step})`);
    assert.notEqual(port.tag, vlan, `${step}: a1:eth1 is not on the old overlay VLAN`);
    assert.equal(port.tag, Number(port.ids.archetype_isolated), `${step}: a1:eth1 is isolated`);
    assert.equal(port.ids.archetype_overlay, undefined, `${step}: a1:eth1 carries no overlay mark`);
    assert.equal(h.a.agent.services.overlays.status().length, 0, step);
    await expectNoPing(a1, B1);
  }
}

test("a PUT without the interface detaches its overlay link; the same name added again does not rejoin", async () => {
  const vlan = await attachA();
  const r = await h.a.agent.labs.putLab(LAB, spec({}));
  assert.deepEqual(r.changes.interfaces_removed, ["a1:eth1"]);
  assert.deepEqual(r.changes.overlays_detached, ["x1"]);
  await tunnelGone(vlan);
  await expectPing(b1, B1); // host B is untouched

  const back = await h.a.agent.labs.putLab(LAB, spec({ eth1: true }));
  assert.deepEqual(back.changes.interfaces_added, ["a1:eth1"]);
  assert.deepEqual(back.changes.overlays_detached, []);
  await doesNotRejoin(vlan);
});

test("a PUT without the node detaches its overlay link", async () => {
  const vlan = await attachA(); // the VNI was freed: it attaches again
  const r = await h.a.agent.labs.putLab(LAB, spec({ noA1: true }));
  assert.deepEqual(r.changes.nodes_removed, ["a1"]);
  assert.deepEqual(r.changes.overlays_detached, ["x1"]);
  await tunnelGone(vlan);
  await h.a.agent.labs.putLab(LAB, spec({ eth1: true }));
  await doesNotRejoin(vlan);
});

test("an interface only re-created (new MTU) keeps its overlay link", async () => {
  await attachA();
  const r = await h.a.agent.labs.putLab(LAB, spec({ eth1: true, mtu: 1450 }));
  assert.deepEqual(r.changes.interfaces_removed, ["a1:eth1"]);
  assert.deepEqual(r.changes.interfaces_added, ["a1:eth1"]);
  assert.deepEqual(r.changes.overlays_detached, []);
  assert.ok(h.a.agent.store.overlays.get(`${LAB}/x1`));
  await until(() => h.a.agent.services.overlays.status()[0]?.state === "up", 10_000, "tunnel up");
  await addressA1();
  await expectPing(a1, B1, { count: 2, timeoutS: 2 });
});

test("a failed PUT that would have detached the overlay link leaves it attached", async () => {
  const before1 = JSON.stringify([h.a.agent.store.lab(LAB), h.a.agent.store.overlays.get(`${LAB}/x1`)]);
  const [a3] = (await pool.create(1)) as [string];
  // Provisioning the new node fails: a foreign device holds its host port's name.
  const blocker = hostPortName(LAB, "a3", "eth1");
  await run("ip", ["-n", h.a.ovs.netns!, "link", "add", blocker, "type", "bridge"]);
  try {
    const s = spec({});
    s.nodes.push({ name: "a3", netns: a3, interfaces: [{ name: "eth1" }] });
    await assert.rejects(h.a.agent.labs.putLab(LAB, s), /rolled back: the lab is as it was/);
  } finally {
    await run("ip", ["-n", h.a.ovs.netns!, "link", "del", blocker]);
  }
  assert.equal(
    JSON.stringify([h.a.agent.store.lab(LAB), h.a.agent.store.overlays.get(`${LAB}/x1`)]),
    before1,
  );
  assert.equal(h.a.agent.services.overlays.status()[0]?.state, "up");
  // Neither a1:eth1 nor the tunnel was touched (removals wait for the additions): it pings.
  await expectPing(a1, B1, { count: 2, timeoutS: 2 });
});

test("DELETE of the lab detaches its overlay links; a new lab of the same name does not rejoin", async () => {
  const vlan = h.a.agent.services.overlays.status()[0]!.vlan!;
  await h.a.agent.labs.deleteLab(LAB);
  await tunnelGone(vlan);
  await h.a.agent.labs.putLab(LAB, spec({ eth1: true }));
  await doesNotRejoin(vlan);
});
