import { deleteMany, type LinkInfo, listLinks } from "../../../link/index.js";
import { HOST_PORT_PREFIX, PLUGIN_PORT_PREFIX } from "../../../model/derived-names.js";
import type { LabRecord } from "../../../model/records.js";
import type { Operation, OvsdbClient, PortRow } from "../../../ovsdb/index.js";
import type { CleanupContext, Orphan } from "../../network-backend.js";
import type { OvsSwitch } from "../switch/ovs-switch.js";
import { OWNER, type PortKind, portKind } from "../switch/ownership.js";
import { removePorts } from "../switch/port-ops.js";

/** The end of a plugin veth that Docker moves into the container (see pluginPortNames). */
const PLUGIN_PEER_PREFIX = "vc";

/** What the audit needs besides the OVSDB cache: the kernel's view of the switch's namespace. */
export interface KernelView {
  /** Every link of the namespace ovs-vswitchd opens ports in (where the host ends live). */
  links: readonly LinkInfo[];
  /**
   * Whether plugin peers (`vc…`) live in that namespace too. Only then are they judged: when the
   * switch has a namespace of its own, the peers are in the agent's, shared with other software.
   */
  pluginPeersHere: boolean;
  /**
   * When the audit first saw each stray kernel veth (name -> ms since epoch). The kernel keeps no
   * creation time, so a veth without a port and without a record counts as old only once it has
   * been seen stray for the whole grace period. The caller keeps the map between passes.
   */
  firstSeen: Map<string, number>;
  now: number;
}

/**
 * What cleanup would remove, and why, without removing anything.
 *
 * Orphans: ports on our bridge with our marks whose owner is gone (lab, node or interface not in
 * the desired state; plugin endpoint unknown; overlay without record), ports of ours whose kernel
 * device is missing, and host-side veths with our prefixes that are on no bridge and not desired.
 * Never touched: anything younger than the grace period, ports without `archetype_kind`, other
 * bridges and their ports, devices that are an OVS port anywhere or enslaved to any bridge.
 */
export function auditOrphans(
  client: OvsdbClient,
  bridgeName: string,
  ctx: CleanupContext,
  kernel: KernelView,
): Orphan[] {
  const orphans: Orphan[] = [];
  const devices = new Map(kernel.links.map((l) => [l.name, l]));
  const labs = new Map(ctx.labs.map((l) => [l.lab, l]));

  const bridge = client.bridgeByName(bridgeName);
  for (const uuid of bridge?.ports ?? []) {
    const p = client.portByUuid(uuid);
    if (!p) continue;
    const kind = portKind(p.external_ids);
    if (kind === undefined) continue; // not ours
    const created = Number(p.external_ids[OWNER.created]);
    // A mark we cannot read is treated as "just made": never removed on a guess.
    if (!Number.isFinite(created) || created > ctx.graceSince) continue;
    const reason = portOrphanReason(client, p, kind, ctx, labs, devices);
    if (reason === undefined) continue;
    orphans.push({
      kind: kind === "node" ? "port" : kind === "plugin" ? "plugin_endpoint" : "overlay_port",
      name: p.name,
      reason,
      detail: { uuid: p.uuid, device: kind === "overlay" ? "" : p.name },
    });
  }

  // Stray kernel veths: ours by prefix, on no bridge, not desired.
  const onOvs = new Set<string>();
  for (const p of client.ports()) onOvs.add(p.name);
  for (const i of client.interfaces()) onOvs.add(i.name);
  const desired = desiredDevices(ctx);
  const stray = new Set<string>();
  for (const l of kernel.links) {
    if (l.kind !== "veth" || !ours(l.name, kernel.pluginPeersHere)) continue;
    if (onOvs.has(l.name) || l.master !== undefined) continue; // attached to a bridge
    if (desired.has(l.name)) continue;
    // A plugin peer whose host end is still a port belongs to that endpoint.
    if (l.name.startsWith(PLUGIN_PEER_PREFIX) && onOvs.has(PLUGIN_PORT_PREFIX + l.name.slice(2))) continue;
    stray.add(l.name);
    const seen = kernel.firstSeen.get(l.name) ?? kernel.now;
    kernel.firstSeen.set(l.name, seen);
    if (kernel.now - seen < ctx.graceMs) continue;
    orphans.push({
      kind: "veth",
      name: l.name,
      reason: `veth with the agent's prefix is on no bridge and belongs to no lab interface or plugin endpoint${
        l.peer === undefined && l.linkNetnsId === undefined ? "" : peerNote(l)
      }`,
      detail: { device: l.name },
    });
  }
  for (const name of [...kernel.firstSeen.keys()]) if (!stray.has(name)) kernel.firstSeen.delete(name);
  return orphans;
}

function peerNote(l: LinkInfo): string {
  if (l.peer !== undefined) return ` (peer ${l.peer} in the same namespace)`;
  return ` (peer in namespace id ${l.linkNetnsId})`;
}

