import { AgentError, toAgentError } from "../../../common/errors.js";
import type { Logger } from "../../../common/log.js";
import type { AgentConfig } from "../../../config/config.js";
import { ipJson, setMtu } from "../../../link/index.js";
import { describeNetns, type NetnsRef } from "../../../link/netns.js";
import type { LinkEnd } from "../../../model/ends.js";
import type { OverlayRecord } from "../../../model/records.js";
import type { TunnelView } from "../../../model/views.js";
import {
  type BridgeRow,
  type CacheChange,
  eqUuid,
  type InterfaceRow,
  map,
  type Operation,
  type OvsdbClient,
  type PortRow,
  update,
} from "../../../ovsdb/index.js";
import { resolveDatapath } from "../switch/bridge.js";
import { OWNER } from "../switch/ownership.js";
import { addPorts, removePorts, retag } from "../switch/port-ops.js";
import type { VlanAllocator } from "../switch/vlan-allocator.js";
import { ensureUnderlay, localAddresses } from "./underlay.js";
import {
  dropCount,
  ownsPort,
  sameTunnel,
  tunnelDrops,
  VXLAN_OVERHEAD,
  VXLAN_PREFIX,
  vxlanMarks,
  vxlanOptions,
  vxlanPortName,
} from "./vxlan-port.js";

export interface OverlayManagerDeps {
  config: AgentConfig;
  logger: Logger;
  client: OvsdbClient;
  vlans: VlanAllocator;
  bridge: () => BridgeRow;
  /**
   * The backend's transaction door (marks the change as the agent's own; waits for ovs-vswitchd
   * unless told not to).
   */
  transact: (ops: Operation[], opts?: { waitApplied?: boolean }) => Promise<void>;
  /** Where ovs-vswitchd runs and the host ends of veths live (undefined: the agent's own). */
  switchNetns: NetnsRef | undefined;
}

/** What converging one overlay link did. */
interface Converged {
  /** Words for a repair line; empty when nothing had to change in OVS. */
  changes: string[];
  /** The overlay VLAN was allocated by this call (released again if the call fails). */
  allocated: number | undefined;
  /** The VXLAN port was created by this call. */
  created: boolean;
}

/**
 * Cross-host links on the OVS bridge. An overlay link is a VXLAN port `vxlan<VNI>` (remote_ip,
 * local_ip, key=VNI) and the node's access port, both tagged with one VLAN of the overlay range:
 * the VLAN is local to this host, the VNI is what both hosts agree on. Everything is written in
 * one OVSDB transaction with the ownership marks, so a restarted agent reads back what exists.
 *
 * MTU: the node's interface (both veth ends) is set to the link's MTU (default
 * ARCHETYPE_AGENT_OVERLAY_MTU = underlay MTU - 50), so a node cannot send a frame the underlay
 * cannot carry: it gets EMSGSIZE / path-MTU feedback locally instead of a silent loss. On detach
 * both ends go back to the interface's declared MTU. Frames that are too big anyway (a node that
 * raised its MTU by hand) are dropped by the switch: they are counted in the tunnel's `drops`
 * (tx/rx dropped and errors of the VXLAN Interface) and a warning is logged when the count grows.
 */
export class OverlayManager {
  private underlay: Promise<unknown> | undefined;
  /**
   * IPv4 addresses of the switch namespace: read in the background at every reconcile (so an
   * attach starts no process), read again when an attach names one not in it.
   */
  private addresses: Promise<Set<string>> | undefined;
  /** Last drop count seen per watched interface (by name). */
  private readonly drops = new Map<string, number>();
  /** Per `local>remote`: why the switch cannot reach the remote (undefined: it can, or unchecked). */
  private readonly unroutable = new Map<string, string | undefined>();

  constructor(readonly deps: OverlayManagerDeps) {
    deps.client.on("change", (c: CacheChange) => this.onChange(c));
  }

  /**
   * Without `wait` this resolves when OVSDB has committed the change: ovs-vswitchd creates the
   * VXLAN port in the background (tens of ms on the userspace datapath; status says `pending`
   * until then), so a lab controller wiring many links does not wait for each.
   */
  async attach(rec: OverlayRecord, end: LinkEnd, wait: boolean): Promise<void> {
    await this.ensureUnderlayOnce();
    await this.requireLocalIp(rec.localIp);
    await this.converge(rec, end, wait);
    this.checkRouteLater(rec);
    const underlayMtu = this.deps.client.interfaceByName(this.deps.config.underlay.bridge)?.mtu;
    if (underlayMtu !== undefined && rec.mtu + VXLAN_OVERHEAD > underlayMtu) {
      this.deps.logger.warn(
        { lab: rec.lab, link: rec.link, mtu: rec.mtu, underlayMtu },
        `overlay MTU ${rec.mtu} + ${VXLAN_OVERHEAD} exceeds the underlay MTU ${underlayMtu}: big frames will be dropped`,
      );
    }
  }

