import { shapeText } from "../../link/index.js";
import type { Impairment } from "../../model/records.js";
import {
  type Atom,
  del,
  eq,
  eqUuid,
  includes,
  insert,
  map,
  mapSetKeys,
  mutate,
  namedUuid,
  type Operation,
  set,
  update,
  uuid,
  wait,
} from "../../ovsdb/index.js";
import { labSwitchName, linkSwitchName, NB_MARK, OWNER_VALUE, portName } from "./marks.js";
import { type DesiredPort, impairmentText, type NbLab, type NbPort, type NbState } from "./nb-model.js";

/** A link as declared: two interfaces of the lab. */
export interface DesiredLink {
  id: string;
  /** NODE:IF, interfaces of the lab (a Docker container's may be missing while it is not running). */
  a: string;
  b: string;
  /** Validated (labs/impairment.ts); undefined: none. */
  impairment?: Impairment;
}

export interface DesiredLab {
  lab: string;
  ports: DesiredPort[];
  links: DesiredLink[];
}

export interface NbPlan {
  ops: Operation[];
  /** Chassis whose ports were added, removed, moved or enabled/disabled: they apply the change. */
  hosts: Set<string>;
  /** Ports whose logical switch is new (added or moved): their new binding is waited for. */
  moved: string[];
  /** Chassis whose agents make or remove veths for it (ports added, removed, or re-marked), or shape them. */
  making: Set<string>;
  /**
   * Ports whose host end gets another qdisc (their link's impairment changed, or they joined or
   * left an impaired link), with the shape (shapeText) their host's agent is to report applied.
   */
  shaping: Map<string, string>;
}

/**
 * The one transaction that makes NB hold `want` for its lab: switches and ports inserted,
 * updated (only what differs) or deleted, every row marked as the agent's. It begins with a
 * `wait` on the lab's generation (another agent's change to the lab meanwhile fails it) and
 * bumps the generation. Pure: reads only `state`.
 */
