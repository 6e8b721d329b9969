import assert from "node:assert/strict";
import { test } from "node:test";
import {
  hasDockerSlot,
  type NbLab,
  type NbPort,
  type NbState,
  readNb,
} from "../../src/backends/ovn/nb-model.js";
import { type DesiredLab, planLab } from "../../src/backends/ovn/nb-plan.js";
import type { Row } from "../../src/ovsdb/index.js";

/** The NB transaction of a lab change, as data: what is written, and which chassis apply it. */
const HOSTS: Record<string, string> = { a: "hv1", b: "hv2", c: "hv3" };

function want(bEnd = "b:eth1"): DesiredLab {
  return {
    lab: "x",
    ports: ["a", "b", "c"].map((n) => ({
      node: n,
      iface: "eth1",
      host: HOSTS[n]!,
      netns: JSON.stringify({ name: `ns-${n}` }),
      mtu: 1442,
      hostPort: `vh-${n}`,
      carrier: "up" as const,
      origin: "api" as const,
    })),
    links: [{ id: "l", a: "a:eth1", b: bEnd }],
  };
}

/** NB as it is after `want()` was written: l holds a and b, the lab switch holds c (disabled). */
function written(): NbState {
  const port = (n: string, sw: string, enabled: boolean): NbPort => ({
    uuid: `u-${n}`,
    name: `an:x:${n}:eth1`,
    lab: "x",
    node: n,
    iface: "eth1",
    host: HOSTS[n]!,
    netns: JSON.stringify({ name: `ns-${n}` }),
    mtu: 1442,
    hostPort: `vh-${n}`,
    carrier: "up",
    origin: "api",
    enabled,
    up: true,
    switchUuid: sw,
    createdAt: 1,
    shape: undefined,
    shaped: "",
  });
  const lab: NbLab = {
    lab: "x",
    uuid: "u-lab",
    name: "an:x",
    generation: 1,
    ports: ["u-c"],
    interfaces: new Map([
      ["a:eth1", port("a", "u-l", true)],
      ["b:eth1", port("b", "u-l", true)],
      ["c:eth1", port("c", "u-lab", false)],
    ]),
    links: new Map([
      [
        "l",
        {
          uuid: "u-l",
          name: "an:x:l",
          id: "l",
          a: "a:eth1",
          b: "b:eth1",
          ports: ["u-a", "u-b"],
          impairment: undefined,
        },
      ],
    ]),
    createdAt: 1,
  };
  return {
    labs: new Map([["x", lab]]),
    foreignSwitches: new Set(),
    foreignPorts: new Set(),
    leftovers: new Map(),
    dockerSlots: new Map(),
  };
}

const empty: NbState = {
  labs: new Map(),
  foreignSwitches: new Set(),
  foreignPorts: new Set(),
  leftovers: new Map(),
  dockerSlots: new Map(),
};

test("a new lab: its switch, a switch per link (VLAN passthru), every port marked, unknown addresses", () => {
  const plan = planLab(empty, want(), "hv1", 5);
  const inserts = plan.ops.filter((o) => o.op === "insert");
  assert.equal(inserts.filter((o) => o.table === "Logical_Switch_Port").length, 3);
  const link = inserts.find((o) => o.op === "insert" && o.row.name === "an:x:l");
  assert.ok(link && link.op === "insert");
  assert.deepEqual(link.row.other_config, ["map", [["vlan-passthru", "true"]]]);
  const c = inserts.find((o) => o.op === "insert" && o.row.name === "an:x:c:eth1");
  assert.ok(c && c.op === "insert");
  assert.equal(c.row.enabled, false, "an unlinked port is disabled in the lab's switch");
  assert.deepEqual(c.row.addresses, ["set", ["unknown"]]);
  assert.ok(JSON.stringify(c.row.external_ids).includes('"archetype_owner","archetype-network"'));
  assert.deepEqual([...plan.hosts].sort(), ["hv1", "hv2", "hv3"]);
  assert.deepEqual([...plan.making].sort(), ["hv1", "hv2", "hv3"]);
});

