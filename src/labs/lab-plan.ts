import { AgentError } from "../common/errors.js";
import { parseNetnsRef } from "../link/netns.js";
import { defaultLinkId, hostPortName } from "../model/derived-names.js";
import type { LinkEnd } from "../model/ends.js";
import { formatEnd, parseEnd, validateId, validateIfName } from "../model/names.js";
import type {
  InterfaceRecord,
  LabRecord,
  LinkMode,
  LinkRecord,
  NodeRecord,
  OverlayRecord,
} from "../model/records.js";
import type { LabChanges, LabSpec } from "../model/views.js";
import { sameImpairment, validateImpairment } from "./impairment.js";

/** What converging a lab to a declared state takes: computed and validated before any change. */
export interface LabPlan {
  /** Nodes (new, or existing with new interfaces) and the interfaces to create. */
  addNodes: { node: NodeRecord; ifaces: InterfaceRecord[] }[];
  removeNodes: string[];
  removeEnds: LinkEnd[];
  addLinks: LinkRecord[];
  removeLinks: LinkRecord[];
  /** Links kept whose impairment changes: their new records (the old ones are the lab's). */
  impairLinks: LinkRecord[];
  /** Overlay links whose interface leaves the lab for good (not re-created): detached and dropped. */
  detachOverlays: OverlayRecord[];
  changes: LabChanges;
}

/**
 * Diffs the lab's records against a declared spec. Throws a typed error for any bad input, so a
 * rejected spec changes nothing. Nodes made by the Docker plugin are not the spec's to remove.
 * An overlay link (`overlays`: the lab's) goes with its interface, as a local link would: what
 * the body leaves out is removed. An interface that is only re-created keeps its overlay link.
 */
export function planLab(
  current: LabRecord,
  spec: LabSpec,
  defaultMtu: number,
  overlays: readonly OverlayRecord[],
  takenPorts: ReadonlySet<string>,
  /** Mode of a link the body gives none (ARCHETYPE_AGENT_LINK_MODE). */
  defaultMode: LinkMode = "vlan",
): LabPlan {
  const plan = emptyPlan();
  const c = plan.changes;
  const declared = new Set<string>();

  for (const n of spec.nodes) {
    const name = validateId(n.name, "node");
    if (declared.has(name)) throw new AgentError("BAD_REQUEST", `node ${name} is declared twice`);
    declared.add(name);
    if (n.host !== undefined) {
      throw new AgentError(
        "BAD_REQUEST",
        `node ${name}: "host" places nodes on other hosts, which only the ovn backend does`,
        "leave it out (nodes run on this agent's host), or run the agents with ARCHETYPE_AGENT_BACKEND=ovn",
      );
    }
    const netns = parseNetnsRef(n);
    const wanted = validateInterfaces(n.interfaces, defaultMtu);
    const have = current.nodes[name];
    if (have?.origin === "plugin") {
      throw new AgentError(
        "CONFLICT",
        `node ${name} of lab ${current.lab} is a Docker container of the plugin`,
        "leave it out of the lab body",
      );
    }
    const moved = have !== undefined && JSON.stringify(have.netns) !== JSON.stringify(netns);
    if (have && moved) removeNode(plan, have);
    const node: NodeRecord = have && !moved ? have : { name, netns, origin: "api", interfaces: {} };
    if (!have || moved) c.nodes_added.push(name);
    const fresh: InterfaceRecord[] = [];
    for (const w of wanted) {
      const old = node.interfaces[w.name];
      if (old && old.mtu === w.mtu) continue;
      if (old) removeEnd(plan, node, old);
      fresh.push(newInterface(current.lab, name, w.name, w.mtu, takenPorts));
      c.interfaces_added.push(`${name}:${w.name}`);
    }
    if (!moved && have) {
      const keep = new Set(wanted.map((w) => w.name));
      for (const old of Object.values(have.interfaces)) if (!keep.has(old.name)) removeEnd(plan, have, old);
    }
    if (fresh.length > 0 || !have || moved) plan.addNodes.push({ node, ifaces: fresh });
  }
  for (const have of Object.values(current.nodes)) {
    if (have.origin === "api" && !declared.has(have.name)) removeNode(plan, have);
  }
  const removed = new Set(plan.removeEnds.map((e) => `${e.node.name}:${e.iface.name}`));
  const recreated = new Set(plan.addNodes.flatMap((a) => a.ifaces.map((i) => `${a.node.name}:${i.name}`)));
  const overlayLinked = new Set<string>();
  for (const o of overlays) {
    const end = `${o.node}:${o.interface}`;
    if (removed.has(end) && !recreated.has(end)) {
      plan.detachOverlays.push(o);
      c.overlays_detached.push(o.link);
    } else overlayLinked.add(end);
  }

  const ids = new Set<string>();
  const ends = new Set<string>();
  for (const l of spec.links) {
    const a = parseEnd(l.a);
    const b = parseEnd(l.b);
    const id = l.id === undefined ? defaultLinkId(a, b) : validateId(l.id, "link");
    for (const e of [formatEnd(a), formatEnd(b)]) {
      if (ends.has(e)) throw new AgentError("ALREADY_LINKED", `${e} is in two links of the lab body`);
      if (overlayLinked.has(e))
        throw new AgentError("ALREADY_LINKED", `${e} carries an overlay link`, "detach it first");
      ends.add(e);
    }
    if (formatEnd(a) === formatEnd(b))
      throw new AgentError("BAD_REQUEST", `link ${id} joins ${formatEnd(a)} to itself`);
    if (ids.has(id)) throw new AgentError("BAD_REQUEST", `link id ${id} is declared twice`);
    ids.add(id);
    const impairment = validateImpairment(l.impairment, `link ${id}: impairment`);
    const mode = l.mode ?? defaultMode;
    const have = current.links[id];
    // Another mode is another cable between the same ends: the link is made again.
    const same =
      have &&
      (have.mode ?? "vlan") === mode &&
      [have.a, have.b].sort().join() === [formatEnd(a), formatEnd(b)].sort().join();
    if (have && same) {
      if (!sameImpairment(have.impairment, oriented(impairment, have.a === formatEnd(a)))) {
        plan.impairLinks.push(withImpairment(have, oriented(impairment, have.a === formatEnd(a))));
        c.impairments_changed.push(id);
      }
      continue;
    }
    if (have) {
      plan.removeLinks.push(have);
      c.links_removed.push(id);
    }
    plan.addLinks.push(
      withImpairment(
        { id, a: formatEnd(a), b: formatEnd(b), carrier: "up", createdAt: Date.now(), mode },
        impairment,
      ),
    );
    c.links_added.push(id);
  }
  for (const have of Object.values(current.links)) {
    if (!ids.has(have.id)) {
      plan.removeLinks.push(have);
      c.links_removed.push(have.id);
    }
  }
  return plan;
}