export function planLab(state: NbState, want: DesiredLab, writer: string, now: number): NbPlan {
  const cur = state.labs.get(want.lab);
  const ops: Operation[] = [];
  const hosts = new Set<string>();
  const making = new Set<string>();
  const moved: string[] = [];
  const lab = want.lab;

  const generation = (cur?.generation ?? 0) + 1;
  const labIds = {
    [NB_MARK.owner]: OWNER_VALUE,
    [NB_MARK.kind]: "lab",
    [NB_MARK.lab]: lab,
    [NB_MARK.generation]: String(generation),
    [NB_MARK.writer]: writer,
    [NB_MARK.created]: String(cur?.createdAt || now),
  };
  if (cur) {
    ops.push(
      wait(
        "Logical_Switch",
        [eqUuid(cur.uuid), includes("external_ids", map({ [NB_MARK.generation]: String(cur.generation) }))],
        ["name"],
        "!=",
        [],
        0,
      ),
    );
  }
  /** The wait and the lab switch's own update: alone they change nothing. */
  let bookkeeping = cur ? 1 : 0;
  // A new lab: no agent may have made it meanwhile (two containers on two hosts joining a lab
  // that does not exist yet would each insert it). The wait fails at once when one exists.
  if (!cur) {
    ops.push(wait("Logical_Switch", [eq("name", labSwitchName(lab))], ["name"], "==", [], 0));
    bookkeeping++;
  }
  // A new lab first removes our link switches a deleted lab switch of the same name left behind.
  if (!cur) {
    for (const u of state.leftovers.get(lab) ?? []) {
      ops.push(
        del("Logical_Switch", [eqUuid(u), includes("external_ids", map({ [NB_MARK.owner]: OWNER_VALUE }))]),
      );
    }
  }

  // Ports: kept rows keep their uuid (their binding stays); new ones are inserted.
  const inLink = new Map<string, string>();
  for (const l of want.links) {
    inLink.set(l.a, l.id);
    inLink.set(l.b, l.id);
  }
  const refOf = new Map<string, Atom>();
  const switchWanted = new Map<string, string>(); // NODE:IF -> "lab" | link id
  want.ports.forEach((p, i) => {
    const key = `${p.node}:${p.iface}`;
    const link = inLink.get(key);
    switchWanted.set(key, link ?? "");
    const enabled = link !== undefined && p.carrier === "up";
    const ids = {
      [NB_MARK.owner]: OWNER_VALUE,
      [NB_MARK.lab]: lab,
      [NB_MARK.node]: p.node,
      [NB_MARK.iface]: p.iface,
      [NB_MARK.host]: p.host,
      [NB_MARK.netns]: p.netns,
      [NB_MARK.mtu]: String(p.mtu),
      [NB_MARK.hostPort]: p.hostPort,
      [NB_MARK.carrier]: p.carrier,
      ...(p.origin === "plugin" ? { [NB_MARK.origin]: "plugin" } : {}),
      [NB_MARK.created]: String(cur?.interfaces.get(key)?.createdAt || now),
    };
    const have = cur?.interfaces.get(key);
    if (have) {
      refOf.set(key, uuid(have.uuid));
      const same =
        have.host === p.host &&
        have.netns === p.netns &&
        have.mtu === p.mtu &&
        have.hostPort === p.hostPort &&
        have.carrier === p.carrier &&
        have.origin === p.origin;
      if (!same || have.enabled !== enabled) {
        const where = [eqUuid(have.uuid)];
        ops.push(update("Logical_Switch_Port", where, { enabled }));
        // The marks by key: NB_MARK.shaped is its host agent's to write, never overwritten here.
        if (!same) {
          ops.push(mutate("Logical_Switch_Port", where, mapSetKeys("external_ids", ids)));
        }
        hosts.add(p.host);
        if (!same) making.add(p.host);
      }
    } else {
      const ref = `p${i}`;
      refOf.set(key, namedUuid(ref));
      ops.push(
        insert(
          "Logical_Switch_Port",
          {
            name: portName(lab, p.node, p.iface),
            addresses: set(["unknown"]),
            enabled,
            external_ids: map(ids),
          },
          ref,
        ),
      );
      hosts.add(p.host);
      making.add(p.host);
      moved.push(portName(lab, p.node, p.iface));
    }
  });
  // Ports that go: no switch holds them any more (ovsdb-server garbage-collects them).
  const wanted = new Set(want.ports.map((p) => `${p.node}:${p.iface}`));
  for (const [key, have] of cur?.interfaces ?? []) {
    if (wanted.has(key)) continue;
    hosts.add(have.host);
    making.add(have.host);
  }

  // A link's end may be missing (a Docker container not running now): its switch holds the other.
  const portSet = (keys: readonly string[]) =>
    set(keys.map((k) => refOf.get(k)).filter((r): r is Atom => r !== undefined));
  const currentKeys = (uuids: readonly string[]) => {
    const byUuid = new Map([...(cur?.interfaces.values() ?? [])].map((p) => [p.uuid, p]));
    return uuids.map((u) => byUuid.get(u)).filter((p): p is NbPort => p !== undefined);
  };
  const noteMoves = (before: readonly NbPort[], after: readonly string[]) => {
    const was = new Set(before.map((p) => `${p.node}:${p.iface}`));
    for (const k of after) {
      if (!was.has(k) && cur?.interfaces.has(k)) {
        const p = cur.interfaces.get(k)!;
        hosts.add(p.host);
        moved.push(p.name);
      }
    }
    for (const p of before) if (!after.includes(`${p.node}:${p.iface}`)) hosts.add(p.host);
  };

  // The lab switch: the unlinked ports.
  const parked = want.ports.map((p) => `${p.node}:${p.iface}`).filter((k) => switchWanted.get(k) === "");
  if (cur) {
    const before = currentKeys(cur.ports);
    const same =
      before.length === cur.ports.length &&
      before.length === parked.length &&
      before.every((p) => parked.includes(`${p.node}:${p.iface}`));
    noteMoves(before, parked);
    if (same) bookkeeping++;
    ops.push(
      update("Logical_Switch", [eqUuid(cur.uuid)], {
        external_ids: map(labIds),
        ...(same ? {} : { ports: portSet(parked) }),
      }),
    );
  } else {
    ops.push(
      insert(
        "Logical_Switch",
        { name: labSwitchName(lab), ports: portSet(parked), external_ids: map(labIds) },
        "lab",
      ),
    );
  }

  // Links: a switch each, of its two ports; a link whose ends changed keeps its switch.
  want.links.forEach((l, i) => {
    const ends = [l.a, l.b].filter((k) => refOf.has(k));
    const ids = {
      [NB_MARK.owner]: OWNER_VALUE,
      [NB_MARK.kind]: "link",
      [NB_MARK.lab]: lab,
      [NB_MARK.link]: l.id,
      [NB_MARK.a]: l.a,
      [NB_MARK.b]: l.b,
      ...(impairmentText(l.impairment) === "" ? {} : { [NB_MARK.impairment]: impairmentText(l.impairment) }),
    };
    const have = cur?.links.get(l.id);
    if (have) {
      const before = currentKeys(have.ports);
      const same =
        have.a === l.a &&
        have.b === l.b &&
        before.length === have.ports.length &&
        before.length === ends.length &&
        before.every((p) => ends.includes(`${p.node}:${p.iface}`));
      if (same) {
        // Its impairment alone: the link's ends' hosts shape their host ends (see `shaping`).
        if (impairmentText(have.impairment) !== impairmentText(l.impairment))
          ops.push(update("Logical_Switch", [eqUuid(have.uuid)], { external_ids: map(ids) }));
        return;
      }
      noteMoves(before, ends);
      // The end that stays applies it too: its chassis tunnels to the new peer's now.
      for (const k of ends) {
        const p = cur?.interfaces.get(k);
        if (p) hosts.add(p.host);
      }
      ops.push(
        update("Logical_Switch", [eqUuid(have.uuid)], { ports: portSet(ends), external_ids: map(ids) }),
      );
    } else {
      for (const k of ends) {
        const p = cur?.interfaces.get(k);
        if (p) {
          hosts.add(p.host);
          moved.push(p.name);
        }
      }
      ops.push(
        insert(
          "Logical_Switch",
          {
            name: linkSwitchName(lab, l.id),
            ports: portSet(ends),
            other_config: map({ "vlan-passthru": "true" }),
            external_ids: map(ids),
          },
          `l${i}`,
        ),
      );
    }
  });
  const linkIds = new Set(want.links.map((l) => l.id));
  for (const have of cur?.links.values() ?? []) {
    if (linkIds.has(have.id)) continue;
    for (const p of currentKeys(have.ports)) hosts.add(p.host);
    ops.push(del("Logical_Switch", [eqUuid(have.uuid)]));
  }
  if (ops.length === bookkeeping)
    return { ops: [], hosts: new Set(), moved: [], making: new Set(), shaping: new Map() };
  const shaping = new Map<string, string>();
  const shapeOf = new Map<string, string>();
  for (const l of want.links) {
    shapeOf.set(l.a, shapeText(l.impairment?.b_to_a));
    shapeOf.set(l.b, shapeText(l.impairment?.a_to_b));
  }
  for (const p of want.ports) {
    const key = `${p.node}:${p.iface}`;
    const text = shapeOf.get(key) ?? "";
    const have = cur?.interfaces.get(key);
    if (text === (have ? shapeText(have.shape) : "")) continue;
    shaping.set(portName(lab, p.node, p.iface), text);
    making.add(p.host);
  }
  return { ops, hosts, moved: [...new Set(moved)], making, shaping };
}

/** Removes the lab: its switches (their ports go with them). Empty when NB has no such lab. */
export function deleteLabOps(lab: NbLab): NbPlan {
  const hosts = new Set([...lab.interfaces.values()].map((p) => p.host));
  const ops: Operation[] = [
    wait(
      "Logical_Switch",
      [eqUuid(lab.uuid), includes("external_ids", map({ [NB_MARK.generation]: String(lab.generation) }))],
      ["name"],
      "!=",
      [],
      0,
    ),
    del("Logical_Switch", [eqUuid(lab.uuid)]),
    ...[...lab.links.values()].map((l) => del("Logical_Switch", [eqUuid(l.uuid)])),
  ];
  return { ops, hosts, moved: [], making: new Set(hosts), shaping: new Map() };
}
