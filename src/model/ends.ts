import type { InterfaceRecord, LinkRecord, NodeRecord } from "./records.js";

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