/** A link record with this impairment (none: without the field). */
export function withImpairment(link: LinkRecord, impairment: LinkRecord["impairment"]): LinkRecord {
  const { impairment: _old, ...rest } = link;
  return impairment ? { ...rest, impairment } : rest;
}

/** An impairment given for ends a, b of a body, for a record whose ends are the other way round. */
function oriented(imp: LinkRecord["impairment"], sameWay: boolean): LinkRecord["impairment"] {
  if (sameWay || !imp) return imp;
  return {
    ...(imp.b_to_a ? { a_to_b: imp.b_to_a } : {}),
    ...(imp.a_to_b ? { b_to_a: imp.a_to_b } : {}),
  };
}

function removeNode(plan: LabPlan, node: NodeRecord): void {
  plan.removeNodes.push(node.name);
  plan.changes.nodes_removed.push(node.name);
  for (const iface of Object.values(node.interfaces)) removeEnd(plan, node, iface);
}

function removeEnd(plan: LabPlan, node: NodeRecord, iface: InterfaceRecord): void {
  plan.removeEnds.push({ node, iface });
  plan.changes.interfaces_removed.push(`${node.name}:${iface.name}`);
}

export function validateInterfaces(
  list: readonly { name: string; mtu?: number }[],
  defaultMtu: number,
): { name: string; mtu: number }[] {
  const seen = new Set<string>();
  return list.map((i) => {
    const name = validateIfName(i.name);
    if (seen.has(name)) throw new AgentError("BAD_REQUEST", `interface ${name} is listed twice`);
    seen.add(name);
    const mtu = i.mtu ?? defaultMtu;
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
      throw new AgentError("BAD_REQUEST", `MTU ${mtu} of ${name} is not a whole number from 68 to 65535`);
    }
    return { name, mtu };
  });
}

export function newInterface(
  lab: string,
  node: string,
  name: string,
  mtu: number,
  takenPorts: ReadonlySet<string>,
): InterfaceRecord {
  const hostPort = hostPortName(lab, node, name);
  if (takenPorts.has(hostPort)) {
    throw new AgentError(
      "CONFLICT",
      `host port name ${hostPort} of ${node}:${name} clashes with another lab's`,
    );
  }
  return { name, hostPort, mtu, carrier: "up", createdAt: Date.now() };
}

export function emptyPlan(): LabPlan {
  return {
    addNodes: [],
    removeNodes: [],
    removeEnds: [],
    addLinks: [],
    removeLinks: [],
    impairLinks: [],
    detachOverlays: [],
    changes: {
      nodes_added: [],
      nodes_removed: [],
      interfaces_added: [],
      interfaces_removed: [],
      links_added: [],
      links_removed: [],
      overlays_detached: [],
      impairments_changed: [],
    },
  };
}

/**
 * The lab's record once the plan is done. Copy on write: what the plan changes is copied, the
 * rest is shared, and `current` is left as it is (a rollback restores it); cheap for a big lab.
 */
export function plannedRecord(current: LabRecord, plan: LabPlan): LabRecord {
  const next: LabRecord = { ...current, nodes: { ...current.nodes }, links: { ...current.links } };
  const editable = (name: string): NodeRecord | undefined => {
    const n = next.nodes[name];
    if (n && n === current.nodes[name]) next.nodes[name] = { ...n, interfaces: { ...n.interfaces } };
    return next.nodes[name];
  };
  for (const l of plan.removeLinks) delete next.links[l.id];
  for (const e of plan.removeEnds) {
    const n = editable(e.node.name);
    if (n) delete n.interfaces[e.iface.name];
  }
  for (const n of plan.removeNodes) delete next.nodes[n];
  for (const { node, ifaces } of plan.addNodes) {
    const into = editable(node.name) ?? { ...node, interfaces: {} };
    next.nodes[node.name] = into;
    for (const i of ifaces) into.interfaces[i.name] = i;
  }
  for (const l of plan.addLinks) next.links[l.id] = l;
  for (const l of plan.impairLinks) next.links[l.id] = l;
  return next;
}