function ours(name: string, pluginPeers: boolean): boolean {
  return (
    name.startsWith(HOST_PORT_PREFIX) ||
    name.startsWith(PLUGIN_PORT_PREFIX) ||
    (pluginPeers && name.startsWith(PLUGIN_PEER_PREFIX))
  );
}

/** Host ports (and plugin peers) the desired state says should exist. */
function desiredDevices(ctx: CleanupContext): Set<string> {
  const out = new Set<string>();
  for (const lab of ctx.labs)
    for (const n of Object.values(lab.nodes))
      for (const i of Object.values(n.interfaces)) out.add(i.hostPort);
  for (const hp of ctx.pluginPorts) {
    out.add(hp);
    if (hp.startsWith(PLUGIN_PORT_PREFIX)) out.add(PLUGIN_PEER_PREFIX + hp.slice(PLUGIN_PORT_PREFIX.length));
  }
  return out;
}

function portOrphanReason(
  client: OvsdbClient,
  p: PortRow,
  kind: PortKind,
  ctx: CleanupContext,
  labs: ReadonlyMap<string, LabRecord>,
  devices: ReadonlyMap<string, LinkInfo>,
): string | undefined {
  const ids = p.external_ids;
  if (kind === "overlay") {
    // Same test as the overlay manager's ownsPort: ours, same lab and link.
    const owned = ctx.overlays.some((o) => ids[OWNER.lab] === o.lab && ids[OWNER.link] === o.link);
    return owned ? undefined : "overlay port without an overlay link record";
  }
  if (kind === "plugin") {
    if (!ctx.pluginPorts.has(p.name)) return "plugin port of a Docker endpoint the agent no longer knows";
  } else {
    const labId = ids[OWNER.lab];
    const lab = labId === undefined ? undefined : labs.get(labId);
    if (!lab) return `port of lab ${labId ?? "(none)"}, which does not exist`;
    const node = lab.nodes[ids[OWNER.node] ?? ""];
    if (!node) return `port of node ${ids[OWNER.node] ?? "(none)"}, which lab ${lab.lab} does not have`;
    const iface = node.interfaces[ids[OWNER.iface] ?? ""];
    if (!iface || iface.hostPort !== p.name)
      return `port of ${node.name}:${ids[OWNER.iface] ?? "(none)"}, which lab ${lab.lab} does not have`;
  }
  // With the userspace datapath a port whose device vanished keeps its ofport and shows no
  // error: only the kernel tells.
  const system = p.interfaces.every((u) => {
    const t = client.interfaceByUuid(u)?.type ?? "";
    return t === "" || t === "system";
  });
  if (system && !devices.has(p.name)) return "port whose kernel interface no longer exists";
  return undefined;
}

/**
 * One transaction removing every orphaned port still on the bridge, and the kernel devices to
 * delete afterwards (a veth's peer goes with it). Entries that changed since the audit are skipped.
 */
export function removeOrphanOps(
  client: OvsdbClient,
  bridgeName: string,
  orphans: readonly Orphan[],
): { ops: Operation[]; kernel: string[]; ports: PortRow[] } {
  const bridge = client.bridgeByName(bridgeName);
  const onBridge = new Set(bridge?.ports ?? []);
  const ports: PortRow[] = [];
  const kernel: string[] = [];
  for (const o of orphans) {
    const uuid = o.detail?.uuid;
    if (uuid !== undefined) {
      const p = client.portByUuid(uuid);
      if (!p || p.name !== o.name || !onBridge.has(uuid) || portKind(p.external_ids) === undefined) continue;
      ports.push(p);
    }
    const device = o.detail?.device;
    if (device) kernel.push(device);
  }
  const ops =
    bridge && ports.length > 0
      ? removePorts(
          bridge.uuid,
          ports.map((p) => p.uuid),
        )
      : [];
  return { ops, kernel: [...new Set(kernel)], ports };
}

/** The `orphans` capability: what cleanup finds on the switch and in its namespace, and removing it. */
export class OrphanSweep {
  /** When each stray kernel veth was first seen (the kernel keeps no creation time). */
  private readonly strayVeths = new Map<string, number>();

  constructor(private readonly sw: OvsSwitch) {}

  async audit(ctx: CleanupContext): Promise<Orphan[]> {
    const links = await listLinks(this.sw.hostNs);
    return auditOrphans(this.sw.client, this.sw.bridgeName, ctx, {
      links,
      pluginPeersHere: this.sw.hostNs === undefined,
      firstSeen: this.strayVeths,
      now: Date.now(),
    });
  }

  /** All port removals of one pass in one transaction, then the kernel devices in one batch. */
  async remove(orphans: readonly Orphan[]): Promise<void> {
    const { ops, kernel, ports } = removeOrphanOps(this.sw.client, this.sw.bridgeName, orphans);
    await this.sw.transact(ops);
    if (ports.length > 0) this.sw.vlans.rebuild(this.sw.vlansInUse());
    if (kernel.length > 0) await deleteMany(kernel, this.sw.hostNs);
    for (const name of kernel) this.strayVeths.delete(name);
  }
}