test("a new lab is guarded (no switch of its name yet), then deletes the link switches a deleted lab switch left behind", () => {
  const plan = planLab({ ...empty, leftovers: new Map([["x", ["u-old"]]]) }, want(), "hv1", 5);
  const [guard, first] = plan.ops;
  assert.deepEqual(
    guard,
    {
      op: "wait",
      table: "Logical_Switch",
      where: [["name", "==", "an:x"]],
      columns: ["name"],
      until: "==",
      rows: [],
      timeout: 0,
    },
    "no agent made the lab meanwhile",
  );
  assert.ok(first && first.op === "delete" && first.table === "Logical_Switch");
  assert.ok(JSON.stringify(first.where).includes('["uuid","u-old"]'));
  assert.ok(JSON.stringify(first.where).includes("archetype-network"), "only a row still marked as ours");
  assert.equal(plan.ops.filter((o) => o.op === "delete").length, 1);
});

test("the same lab again writes nothing", () => {
  assert.deepEqual(planLab(written(), want(), "hv1", 5).ops, []);
});

test("a rewire is one transaction: the link's switch takes the new end, the old one is parked", () => {
  const plan = planLab(written(), want("c:eth1"), "hv2", 5);
  assert.equal(plan.ops[0]?.op, "wait", "guarded by the lab's generation");
  const updates = plan.ops.filter((o) => o.op === "update");
  const link = updates.find(
    (o) => o.table === "Logical_Switch" && JSON.stringify(o.where).includes('"u-l"]'),
  );
  assert.ok(link && link.op === "update");
  assert.deepEqual(link.row.ports, [
    "set",
    [
      ["uuid", "u-a"],
      ["uuid", "u-c"],
    ],
  ]);
  const enabled = Object.fromEntries(
    updates
      .filter((o) => o.op === "update" && o.table === "Logical_Switch_Port")
      .map((o) => [
        JSON.stringify(o.where).match(/u-(\w)/)?.[1],
        o.op === "update" ? o.row.enabled : undefined,
      ]),
  );
  assert.deepEqual(enabled, { b: false, c: true });
  assert.equal(plan.ops.filter((o) => o.op === "insert" || o.op === "delete").length, 0);
  assert.deepEqual([...plan.hosts].sort(), ["hv1", "hv2", "hv3"]);
  assert.deepEqual(plan.moved.sort(), ["an:x:b:eth1", "an:x:c:eth1"]);
  assert.deepEqual([...plan.making], [], "no veth is made or removed");
});

test("a removed link: its switch goes, its ports return to the lab's switch", () => {
  const w = want();
  w.links = [];
  const plan = planLab(written(), w, "hv1", 5);
  assert.ok(plan.ops.some((o) => o.op === "delete" && JSON.stringify(o.where).includes('"u-l"]')));
  const lab = plan.ops.find((o) => o.op === "update" && JSON.stringify(o.where).includes('"u-lab"]'));
  assert.ok(lab && lab.op === "update");
  assert.equal((lab.row.ports as ["set", unknown[]])[1].length, 3);
});

test("an impairment alone: the link switch's marks, and each end's host to report its direction", () => {
  const w = want();
  w.links = [{ id: "l", a: "a:eth1", b: "b:eth1", impairment: { a_to_b: { rate_kbit: 1000 } } }];
  const plan = planLab(written(), w, "hv3", 5);
  const link = plan.ops.find((o) => o.op === "update" && JSON.stringify(o.where).includes('"u-l"]'));
  assert.ok(link && link.op === "update");
  assert.equal(link.row.ports, undefined, "its ports stay");
  assert.ok(JSON.stringify(link.row.external_ids).includes('\\"rate_kbit\\":1000'));
  assert.equal(
    plan.ops.filter((o) => "table" in o && o.table === "Logical_Switch_Port").length,
    0,
    "no port row is written (their hosts' agents report what they applied)",
  );
  // a->b is shaped on b's host end; a's end wants none, as before.
  assert.deepEqual([...plan.shaping], [["an:x:b:eth1", '{"rate_kbit":1000}']]);
  assert.deepEqual([...plan.making], ["hv2"]);
  assert.deepEqual(plan.moved, []);
});