  async detach(rec: OverlayRecord, end: LinkEnd | undefined): Promise<void> {
    const { client, logger } = this.deps;
    const name = vxlanPortName(rec.vni);
    const port = client.portByName(name);
    const ops: Operation[] = [];
    if (port && ownsPort(rec, port)) ops.push(...removePorts(this.deps.bridge().uuid, [port.uuid]));
    else if (port)
      logger.warn({ port: name }, "overlay detach: the VXLAN port is not this link's; left alone");
    const nodePort = end ? client.portByName(end.iface.hostPort) : this.nodePortOf(rec);
    let isolated: number | undefined;
    if (nodePort && nodePort.external_ids[OWNER.overlay] === rec.link) {
      const { [OWNER.overlay]: _gone, ...ids } = nodePort.external_ids;
      let iso = Number(ids[OWNER.isolated]);
      if (!Number.isInteger(iso) || iso <= 0) {
        iso = isolated = this.deps.vlans.allocate("isolated");
        ids[OWNER.isolated] = String(iso);
      }
      ops.push(retag(nodePort.uuid, iso, ids));
    }
    try {
      await this.deps.transact(ops);
    } catch (e) {
      this.deps.vlans.release(isolated);
      throw e;
    }
    if (port?.tag !== undefined && ownsPort(rec, port)) this.releaseIfUnused(port.tag);
    if (end && nodePort) {
      await this.setMtus(end, end.iface.mtu).catch((e: unknown) =>
        logger.warn(
          { lab: rec.lab, link: rec.link, err: toAgentError(e).message },
          "overlay detach: could not restore the interface MTU",
        ),
      );
    }
  }

  status(recs: readonly OverlayRecord[]): TunnelView[] {
    const { client } = this.deps;
    const nodePorts = new Map<string, PortRow>();
    for (const p of client.ports()) {
      const link = p.external_ids[OWNER.overlay];
      if (link !== undefined) nodePorts.set(`${p.external_ids[OWNER.lab]}/${link}`, p);
    }
    return recs.map((rec) => {
      const name = vxlanPortName(rec.vni);
      const found = client.portByName(name);
      const port = found && ownsPort(rec, found) ? found : undefined;
      const iface = port?.interfaces[0] ? client.interfaceByUuid(port.interfaces[0]) : undefined;
      const nodePort = nodePorts.get(`${rec.lab}/${rec.link}`);
      const wired = port !== undefined && nodePort !== undefined && nodePort.tag === port.tag;
      const s = iface?.statistics ?? {};
      const switchState = tunnelState(iface);
      const noRoute = this.unroutable.get(routeKey(rec));
      return {
        lab: rec.lab,
        link: rec.link,
        mode: rec.mode ?? "vlan",
        vni: rec.vni,
        vlan: port?.tag ?? null,
        port: name,
        local_ip: rec.localIp,
        remote_ip: rec.remoteIp,
        node: rec.node,
        interface: rec.interface,
        mtu: rec.mtu,
        state: !wired ? "missing" : noRoute ? "error" : switchState,
        ...(switchState === "error"
          ? { error: iface?.error ?? "ovs-vswitchd could not create the port" }
          : noRoute
            ? { error: noRoute }
            : {}),
        rx_packets: s.rx_packets ?? 0,
        tx_packets: s.tx_packets ?? 0,
        rx_bytes: s.rx_bytes ?? 0,
        tx_bytes: s.tx_bytes ?? 0,
        drops: tunnelDrops(iface, nodePort ? client.interfaceByName(nodePort.name) : undefined),
      };
    });
  }

