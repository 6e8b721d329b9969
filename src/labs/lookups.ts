import { AgentError } from "../common/errors.js";
import type { LabRecord, LinkRecord } from "../model/records.js";
import type { StateStore } from "../state/state-store.js";

/** The one LAB_NOT_FOUND every lab-facing service answers. */
export function labNotFound(lab: string): AgentError {
  return new AgentError("LAB_NOT_FOUND", `lab ${lab} does not exist`, "list labs with `archnet lab ls`");
}

export function mustLab(store: StateStore, lab: string): LabRecord {
  const rec = store.lab(lab);
  if (!rec) throw labNotFound(lab);
  return rec;
}

export function linkNotFound(lab: string, id: string): AgentError {
  return new AgentError(
    "LINK_NOT_FOUND",
    `link ${id} does not exist in lab ${lab}`,
    `see \`archnet link ls ${lab}\``,
  );
}

/** NODE_NOT_FOUND when the lab has no such node (`nodeKnown` false), else INTERFACE_NOT_FOUND. */
export function interfaceNotFound(lab: string, node: string, iface: string, nodeKnown: boolean): AgentError {
  return new AgentError(
    nodeKnown ? "INTERFACE_NOT_FOUND" : "NODE_NOT_FOUND",
    `interface ${node}:${iface} does not exist in lab ${lab}`,
    `see \`archnet lab show ${lab}\``,
  );
}

/** Own keys only: a link id is never looked up on the prototype. */
export function mustLink(rec: LabRecord, id: string): LinkRecord {
  const link = Object.hasOwn(rec.links, id) ? rec.links[id] : undefined;
  if (!link) throw linkNotFound(rec.lab, id);
  return link;
}
