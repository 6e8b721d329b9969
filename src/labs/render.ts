import type { NetworkBackend } from "../backends/network-backend.js";
import { type NetnsRef, netnsLost } from "../link/netns.js";
import { resolveEnd, storedEnd } from "../model/ends.js";
import type { LabRecord, LinkRecord, NodeRecord } from "../model/records.js";
import type { LabSummary, LabView, LinkView, NodeView } from "../model/views.js";

/** Builds the contract's views from desired records plus what the backend observes now. */
export function summary(rec: LabRecord): LabSummary {
  return { lab: rec.lab, nodes: Object.keys(rec.nodes).length, links: Object.keys(rec.links).length };
}

export function netnsText(ref: NetnsRef | undefined): string | null {
  if (ref === undefined) return null;
  return "name" in ref ? ref.name : "path" in ref ? ref.path : `pid:${ref.pid}`;
}

export function nodeView(node: NodeRecord, backend: NetworkBackend, links?: Map<string, string>): NodeView {
  const lost = node.netns && netnsLost(node.netns, node.netnsId);
  return {
    name: node.name,
    netns: netnsText(node.netns),
    origin: node.origin,
    ...(lost ? { state: "lost" as const, reason: lost } : { state: "ok" as const }),
    interfaces: Object.values(node.interfaces).map((i) => {
      const seen = backend.observe(i);
      return {
        name: i.name,
        host_port: i.hostPort,
        mtu: i.mtu,
        vlan: seen.vlan,
        carrier: i.carrier,
        oper_state: i.carrier === "down" ? ("admin_down" as const) : (seen.operState ?? ("up" as const)),
        present: seen.present,
        link: links?.get(`${node.name}:${i.name}`) ?? seen.link,
      };
    }),
  };
}

export function linkView(rec: LabRecord, link: LinkRecord, backend: NetworkBackend): LinkView {
  const ends = [link.a, link.b].map((text) => {
    const i = resolveEnd(rec, storedEnd(text))?.iface;
    return i ? backend.observe(i) : undefined;
  });
  const [a, b] = ends;
  const wired = a?.present && b?.present && a.link === link.id && b.link === link.id;
  return {
    id: link.id,
    a: link.a,
    b: link.b,
    mode: link.mode ?? "vlan",
    vlan: wired ? a.vlan : null,
    state: !wired ? "pending" : link.carrier === "down" ? "down" : "up",
    ...(link.impairment ? { impairment: link.impairment } : {}),
    ...(a?.counters || b?.counters ? { counters: { a: a?.counters ?? null, b: b?.counters ?? null } } : {}),
  };
}

export function labView(rec: LabRecord, backend: NetworkBackend, reconcileError?: string): LabView {
  const links = new Map<string, string>();
  for (const l of Object.values(rec.links)) {
    links.set(l.a, l.id);
    links.set(l.b, l.id);
  }
  return {
    lab: rec.lab,
    nodes: Object.values(rec.nodes).map((n) => nodeView(n, backend, links)),
    links: Object.values(rec.links).map((l) => linkView(rec, l, backend)),
    ...(reconcileError === undefined ? {} : { reconcile_error: reconcileError }),
  };
}
