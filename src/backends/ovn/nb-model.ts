import { type QdiscShape, shapeFrom, shapeText } from "../../link/index.js";
import type { Impairment } from "../../model/records.js";
import { decodeMap, decodeOptional, decodeSet, type Row } from "../../ovsdb/index.js";
import { NB_MARK, OWNER_VALUE } from "./marks.js";

/**
 * The labs as the northbound database holds them, read from the monitor's cache. NB is the
 * ovn backend's desired state, shared by every agent: a lab is its own logical switch (holding
 * the lab's unlinked ports, disabled), each link a logical switch of its two ports, each node
 * interface a logical switch port whose marks say the node, host, namespace and MTU.
 */
/** A node interface as declared (the lab service resolves it: ids valid, host port named). */
export interface DesiredPort {
  node: string;
  iface: string;
  /** The chassis the node runs on. */
  host: string;
  /** JSON of the node's NetnsRef on its host. */
  netns: string;
  mtu: number;
  hostPort: string;
  carrier: "up" | "down";
  /**
   * `plugin`: a Docker container's interface; its veth is the plugin's (netns "null"), the lab
   * body does not declare it, and links name it like any other.
   */
  origin: "api" | "plugin";
}

export interface NbPort extends DesiredPort {
  uuid: string;
  name: string;
  lab: string;
  enabled: boolean;
  /** Set by ovn-northd from the southbound Port_Binding. */
  up: boolean;
  /** The switch that has the port now (lab or link switch), if any. */
  switchUuid: string | undefined;
  createdAt: number;
  /**
   * What its host end's qdisc should be: the direction of its link towards it (a link's a->b
   * is the egress of b's host end); undefined when unlinked or unimpaired.
   */
  shape: QdiscShape | undefined;
  /** What its host's agent reports applied there (NB_MARK.shaped: shapeText, "" or "error: ..."). */
  shaped: string;
}

export interface NbLink {
  uuid: string;
  name: string;
  id: string;
  a: string;
  b: string;
  /** Port uuids. */
  ports: string[];
  impairment: Impairment | undefined;
}

export interface NbLab {
  lab: string;
  uuid: string;
  name: string;
  generation: number;
  /** Port uuids of the lab switch (the unlinked ports). */
  ports: string[];
  /** By NODE:IF. */
  interfaces: Map<string, NbPort>;
  /** By link id. */
  links: Map<string, NbLink>;
  createdAt: number;
}

export interface NbState {
  labs: Map<string, NbLab>;
  /** Names of switches and ports the agent does not own (a clash with one is refused). */
  foreignSwitches: Set<string>;
  foreignPorts: Set<string>;
  /**
   * Our link switches whose lab switch is gone (deleted behind the agent's back), by lab: orphans
   * for cleanup, and removed by the transaction that makes their lab again (their ports' names
   * would clash with the new ones').
   */
  leftovers: Map<string, string[]>;
  /**
   * Each host's Docker network slots ("LAB/IF"), by host, with the row that lists them: a link
   * end naming a container not there yet is accepted for a slot of its lab.
   */
  dockerSlots: Map<string, { uuid: string; slots: Set<string> }>;
}

export type RowsOf = (table: string) => ReadonlyMap<string, Row>;

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

