import assert from "node:assert/strict";
import { test } from "node:test";
import { planLab, plannedRecord } from "../../src/labs/lab-plan.js";
import type { LabRecord, OverlayRecord } from "../../src/model/records.js";
import type { LabSpec } from "../../src/model/views.js";

/** Pure logic of a declarative plan: what goes with a removed interface, and the planned record. */
function lab(): LabRecord {
  const iface = (name: string) => ({
    name,
    hostPort: `vh-${name}`,
    mtu: 9000,
    carrier: "up" as const,
    createdAt: 1,
  });
  return {
    lab: "p",
    group: 65537,
    createdAt: 1,
    nodes: {
      r1: {
        name: "r1",
        netns: { name: "n1" },
        origin: "api",
        interfaces: { eth1: iface("eth1"), eth2: iface("eth2") },
      },
      r2: { name: "r2", netns: { name: "n2" }, origin: "api", interfaces: { eth1: iface("eth1") } },
    },
    links: { l1: { id: "l1", a: "r1:eth1", b: "r2:eth1", carrier: "up", createdAt: 1 } },
  };
}

function overlay(node: string, iface: string, link: string): OverlayRecord {
  return {
    lab: "p",
    link,
    node,
    interface: iface,
    vni: 1,
    localIp: "198.18.0.1",
    remoteIp: "198.18.0.2",
    mtu: 1450,
    createdAt: 1,
  };
}

test("overlay links of interfaces left out are detached; of re-created ones kept", () => {
  const spec: LabSpec = {
    nodes: [
      { name: "r1", netns: "n1", interfaces: [{ name: "eth1", mtu: 1500 }] }, // eth1 re-created, eth2 gone
    ],
    links: [],
  };
  const plan = planLab(
    lab(),
    spec,
    9000,
    [overlay("r1", "eth1", "x1"), overlay("r1", "eth2", "x2"), overlay("r2", "eth1", "x3")],
    new Set(),
  );
  assert.deepEqual(plan.changes.overlays_detached.sort(), ["x2", "x3"]);
  assert.deepEqual(plan.detachOverlays.map((o) => o.link).sort(), ["x2", "x3"]);
  assert.deepEqual(plan.changes.interfaces_removed.sort(), ["r1:eth1", "r1:eth2", "r2:eth1"]);
  // The kept overlay link still blocks a local link on its interface.
  assert.throws(
    () =>
      planLab(
        lab(),
        {
          ...spec,
          nodes: [...spec.nodes, { name: "r3", netns: "n3", interfaces: [{ name: "eth1" }] }],
          links: [{ a: "r1:eth1", b: "r3:eth1" }],
        },
        9000,
        [overlay("r1", "eth1", "x1")],
        new Set(),
      ),
    /carries an overlay link/,
  );
});

test("the planned record is a new record; the current one is left exactly as it was", () => {
  const current = lab();
  const before = JSON.stringify(current);
  const spec: LabSpec = {
    nodes: [
      { name: "r1", netns: "n1", interfaces: [{ name: "eth1" }, { name: "eth3" }] },
      { name: "r2", netns: "n9", interfaces: [{ name: "eth1" }] }, // moved: re-created
      { name: "r4", netns: "n4", interfaces: [{ name: "eth1" }] },
    ],
    links: [{ a: "r1:eth3", b: "r4:eth1", id: "l2" }],
  };
  const next = plannedRecord(current, planLab(current, spec, 9000, [], new Set()));
  assert.equal(JSON.stringify(current), before);
  assert.deepEqual(Object.keys(next.nodes).sort(), ["r1", "r2", "r4"]);
  assert.deepEqual(Object.keys(next.nodes.r1!.interfaces).sort(), ["eth1", "eth3"]);
  assert.deepEqual(next.nodes.r2!.netns, { name: "n9" });
  assert.deepEqual(Object.keys(next.links), ["l2"]);
  // Unchanged parts are shared, not copied (a big lab's plan stays cheap).
  assert.equal(next.nodes.r1!.interfaces.eth1, current.nodes.r1!.interfaces.eth1);
});

test("a node placed on another host is refused: only the ovn backend spans hosts", () => {
  const spec: LabSpec = {
    nodes: [{ name: "r9", netns: "n9", host: "elsewhere", interfaces: [{ name: "eth1" }] }],
    links: [],
  };
  assert.throws(
    () => planLab(lab(), spec, 9000, [], new Set()),
    (e: Error & { code?: string }) => e.code === "BAD_REQUEST" && /ovn backend/.test(e.message),
  );
});
