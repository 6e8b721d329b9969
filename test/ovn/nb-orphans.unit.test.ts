import assert from "node:assert/strict";
import { test } from "node:test";
import { findNbOrphans, removeOrphanOps } from "../../src/backends/ovn/nb-orphans.js";
import type { Row } from "../../src/ovsdb/index.js";

/** NB rows as the monitor's cache holds them: which marked switches no lab holds. */
const OWNER = { archetype_owner: "archetype-network" };

function sw(name: string, ids: Record<string, string>, ports: string[] = []): Row {
  return {
    name,
    external_ids: ["map", Object.entries(ids)],
    ports: ["set", ports.map((p) => ["uuid", p])],
  } as unknown as Row;
}

function port(name: string, ids: Record<string, string>): Row {
  return { name, external_ids: ["map", Object.entries(ids)] } as unknown as Row;
}

function rows(): (t: string) => ReadonlyMap<string, Row> {
  const switches = new Map<string, Row>([
    [
      "s-lab",
      sw("an:live", { ...OWNER, archetype_kind: "lab", archetype_lab: "live", archetype_created: "5" }),
    ],
    [
      "s-live-l",
      sw("an:live:L1", { ...OWNER, archetype_kind: "link", archetype_lab: "live", archetype_link: "L1" }),
    ],
    [
      "s-gone-l",
      sw("an:gone:L1", { ...OWNER, archetype_kind: "link", archetype_lab: "gone", archetype_link: "L1" }, [
        "p1",
      ]),
    ],
    ["s-odd", sw("an:odd", { ...OWNER })],
    // A host's Docker slots: its agent's to keep, never an orphan.
    ["s-docker", sw("an-docker:hv1", { ...OWNER, archetype_kind: "docker", archetype_host: "hv1" })],
    ["s-foreign", sw("an:foreign:L1", { archetype_kind: "link", archetype_lab: "foreign" })],
    [
      "s-other",
      sw("an:other:L1", { archetype_owner: "someone-else", archetype_kind: "link", archetype_lab: "x" }),
    ],
  ]);
  const ports = new Map<string, Row>([["p1", port("an:gone:a:eth1", { ...OWNER, archetype_created: "7" })]]);
  return (t) => (t === "Logical_Switch" ? switches : t === "Logical_Switch_Port" ? ports : new Map());
}

test("marked switches no lab holds are orphans; a live lab's, a host's Docker slots and unmarked ones are not", () => {
  const found = findNbOrphans(rows(), 100);
  assert.deepEqual(
    found.map((o) => [o.name, o.lab]),
    [
      ["an:gone:L1", "gone"],
      ["an:odd", ""],
    ],
  );
  assert.match(found[0]!.reason, /lab gone, whose lab switch is gone/);
});

test("inside the grace period (its newest port is younger) a switch is no orphan yet", () => {
  assert.deepEqual(
    findNbOrphans(rows(), 6).map((o) => o.name),
    ["an:odd"],
  );
});

test("removal is guarded: no lab switch of the lab at commit, and the row still the agent's", () => {
  const [gone] = findNbOrphans(rows(), 100);
  const ops = removeOrphanOps(gone!);
  assert.deepEqual(
    ops.map((o) => o.op),
    ["wait", "delete"],
  );
  assert.ok(JSON.stringify(ops[0]).includes('["archetype_lab","gone"]'));
  assert.ok(JSON.stringify(ops[1]).includes('["uuid","s-gone-l"]'));
  assert.ok(JSON.stringify(ops[1]).includes("archetype-network"));
});
