import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

/**
 * The import rule, read from the code (ARCHITECTURE.md explains it): every part of src/ has a
 * layer, and a part imports only parts of lower layers. The edges that break the rule today are
 * listed as debt: a new one fails this test, and so does a listed one that is gone (strike it).
 */
const LAYER: Record<string, number> = {
  common: 0,
  link: 1,
  ovsdb: 1,
  openflow: 1,
  config: 2,
  state: 2,
  metrics: 3,
  backends: 4, // the interface every backend implements
  "backends/ovs": 5,
  "backends/local": 5,
  "backends/ovn": 5,
  "backends/registry": 6, // picks an implementation
  overlay: 6,
  labs: 7,
  plugin: 7,
  cleanup: 7,
  services: 8,
  api: 9,
  cli: 9,
  agent: 10,
};

/** Known debt: upward or sideways imports to remove (see ARCHITECTURE.md, "Debt"). */
const DEBT = new Set([
  "metrics -> labs", // views are vocabulary: a leaf model/ folder
  "backends -> labs", // views, in the backend interface
  "backends/ovs -> labs", // views and names
  "backends/ovs -> overlay", // the OVS overlay manager lives in overlay/
  "backends/local -> labs", // views
  "labs -> plugin", // plugin members of a new lab
  "labs -> services", // service types
  "overlay -> labs", // views
  "overlay -> services", // service types
  "plugin -> labs", // the lab service
  "cleanup -> labs", // views
  "cleanup -> services", // service types
]);

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
    return LAYER[to]! >= LAYER[from]!;
  });
  const fresh = wrong.filter((e) => !DEBT.has(e)).map((e) => `${e} (${edges.get(e)!.join(", ")})`);
  assert.deepEqual(
    fresh,
    [],
    "imports against the layering: import downwards, or move the shared piece down",
  );
  const paid = [...DEBT].filter((e) => !wrong.includes(e));
  assert.deepEqual(paid, [], "these debts are gone: strike them from DEBT");
});