  /**
   * Builds the underlay (when configured) and makes every overlay link's VXLAN port and node
   * port match its record. Ports of kind overlay without a record are left to cleanup.
   */
  async reconcile(
    recs: readonly OverlayRecord[],
    endOf: (o: OverlayRecord) => LinkEnd | undefined,
  ): Promise<string[]> {
    const repairs: string[] = [];
    this.unroutable.clear();
    if (this.underlayConfigured()) {
      try {
        repairs.push(...(await this.startUnderlay()));
      } catch (e) {
        this.deps.logger.warn({ err: toAgentError(e).message }, "underlay not ready; retried on attach");
      }
    }
    if (recs.length > 0 || this.underlayConfigured()) {
      this.addresses = localAddresses(this.deps.switchNetns).catch(() => new Set<string>());
    }
    for (const rec of recs) {
      const end = endOf(rec);
      // Without its node (or the node's port) the link waits; the lab's reconcile re-creates ports first.
      if (!end || !this.deps.client.portByName(end.iface.hostPort)) continue;
      try {
        const r = await this.converge(rec, end);
        this.checkRouteLater(rec);
        if (r.changes.length > 0) repairs.push(`overlay ${rec.lab}/${rec.link}: ${r.changes.join(", ")}`);
      } catch (e) {
        this.deps.logger.warn(
          { lab: rec.lab, link: rec.link, err: toAgentError(e).message },
          "overlay link could not be repaired",
        );
      }
    }
    return repairs;
  }

  // ---- convergence ----

  /**
   * One transaction that makes the VXLAN port and the node's port right, then the MTU of both
   * veth ends. Nothing is sent when everything already matches (idempotent attach). When a
   * step fails, what this call created is undone.
   */
  private async converge(rec: OverlayRecord, end: LinkEnd, wait = true): Promise<Converged> {
    const { client, vlans } = this.deps;
    const name = vxlanPortName(rec.vni);
    const nodePort = client.portByName(end.iface.hostPort);
    if (!nodePort) {
      throw new AgentError(
        "INTERFACE_NOT_FOUND",
        `${rec.node}:${rec.interface} has no port on ${this.deps.config.bridge}`,
        "the agent repairs missing ports within a second; retry",
      );
    }
    const bridge = this.deps.bridge();
    const port = client.portByName(name);
    if (port && (!ownsPort(rec, port) || !bridge.ports.includes(port.uuid))) {
      const ids = port.external_ids;
      throw new AgentError(
        "CONFLICT",
        `OVS port ${name} for VNI ${rec.vni} already exists` +
          (ids[OWNER.kind] === "overlay"
            ? ` for overlay link ${ids[OWNER.lab]}/${ids[OWNER.link]}`
            : " and is not the agent's"),
        "remove it (POST /cleanup removes overlay ports without a link) or use another VNI",
      );
    }
    const result: Converged = { changes: [], allocated: undefined, created: false };
    // A VXLAN port deleted by hand: its node port still holds the link's VLAN; keep it.
    let vlan = port ? port.tag : nodePort.external_ids[OWNER.overlay] === rec.link ? nodePort.tag : undefined;
    if (vlan === undefined || !vlans.inPool("overlay", vlan) || this.taken(vlan, [port, nodePort])) {
      vlan = result.allocated = vlans.allocate("overlay");
    }
    const ops: Operation[] = [];
    if (!port) {
      ops.push(
        ...addPorts(bridge.uuid, [
          { name, tag: vlan, externalIds: vxlanMarks(rec), type: "vxlan", options: vxlanOptions(rec) },
        ]),
      );
      result.created = true;
      result.changes.push(`port ${name} created`);
    } else {
      const iface = port.interfaces[0] ? client.interfaceByUuid(port.interfaces[0]) : undefined;
      if (iface && !sameTunnel(rec, iface)) {
        const options = { ...iface.options, ...vxlanOptions(rec) };
        ops.push(update("Interface", [eqUuid(iface.uuid)], { type: "vxlan", options: map(options) }));
        result.changes.push(`options of ${name} corrected`);
      }
      if (port.tag !== vlan) {
        ops.push(retag(port.uuid, vlan, { ...port.external_ids, ...vxlanMarks(rec) }));
        result.changes.push(`${name} retagged ${vlan}`);
      }
    }
    const nodeIds = nodePort.external_ids;
    if (nodePort.tag !== vlan || nodeIds[OWNER.overlay] !== rec.link) {
      ops.push(retag(nodePort.uuid, vlan, { ...nodeIds, [OWNER.overlay]: rec.link }));
      result.changes.push(`${end.iface.hostPort} joined VLAN ${vlan}`);
    }
    const hostIface = client.interfaceByName(end.iface.hostPort);
    // Interfaces provisioned with the overlay MTU need no ip process: attach is one transaction.
    const mtuWrong = hostIface?.mtu !== rec.mtu;
    // The transaction and the MTU are independent: run them together (attach latency).
    const [txn, mtu] = await Promise.allSettled([
      this.deps.transact(ops, { waitApplied: wait }),
      mtuWrong ? this.setMtus(end, rec.mtu) : Promise.resolve(),
    ]);
    if (txn.status === "rejected" || mtu.status === "rejected") {
      await this.undo(rec, end, result, txn.status === "fulfilled", mtu.status === "fulfilled" && mtuWrong);
      throw txn.status === "rejected" ? txn.reason : (mtu as PromiseRejectedResult).reason;
    }
    if (mtuWrong && result.changes.length === 0) result.changes.push(`MTU set to ${rec.mtu}`);
    return result;
  }