export function readNb(rows: RowsOf): NbState {
  const labs = new Map<string, NbLab>();
  const foreignSwitches = new Set<string>();
  const foreignPorts = new Set<string>();
  const switchOf = new Map<string, string>();
  const links: { lab: string; link: NbLink }[] = [];
  const dockerSlots: NbState["dockerSlots"] = new Map();
  for (const [uuid, r] of rows("Logical_Switch")) {
    const ids = decodeMap(r.external_ids);
    const name = str(r.name);
    const ports = decodeSet(r.ports);
    for (const p of ports) switchOf.set(p, uuid);
    if (ids[NB_MARK.owner] !== OWNER_VALUE) {
      foreignSwitches.add(name);
      continue;
    }
    const lab = ids[NB_MARK.lab] ?? "";
    if (ids[NB_MARK.kind] === "docker") {
      dockerSlots.set(ids[NB_MARK.host] ?? "", { uuid, slots: new Set(parseSlots(ids[NB_MARK.slots])) });
    } else if (ids[NB_MARK.kind] === "lab") {
      labs.set(lab, {
        lab,
        uuid,
        name,
        generation: Number(ids[NB_MARK.generation] ?? 0),
        ports,
        interfaces: new Map(),
        links: new Map(),
        createdAt: Number(ids[NB_MARK.created] ?? 0),
      });
    } else if (ids[NB_MARK.kind] === "link") {
      links.push({
        lab,
        link: {
          uuid,
          name,
          id: ids[NB_MARK.link] ?? "",
          a: ids[NB_MARK.a] ?? "",
          b: ids[NB_MARK.b] ?? "",
          ports,
          impairment: parseImpairmentText(ids[NB_MARK.impairment] ?? ""),
        },
      });
    }
  }
  const leftovers = new Map<string, string[]>();
  for (const { lab, link } of links) {
    const l = labs.get(lab);
    if (l) l.links.set(link.id, link);
    else leftovers.set(lab, [...(leftovers.get(lab) ?? []), link.uuid]);
  }
  for (const [uuid, r] of rows("Logical_Switch_Port")) {
    const ids = decodeMap(r.external_ids);
    const name = str(r.name);
    if (ids[NB_MARK.owner] !== OWNER_VALUE) {
      foreignPorts.add(name);
      continue;
    }
    const lab = labs.get(ids[NB_MARK.lab] ?? "");
    const switchUuid = switchOf.get(uuid);
    // A port of ours no switch holds is garbage collected by ovsdb-server: not there.
    if (!lab || switchUuid === undefined) continue;
    const port: NbPort = {
      uuid,
      name,
      lab: lab.lab,
      node: ids[NB_MARK.node] ?? "",
      iface: ids[NB_MARK.iface] ?? "",
      host: ids[NB_MARK.host] ?? "",
      netns: ids[NB_MARK.netns] ?? "",
      mtu: Number(ids[NB_MARK.mtu] ?? 0),
      hostPort: ids[NB_MARK.hostPort] ?? "",
      carrier: ids[NB_MARK.carrier] === "down" ? "down" : "up",
      origin: ids[NB_MARK.origin] === "plugin" ? "plugin" : "api",
      enabled: decodeOptional<boolean>(r.enabled) !== false,
      up: decodeOptional<boolean>(r.up) === true,
      switchUuid,
      createdAt: Number(ids[NB_MARK.created] ?? 0),
      shape: undefined,
      shaped: ids[NB_MARK.shaped] ?? "",
    };
    lab.interfaces.set(`${port.node}:${port.iface}`, port);
  }
  for (const lab of labs.values()) {
    for (const l of lab.links.values()) {
      const a = lab.interfaces.get(l.a);
      const b = lab.interfaces.get(l.b);
      if (a) a.shape = l.impairment?.b_to_a;
      if (b) b.shape = l.impairment?.a_to_b;
    }
  }
  return { labs, foreignSwitches, foreignPorts, leftovers, dockerSlots };
}

function parseSlots(text: string | undefined): string[] {
  try {
    const v = JSON.parse(text ?? "[]") as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

/** Whether some host has a Docker network for slot IF of lab LAB. */
export function hasDockerSlot(state: NbState, lab: string, iface: string): boolean {
  for (const h of state.dockerSlots.values()) if (h.slots.has(`${lab}/${iface}`)) return true;
  return false;
}

/** An impairment as one canonical string ("" for none), as NB_MARK.impairment holds it. */
export function impairmentText(imp: Impairment | undefined): string {
  const a = shapeText(imp?.a_to_b);
  const b = shapeText(imp?.b_to_a);
  if (a === "" && b === "") return "";
  return JSON.stringify({
    ...(a === "" ? {} : { a_to_b: JSON.parse(a) }),
    ...(b === "" ? {} : { b_to_a: JSON.parse(b) }),
  });
}

function parseImpairmentText(text: string): Impairment | undefined {
  if (text === "") return undefined;
  let v: { a_to_b?: unknown; b_to_a?: unknown };
  try {
    v = JSON.parse(text) as typeof v;
  } catch {
    return undefined;
  }
  const out: Impairment = {};
  for (const d of ["a_to_b", "b_to_a"] as const) {
    const shape = shapeFrom(v?.[d]);
    if (shapeText(shape) !== "") out[d] = shape;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
