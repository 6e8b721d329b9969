import type { EndRef } from "./names.js";
import type { InterfaceRecord, LabRecord, LinkRecord, NodeRecord } from "./records.js";

/**
 * Link ends as the backends are handed them: resolved from the `NODE:IF` text of a link record
 * (`EndRef`, parsed and formatted in names.ts) to the node and interface records.
 */

/** One end of a link: the node and its interface record. */
export interface LinkEnd {
  node: NodeRecord;
  iface: InterfaceRecord;
}

export interface WiredLink {
  link: LinkRecord;
  a: LinkEnd;
  b: LinkEnd;
}

/** A stored end (`NODE:IF`, validated when its link was made) as a reference. */
export function storedEnd(text: string): EndRef {
  const [node, iface] = text.split(":") as [string, string];
  return { node, iface };
}

/** Resolves an end to its records, if the interface exists in the lab. */
export function resolveEnd(lab: LabRecord, ref: EndRef): LinkEnd | undefined {
  const node = lab.nodes[ref.node];
  const iface = node?.interfaces[ref.iface];
  return node && iface ? { node, iface } : undefined;
}

/** These links of the lab (all by default) whose two ends exist, with their records. */
export function wiredLinks(
  lab: LabRecord,
  links: readonly LinkRecord[] = Object.values(lab.links),
): WiredLink[] {
  return links.flatMap((link) => {
    const a = resolveEnd(lab, storedEnd(link.a));
    const b = resolveEnd(lab, storedEnd(link.b));
    return a && b ? [{ link, a, b }] : [];
  });
}
