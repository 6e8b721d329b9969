import { type FlowMod, type FlowStats, OFPP_NORMAL } from "../../../openflow/index.js";

/**
 * The agent's flows on its bridge, as data. Every flow carries the agent's mark in the cookie's
 * high 32 bits (flows of other cookies are never touched) and its kind below that:
 * - a wire: `priority=100,in_port=A actions=output:B` and back, above NORMAL, so every frame of
 *   one end reaches the other unchanged (the access tags act only inside NORMAL);
 * - a parked port's drop (shared isolation): `priority=10,in_port=A actions=drop`, so nothing it
 *   sends reaches NORMAL in the parking VLAN it shares with the other unlinked ports;
 * - NORMAL: `priority=0 actions=NORMAL`, the bridge's own default flow written again with the
 *   agent's cookie so that its removal (`ovs-ofctl del-flows`) is reported and repaired; VLAN
 *   links need it.
 * Each asks the switch to report its removal (FLOW_REMOVED).
 */
export const AGENT_COOKIE_MARK = 0xa4c7_4e70n << 32n;
export const AGENT_COOKIE_MASK = 0xffff_ffffn << 32n;
const KIND_SHIFT = 24n;
export const WIRE_COOKIE = AGENT_COOKIE_MARK | (1n << KIND_SHIFT);
export const NORMAL_COOKIE = AGENT_COOKIE_MARK | (2n << KIND_SHIFT);
export const PARK_COOKIE = AGENT_COOKIE_MARK | (3n << KIND_SHIFT);
export const WIRE_PRIORITY = 100;
/** Below the wires (a wire between parked ports carries), above NORMAL. */
export const PARK_PRIORITY = 10;

/** Both directions of a wire between two OpenFlow ports. */
export function wireFlows(a: number, b: number): FlowMod[] {
  return [wireFlow(a, b), wireFlow(b, a)];
}

function wireFlow(from: number, to: number): FlowMod {
  return {
    command: "add",
    cookie: WIRE_COOKIE,
    priority: WIRE_PRIORITY,
    match: { inPort: from },
    actions: [{ output: to }],
    sendFlowRemoved: true,
  };
}

export function parkFlow(port: number): FlowMod {
  return {
    command: "add",
    cookie: PARK_COOKIE,
    priority: PARK_PRIORITY,
    match: { inPort: port },
    actions: [],
    sendFlowRemoved: true,
  };
}

export function normalFlow(): FlowMod {
  return {
    command: "add",
    cookie: NORMAL_COOKIE,
    priority: 0,
    match: {},
    actions: [{ output: OFPP_NORMAL }],
    sendFlowRemoved: true,
  };
}

/** Removes exactly this flow (priority and match), whatever its actions. */
export function deleteStrict(f: Pick<FlowMod, "cookie" | "priority" | "match">): FlowMod {
  return { command: "delete-strict", cookie: f.cookie, priority: f.priority, match: f.match };
}

/** A flow's identity on the switch: its priority and match (table 0). */
function key(f: { priority?: number; match?: { inPort?: number } }): string {
  return `${f.priority ?? 0x8000}/${f.match?.inPort ?? "*"}`;
}

function sameActions(want: FlowMod, have: FlowStats): boolean {
  const w = (want.actions ?? []).map((a) => a.output >>> 0);
  const h = have.actions.map((a) => a.output >>> 0);
  return w.length === h.length && w.every((o, i) => o === h[i]);
}

/**
 * What makes the switch's flows of the agent (`have`, dumped with the agent's cookie mask) equal
 * to `want`: the flows to add (missing, or with other actions or cookie; an add replaces a flow
 * of the same priority and match) and the agent's flows nothing wants (deleted strictly).
 */
export function flowDiff(
  want: readonly FlowMod[],
  have: readonly FlowStats[],
): { add: FlowMod[]; remove: FlowMod[] } {
  const haveByKey = new Map(have.filter((f) => f.tableId === 0).map((f) => [key(f), f]));
  const wanted = new Set<string>();
  const add: FlowMod[] = [];
  for (const w of want) {
    const k = key(w);
    wanted.add(k);
    const h = haveByKey.get(k);
    if (!h || h.cookie !== w.cookie || !sameActions(w, h)) add.push(w);
  }
  const remove = have
    .filter((h) => h.tableId !== 0 || !wanted.has(key(h)))
    .map((h) => ({ ...deleteStrict(h), tableId: h.tableId }));
  return { add, remove };
}
