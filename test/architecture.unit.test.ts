import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

/**
 * The import rule, read from the code (ARCHITECTURE.md explains it): every part of src/ has a
 * layer, and a part imports only parts of lower layers (and only the backend registry imports an
 * implementation). The edges that break the rule today are
 * listed as debt: a new one fails this test, and so does a listed one that is gone (strike it).
 */
const LAYER: Record<string, number> = {
  common: 0,
  model: 1, // the vocabulary: records, views, names, link ends, what the API may ask
  link: 2,
  ovsdb: 2,
  openflow: 2,
  config: 3,
  state: 3,
  metrics: 4,
  central: 4, // OVN's central daemons, run by `archnet central serve`
  backends: 5, // the interface every backend implements
  "backends/ovs": 6,
  "backends/local": 6,
  "backends/ovn": 6,
  "backends/registry": 7, // picks an implementation
  overlay: 7,
  labs: 8,
  cleanup: 8,
  plugin: 9, // the Docker driver drives the lab service
  services: 10,
  api: 11,
  cli: 11,
  agent: 12,
};

/** A backend's implementation is seen by the registry only: every other part uses the interface. */
const IMPLEMENTATIONS = new Set(["backends/ovs", "backends/local"]);

/** Known debt: imports against the rule to remove (see ARCHITECTURE.md, "Debt"). */
const DEBT = new Set<string>([]);

const SRC = join(dirname(fileURLToPath(import.meta.url)), "..", "src");

function part(file: string): string {
  const rel = relative(SRC, file).replace(/\.ts$/, "");
  const [top, sub] = rel.split("/");
  if (rel === "backends/registry") return "backends/registry";
  if (top === "backends" && sub !== undefined && rel.split("/").length > 2) return `backends/${sub}`;
  return top!;
}

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

function importEdges(): Map<string, string[]> {
  const edges = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const from = part(file);
    for (const m of readFileSync(file, "utf8").matchAll(/from "(\.[^"]+)"/g)) {
      const to = part(join(dirname(file), m[1]!.replace(/\.js$/, ".ts")));
      if (to === from) continue;
      const key = `${from} -> ${to}`;
      edges.set(key, [...(edges.get(key) ?? []), relative(SRC, file)]);
    }
  }
  return edges;
}

test("every part of src/ has a layer", () => {
  const parts = new Set([...sources(SRC)].map(part));
  assert.deepEqual(
    [...parts].filter((p) => LAYER[p] === undefined),
    [],
  );
});

test("parts import only lower layers, except the listed debt; the debt list only shrinks", () => {
  const edges = importEdges();
  const wrong = [...edges.keys()].filter((e) => {
    const [from, to] = e.split(" -> ") as [string, string];
    return LAYER[to]! >= LAYER[from]! || (IMPLEMENTATIONS.has(to) && from !== "backends/registry");
  });
  const fresh = wrong.filter((e) => !DEBT.has(e)).map((e) => `${e} (${edges.get(e)!.join(", ")})`);
  assert.deepEqual(
    fresh,
    [],
    "imports against the layering: import downwards, or move the shared piece down; above the backends, only the registry imports an implementation",
  );
  const paid = [...DEBT].filter((e) => !wrong.includes(e));
  assert.deepEqual(paid, [], "these debts are gone: strike them from DEBT");
});

/**
 * The OVS backend's rooms (ARCHITECTURE.md): `switch/` is the floor every room stands on, the
 * rooms of one role import only lower ones, and only `ovs-backend.ts` composes them all.
 */
const OVS_ROOM: Record<string, number> = {
  switch: 0,
  carrier: 1,
  shaping: 1,
  cleanup: 1,
  overlay: 1,
  flows: 2,
  ports: 2,
  links: 2,
  reconcile: 3,
  "ovs-backend": 4,
};

test("the OVS backend's rooms import only lower rooms", () => {
  const ovs = join(SRC, "backends", "ovs");
  const room = (file: string) => relative(ovs, file).replace(/\.ts$/, "").split("/")[0]!;
  const wrong: string[] = [];
  for (const file of sources(ovs)) {
    const from = room(file);
    if (OVS_ROOM[from] === undefined) wrong.push(`${relative(SRC, file)} is in no room`);
    for (const m of readFileSync(file, "utf8").matchAll(/from "(\.[^"]+)"/g)) {
      const target = join(dirname(file), m[1]!.replace(/\.js$/, ".ts"));
      if (relative(ovs, target).startsWith("..")) continue;
      const to = room(target);
      if (to !== from && !(OVS_ROOM[to]! < OVS_ROOM[from]!))
        wrong.push(`${from} -> ${to} (${relative(SRC, file)})`);
    }
  }
  assert.deepEqual(wrong, [], "a room imports only rooms below it; move the shared piece down");
});