  /** Best-effort rollback of a failed converge: only what that call itself created. */
  private async undo(
    rec: OverlayRecord,
    end: LinkEnd,
    r: Converged,
    committed: boolean,
    mtuSet: boolean,
  ): Promise<void> {
    const { client, logger } = this.deps;
    try {
      if (committed && r.created) {
        const port = client.portByName(vxlanPortName(rec.vni));
        const nodePort = client.portByName(end.iface.hostPort);
        const ops: Operation[] = port ? removePorts(this.deps.bridge().uuid, [port.uuid]) : [];
        if (nodePort) {
          const { [OWNER.overlay]: _gone, ...ids } = nodePort.external_ids;
          const iso = Number(ids[OWNER.isolated]);
          if (Number.isInteger(iso) && iso > 0) ops.push(retag(nodePort.uuid, iso, ids));
        }
        await this.deps.transact(ops);
      }
      if (!committed || r.created) this.deps.vlans.release(r.allocated);
      if (mtuSet) await this.setMtus(end, end.iface.mtu);
    } catch (e) {
      logger.warn(
        { lab: rec.lab, link: rec.link, err: toAgentError(e).message },
        "overlay attach: rollback incomplete; reconcile or cleanup finishes it",
      );
    }
  }

  /** The node end (in the node's netns) and the host end (in the switch netns), in parallel. */
  private async setMtus(end: LinkEnd, mtu: number): Promise<void> {
    const work = [setMtu([end.iface.hostPort], mtu, this.deps.switchNetns)];
    // Docker plugin nodes have no netns of record: Docker owns the container's end.
    if (end.node.netns) work.push(setMtu([end.iface.name], mtu, end.node.netns));
    const results = await Promise.allSettled(work);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  /** Whether a port other than these already uses the VLAN (it would join two links). */
  private taken(vlan: number, except: readonly (PortRow | undefined)[]): boolean {
    const skip = new Set(except.map((p) => p?.uuid));
    return this.deps.client.ports().some((p) => p.tag === vlan && !skip.has(p.uuid));
  }

  private releaseIfUnused(vlan: number): void {
    if (!this.deps.vlans.inPool("overlay", vlan)) return;
    if (this.deps.client.ports().some((p) => p.tag === vlan)) return;
    this.deps.vlans.release(vlan);
  }

  /** The node port carrying this overlay link, found by its marks (when the lab forgot the node). */
  private nodePortOf(rec: OverlayRecord): PortRow | undefined {
    return this.deps.client
      .ports()
      .find(
        (p) =>
          p.external_ids[OWNER.lab] === rec.lab &&
          p.external_ids[OWNER.overlay] === rec.link &&
          p.external_ids[OWNER.kind] !== "overlay",
      );
  }

  // ---- underlay ----

  private underlayConfigured(): boolean {
    const u = this.deps.config.underlay;
    return u.interface !== undefined && u.localIp !== undefined;
  }

  private buildUnderlay(): Promise<string[]> {
    let datapath: string;
    try {
      datapath = this.deps.bridge().datapath_type || resolveDatapath(this.deps.config.datapath);
    } catch {
      datapath = resolveDatapath(this.deps.config.datapath);
    }
    return ensureUnderlay(this.deps.config.underlay, {
      client: this.deps.client,
      logger: this.deps.logger,
      transact: this.deps.transact,
      switchNetns: this.deps.switchNetns,
      datapath,
    });
  }

  /** Once per agent (again after a failure, and on every reconcile). */
  private async ensureUnderlayOnce(): Promise<void> {
    if (!this.underlayConfigured()) return;
    await (this.underlay ?? this.startUnderlay());
  }

  /** Builds the underlay now; a failure is forgotten so the next attach tries again. */
  private startUnderlay(): Promise<string[]> {
    const run = this.buildUnderlay();
    this.underlay = run;
    run.catch(() => {
      if (this.underlay === run) this.underlay = undefined;
    });
    return run;
  }

  /**
   * ovs-vswitchd routes tunnel packets from local_ip with the routes of its own namespace: an
   * address that is not there means the tunnel can never carry anything. Checked against a
   * cached list, refreshed on a miss (cheap for the common case: one address, many links).
   */
  private async requireLocalIp(ip: string): Promise<void> {
    if ((await this.addresses)?.has(ip)) return;
    const fresh = localAddresses(this.deps.switchNetns);
    this.addresses = fresh.catch(() => new Set<string>());
    if ((await fresh).has(ip)) return;
    const { underlay } = this.deps.config;
    const where = this.deps.switchNetns ? describeNetns(this.deps.switchNetns) : "the agent's namespace";
    throw new AgentError(
      "INVALID_IP",
      `local_ip ${ip} is not on any interface of the switch namespace (${where})`,
      this.underlayConfigured()
        ? `this host's tunnel address is ${underlay.localIp} (ARCHETYPE_AGENT_UNDERLAY_IP): use it as local_ip`
        : `set ARCHETYPE_AGENT_UNDERLAY_INTERFACE and ARCHETYPE_AGENT_UNDERLAY_IP, or add ${ip} to ${underlay.bridge}`,
    );
  }

  /**
   * Whether the switch namespace has a route from local_ip to remote_ip (ovs-vswitchd routes
   * tunnel packets with it). Checked once per pair in the background (an `ip` process is not
   * for the attach path): a missing route is logged with what to do and shown in the status
   * until the next reconcile checks again.
   */
  private checkRouteLater(rec: OverlayRecord): void {
    const key = routeKey(rec);
    if (this.unroutable.has(key)) return;
    this.unroutable.set(key, undefined);
    // Spawning blocks the event loop for ~10 ms: only after the answer has gone out.
    setTimeout(() => this.checkRoute(rec, key), 0);
  }

  private checkRoute(rec: OverlayRecord, key: string): void {
    ipJson<{ dev?: string }[]>(["route", "get", rec.remoteIp, "from", rec.localIp], this.deps.switchNetns)
      .then((r) => {
        if (r[0]?.dev === "lo") throw new Error(`${rec.remoteIp} is an address of this host`);
      })
      .catch((e: unknown) => {
        const why = `no route from ${rec.localIp} to ${rec.remoteIp} in the switch namespace: ${toAgentError(e).message.split("\n")[0]}`;
        this.unroutable.set(key, why);
        this.deps.logger.warn(
          { lab: rec.lab, link: rec.link },
          `${why}; the tunnel cannot carry anything (add a route, or fix ARCHETYPE_AGENT_UNDERLAY_IP's prefix)`,
        );
      });
  }

  // ---- drops ----

  /**
   * Warns when drop counters grow (ovs-vswitchd refreshes statistics every 5 s) on a VXLAN
   * Interface, a node port carrying an overlay link, or the underlay NIC.
   */
  private onChange(c: CacheChange): void {
    if (c.table !== "Interface") return;
    const name = String((c.new ?? c.old)?.name ?? "");
    if (c.kind === "delete") {
      this.drops.delete(name);
      return;
    }
    const why = this.dropMeaning(name);
    if (!why) return;
    const now = dropCount(this.deps.client.interfaceByUuid(c.uuid));
    const before = this.drops.get(name);
    this.drops.set(name, now);
    if (before !== undefined && now > before) {
      this.deps.logger.warn({ interface: name, drops: now, new: now - before }, why);
    }
  }

  private dropMeaning(name: string): string | undefined {
    if (name.startsWith(VXLAN_PREFIX)) return `overlay tunnel ${name} is dropping packets`;
    if (name === this.deps.config.underlay.interface) {
      return `underlay ${name} is dropping packets: overlay frames too big for it? lower the overlay links' MTU`;
    }
    const ids = this.deps.client.portByName(name)?.external_ids;
    const link = ids?.[OWNER.overlay];
    if (link === undefined) return undefined;
    return (
      `overlay link ${ids?.[OWNER.lab]}/${link}: node ${ids?.[OWNER.node]}:${ids?.[OWNER.iface]} ` +
      "sent frames bigger than the link's MTU; they were dropped (did someone raise its MTU?)"
    );
  }
}

/** What ovs-vswitchd made of a VXLAN Interface: no ofport yet means it has not created it. */
function tunnelState(iface: InterfaceRow | undefined): TunnelView["state"] {
  if (iface?.error !== undefined || iface?.ofport === -1) return "error";
  if (iface?.ofport === undefined) return "pending";
  return iface.link_state === "up" && iface.admin_state !== "down" ? "up" : "down";
}

function routeKey(rec: OverlayRecord): string {
  return `${rec.localIp}>${rec.remoteIp}`;
}
