import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../src/common/exec.js";
import type { LabSpec } from "../../src/model/views.js";
import type { OvsInstance } from "../harness/ovs-instance.js";
import { ping } from "../harness/traffic.js";

/**
 * What really exists, read independently of the agent: OVS ports through ovs-vsctl on the
 * private instance, kernel links through `ip`. Tests compare these with what the agent reports.
 */
export interface OvsPortFact {
  name: string;
  tag: number | null;
  ids: Record<string, string>;
}

type OvsJson = { headings: string[]; data: unknown[][] };

function ovsValue(v: unknown): unknown {
  if (Array.isArray(v) && v[0] === "set" && Array.isArray(v[1]) && v[1].length === 0) return null;
  if (Array.isArray(v) && v[0] === "map") return Object.fromEntries(v[1] as [string, string][]);
  return v;
}

export async function ovsPorts(ovs: OvsInstance): Promise<OvsPortFact[]> {
  const out = await ovs.vsctl(["--format=json", "--columns=name,tag,external_ids", "list", "Port"]);
  const j = JSON.parse(out) as OvsJson;
  return j.data.map((row) => ({
    name: String(row[0]),
    tag: ovsValue(row[1]) as number | null,
    ids: (ovsValue(row[2]) ?? {}) as Record<string, string>,
  }));
}

/** Ports carrying the agent's ownership mark. */
export async function ownedPorts(ovs: OvsInstance): Promise<OvsPortFact[]> {
  return (await ovsPorts(ovs)).filter((p) => p.ids.archetype_kind !== undefined);
}

/** Names of veths with the lab prefix `vh` in the switch namespace. */
export async function hostVeths(ovs: OvsInstance): Promise<string[]> {
  const ns = ovs.netns ? ["-n", ovs.netns] : [];
  const r = await run("ip", [...ns, "-j", "link", "show", "type", "veth"]);
  const links = JSON.parse(r.stdout || "[]") as { ifname: string }[];
  return links.map((l) => l.ifname).filter((n) => n.startsWith("vh"));
}

/** `ip -j link show` of a namespace, reduced to what a before/after comparison needs. */
export async function kernelLinks(ns: string): Promise<string[]> {
  const r = await run("ip", ["-n", ns, "-j", "link", "show"]);
  const links = JSON.parse(r.stdout || "[]") as { ifname: string; ifindex: number }[];
  return links.map((l) => `${l.ifindex}:${l.ifname}`).sort();
}

/**
 * Checks that no VLAN is shared by two different links or by a link and an unlinked port:
 * ports with the same tag must all carry the same `archetype_link` mark (and it must be set).
 */
export function assertNoSharedVlan(ports: readonly OvsPortFact[]): void {
  const byTag = new Map<number, OvsPortFact[]>();
  for (const p of ports) {
    if (p.tag === null || p.ids.archetype_kind === undefined) continue;
    byTag.set(p.tag, [...(byTag.get(p.tag) ?? []), p]);
  }
  for (const [tag, ps] of byTag) {
    if (ps.length === 1) continue;
    const links = new Set(ps.map((p) => p.ids.archetype_link ?? `(unlinked ${p.name})`));
    assert.equal(
      links.size,
      1,
      `VLAN ${tag} is shared by ${ps.map((p) => `${p.name}=${p.ids.archetype_link ?? "-"}`).join(", ")}`,
    );
    assert.equal(ps.length, 2, `VLAN ${tag} is on ${ps.length} ports: ${ps.map((p) => p.name).join(", ")}`);
  }
}

/** Polls until `from` pings `ip`, up to `withinMs`; returns how long it took, or fails. */
export async function pingWithin(from: string, ip: string, withinMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await ping(from, ip, { count: 1, timeoutS: 1 })) return Math.round(performance.now() - t0);
    if (performance.now() - t0 > withinMs) assert.fail(`no ping from ${from} to ${ip} within ${withinMs} ms`);
    await sleep(100);
  }
}

/** Polls `cond` every 50 ms up to `withinMs`. */
export async function until(cond: () => Promise<boolean> | boolean, withinMs: number, what: string) {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > withinMs) assert.fail(`${what}: not within ${withinMs} ms`);
    await sleep(50);
  }
  return Math.round(performance.now() - t0);
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)] as number;
}

/**
 * A lab over these namespaces (node r<i> each, eth1..eth4): a ring over eth1/eth2 and a ladder
 * over eth3/eth4, so with 100 namespaces 200 links use every interface once.
 */
export function ringLadderSpec(namespaces: readonly string[]): LabSpec {
  const n = namespaces.length;
  const spec: LabSpec = {
    nodes: namespaces.map((netns, i) => ({
      name: `r${i}`,
      netns,
      interfaces: ["eth1", "eth2", "eth3", "eth4"].map((name) => ({ name })),
    })),
    links: [],
  };
  for (let i = 0; i < n; i++) spec.links.push({ a: `r${i}:eth1`, b: `r${(i + 1) % n}:eth2` });
  for (let i = 0; i + 1 < n; i += 2) {
    spec.links.push({ a: `r${i}:eth3`, b: `r${i + 1}:eth3` });
    spec.links.push({ a: `r${i}:eth4`, b: `r${i + 1}:eth4` });
  }
  return spec;
}