test("a port's marks are changed key by key: what its host's agent reported stays", () => {
  const w = want();
  w.ports[0]!.mtu = 1400;
  const plan = planLab(written(), w, "hv1", 5);
  const rows = plan.ops.filter((o) => "table" in o && o.table === "Logical_Switch_Port");
  assert.ok(rows.length > 0);
  for (const o of rows) {
    if (o.op === "update") assert.equal(o.row.external_ids, undefined, "never the whole map");
    else assert.equal(o.op, "mutate");
  }
  assert.ok(!JSON.stringify(rows).includes("archetype_shaped"));
});

test("a link whose end is a container not running now holds its other end, and again both once it runs", () => {
  const gone = want();
  gone.ports = gone.ports.filter((p) => p.node !== "b");
  const plan = planLab(written(), gone, "hv1", 5);
  const link = plan.ops.find(
    (o) => o.op === "update" && o.table === "Logical_Switch" && JSON.stringify(o.where).includes('"u-l"]'),
  );
  assert.ok(link && link.op === "update");
  assert.deepEqual(
    link.row.ports,
    ["set", [["uuid", "u-a"]]],
    "b's port goes; the link keeps its ends' marks",
  );
  assert.ok(JSON.stringify(link.row.external_ids).includes('"archetype_b","b:eth1"'));
  // NB after that: the link holds a alone, and the same body writes nothing more.
  const after = written();
  const lab = after.labs.get("x")!;
  lab.interfaces.delete("b:eth1");
  lab.links.get("l")!.ports = ["u-a"];
  assert.deepEqual(planLab(after, gone, "hv1", 5).ops, []);
  // The container back (a new port): the link's switch takes it.
  const back = planLab(after, want(), "hv1", 5);
  const relinked = back.ops.find(
    (o) => o.op === "update" && o.table === "Logical_Switch" && JSON.stringify(o.where).includes('"u-l"]'),
  );
  assert.ok(relinked && relinked.op === "update");
  assert.deepEqual(relinked.row.ports, [
    "set",
    [
      ["uuid", "u-a"],
      ["named-uuid", "p1"],
    ],
  ]);
  assert.ok(back.moved.includes("an:x:b:eth1"), "its new binding is waited for");
});

test("NB's Docker slot rows: each host's slots, read back; a slot of the lab, not another's", () => {
  const row = (host: string, slots: unknown) => ({
    name: `an-docker:${host}`,
    ports: ["set", []],
    external_ids: [
      "map",
      [
        ["archetype_owner", "archetype-network"],
        ["archetype_kind", "docker"],
        ["archetype_host", host],
        ["archetype_slots", JSON.stringify(slots)],
      ],
    ],
  });
  const switches = new Map<string, Row>([
    ["d1", row("hv1", ["x/eth1", "x/eth2"]) as unknown as Row],
    ["d2", row("hv2", "not a list") as unknown as Row],
  ]);
  const state = readNb((t) => (t === "Logical_Switch" ? switches : new Map()));
  assert.deepEqual([...state.dockerSlots.get("hv1")!.slots], ["x/eth1", "x/eth2"]);
  assert.deepEqual([...state.dockerSlots.get("hv2")!.slots], [], "a damaged list counts as none");
  assert.equal(state.labs.size, 0);
  assert.equal(state.foreignSwitches.size, 0);
  assert.ok(hasDockerSlot(state, "x", "eth2"));
  assert.ok(!hasDockerSlot(state, "x", "eth3"));
  assert.ok(!hasDockerSlot(state, "y", "eth1"));
});
