import { AgentError } from "../../common/errors.js";
import type { Logger } from "../../common/log.js";
import type { AgentConfig } from "../../config/config.js";
import {
  createVeths,
  createVethsInHost,
  deleteGroup,
  deleteLinks,
  disableTxOffload,
  isEmptyShape,
  listLinks,
  listRootQdiscs,
  netemMissing,
  type QdiscShape,
  qdiscLine,
  type RootQdisc,
  rootQdisc,
  sameShape,
  setLinkUp,
  tcBatch,
  untilCarrier,
} from "../../link/index.js";
import { type NetnsRef, netnsLost, switchNetnsRef } from "../../link/netns.js";
import { type LinkEnd, resolveEnd, storedEnd, type WiredLink } from "../../model/ends.js";
import type { CarrierState, InterfaceRecord, LabRecord, OverlayRecord } from "../../model/records.js";
import type { SwitchStatusView } from "../../model/views.js";
import {
  type BridgeRow,
  type CacheChange,
  eqUuid,
  map,
  mapDeleteKeys,
  mapInsert,
  mutate,
  type Operation,
  OvsdbClient,
  type PortRow,
  type TransactOptions,
  update,
} from "../../ovsdb/index.js";
import type {
  CaptureCapability,
  CapturePoint,
  CleanupContext,
  DetachedEndpoint,
  DockerPortOwner,
  DockerPortsCapability,
  ImpairmentCapability,
  NetworkBackend,
  Orphan,
  OrphansCapability,
  OverlayCapability,
  PortObservation,
  ReconcileReport,
  SwitchDbCapability,
} from "../network-backend.js";
import { ensureBridgeOps, resolveDatapath } from "./bridge.js";
import { CarrierFollow } from "./carrier-follow.js";
import { auditOrphans, deleteDevices, removeOrphanOps } from "./orphans.js";
import { OverlayManager } from "./overlay/overlay-manager.js";
import { dockerOwnerIds, OWNER, portKind } from "./ownership.js";
import { mgmtTarget, PortAdmin } from "./port-admin.js";
import { addPorts, type NewPort, removePorts, retag } from "./port-ops.js";
import { switchStatus } from "./status.js";
import { VlanAllocator } from "./vlan-allocator.js";

/** How long ovs-vswitchd may take to close a lab's removed ports (hundreds on a busy host). */
const CLOSE_APPLY_MS = 60_000;
/** How long carrier up waits for ovs-vswitchd and the nodes to see the links up before answering anyway. */
const CARRIER_WAIT_MS = 3000;

/**
 * The Open vSwitch backend: one bridge, every node interface a veth whose host end is an access
 * port, a link = both ends share a VLAN. All OVS work goes over one OVSDB connection; each batch
 * of work is one transaction that also records ownership in `external_ids`, and resolves once
 * ovs-vswitchd has applied it.
 */
export class OvsBackend implements NetworkBackend {
  readonly name = "ovs" as const;
  readonly datapath: "system" | "netdev";
  readonly vlans: VlanAllocator;
  private client!: OvsdbClient;
  private tunnels!: OverlayManager;
  /** Carrier follows across links: a dead end takes its peer down with it. */
  follow!: CarrierFollow;
  private ports!: PortAdmin;
  private ownTxns = 0;
  private readonly driftListeners: ((reason: string) => void)[] = [];
  /** Cleanup: when each stray kernel veth was first seen (the kernel keeps no creation time). */
  private readonly strayVeths = new Map<string, number>();
  /** Where the host ends of veths live: the namespace ovs-vswitchd opens ports in. */
  private readonly hostNs: NetnsRef | undefined;
  /** Host ports given a qdisc by this agent (reconcile checks them even when none is wanted now). */
  private readonly shaped = new Set<string>();
  /** Whether a reconcile has compared the host ends' qdiscs with the records yet. */
  private qdiscsChecked = false;

  constructor(
    private readonly config: AgentConfig,
    private readonly logger: Logger,
  ) {
    this.datapath = resolveDatapath(config.datapath);
    this.vlans = new VlanAllocator(config.vlan);
    this.hostNs = switchNetnsRef(config.switchNetns);
  }

  readonly unsupported = {};

  readonly overlay: OverlayCapability = {
    attach: (rec, end, opts = {}) => this.tunnels.attach(rec, end, opts.wait ?? false),
    detach: (rec, end) => this.tunnels.detach(rec, end),
    status: (recs) => this.tunnels.status(recs),
  };

  readonly dockerPorts: DockerPortsCapability = {
    createDetached: (eps) => this.createDetached(eps),
    removeDetached: (hostPorts) => this.removeDetached(hostPorts),
    mark: (hostPort, owner, opts) => this.markPort(hostPort, owner, opts),
  };

  readonly orphans: OrphansCapability = {
    audit: (ctx) => this.audit(ctx),
    remove: (orphans) => this.removeOrphans(orphans),
  };

  readonly switchDb: SwitchDbCapability = {
    client: () => this.client,
    labOf: (externalIds) => externalIds[OWNER.lab],
  };

  readonly impairment: ImpairmentCapability = {
    netemMissing: () => {
      const why = netemMissing();
      return (
        why &&
        `${why}; delay, jitter, loss, corruption, duplication and reordering need it (rate_kbit alone works, through tbf)`
      );
    },
    apply: (lab, links) => this.impair(lab, links),
    applied: (links) => this.appliedImpairments(links),
  };

  readonly capture: CaptureCapability = {
    point: (end) => this.capturePoint(end),
  };

  get ovsdb(): OvsdbClient {
    return this.client;
  }

  /** The namespace of the switch's ports (undefined: the agent's own). */
  get switchNetns(): NetnsRef | undefined {
    return this.hostNs;
  }

  async start(): Promise<void> {
    this.client = await OvsdbClient.connect({
      remote: this.config.ovsdb,
      probeIntervalMs: this.config.ovsdbProbeMs,
      logger: this.logger,
    }).catch((e) => {
      if (!(e instanceof AgentError) || e.code !== "OVS_UNREACHABLE") throw e;
      throw new AgentError(
        "OVS_UNREACHABLE",
        e.message,
        `${e.hint ?? "is Open vSwitch running (ovs-ctl start, or make run)?"}; to run without Open vSwitch set ARCHETYPE_AGENT_BACKEND=local (point-to-point links only, no overlay or Docker plugin)`,
        { cause: e },
      );
    });
    this.tunnels = new OverlayManager({
      config: this.config,
      logger: this.logger,
      client: this.client,
      vlans: this.vlans,
      bridge: () => this.bridge(),
      transact: (ops, opts) => this.transact(ops, opts),
      switchNetns: this.hostNs,
    });
    this.ports = new PortAdmin(
      this.client,
      mgmtTarget(this.config.ovsdb, this.config.bridge),
      this.hostNs,
      this.logger,
    );
    this.follow = new CarrierFollow(
      this.client,
      (names, up) => this.ports.setUp(names, up),
      (tunnels) =>
        this.transact(
          tunnels.map((t) => update("Interface", [eqUuid(t.uuid)], { bfd: map(t.bfd) })),
          { waitApplied: false },
        ),
      this.logger,
    );
    this.client.on("change", (c: CacheChange) => this.onChange(c));
    this.client.on("connected", () => this.drift("reconnected to ovsdb-server"));
  }

  async stop(): Promise<void> {
    await this.ports?.close();
    await this.client?.close();
  }

  onDrift(listener: (reason: string) => void): void {
    this.driftListeners.push(listener);
  }

  /** Our own transactions' updates arrive before their results; anything else is someone else. */
  private onChange(c: CacheChange): void {
    this.follow.onChange(c);
    if (this.ownTxns > 0) return;
    const bridge = this.config.bridge;
    if (c.table === "Bridge") {
      const name = String((c.old ?? c.new)?.name ?? "");
      if (name === bridge) this.drift(`bridge ${bridge} changed behind the agent's back (${c.kind})`);
    } else if (c.table === "Port") {
      const row = (c.old ?? c.new) as { external_ids?: unknown } | undefined;
      if (JSON.stringify(row?.external_ids ?? "").includes(OWNER.kind))
        this.drift(`port changed (${c.kind})`);
    }
  }

  private drift(reason: string): void {
    for (const l of this.driftListeners) l(reason);
  }

  /** Every change goes through here: one transaction, applied by ovs-vswitchd before it resolves. */
  async transact(ops: Operation[], opts: TransactOptions = {}): Promise<void> {
    if (ops.length === 0) return;
    this.ownTxns++;
    try {
      await this.client.transact(ops, { ...opts, waitApplied: opts.waitApplied ?? true });
    } finally {
      this.ownTxns--;
    }
  }

  bridge(): BridgeRow {
    const b = this.client.bridgeByName(this.config.bridge);
    if (!b) {
      throw new AgentError(
        "OVS_UNREACHABLE",
        `bridge ${this.config.bridge} does not exist`,
        "the agent re-creates it within a second; retry",
      );
    }
    return b;
  }

  private port(name: string): PortRow | undefined {
    return this.client.portByName(name);
  }

  async provision(lab: LabRecord, ends: readonly LinkEnd[]): Promise<void> {
    // Ports ovs-vswitchd is still closing (a lab torn down just before, by this agent or a
    // predecessor) must be gone first: closing one restores the flags it changed on a device *of
    // that name*, which would set the new host ends down behind the agent's back.
    await this.client.caughtUp(CLOSE_APPLY_MS);
    const isolated = this.vlans.allocateMany("isolated", ends.length);
    let made = false;
    try {
      await createVeths(
        ends.map(({ node, iface }) => {
          if (!node.netns) throw new AgentError("BAD_REQUEST", `node ${node.name} has no network namespace`);
          return {
            host: iface.hostPort,
            peer: iface.name,
            netns: node.netns,
            netnsId: node.netnsId,
            mtu: iface.mtu,
            group: lab.group,
          };
        }),
        { netns: this.hostNs },
      );
      made = true;
      // The nodes' offload setting and the switch ports are independent: both at once.
      const [offload, ports] = await Promise.allSettled([
        this.datapath === "netdev"
          ? disableTxOffload(ends.map((e) => ({ dev: e.iface.name, netns: e.node.netns })))
          : undefined,
        this.transact(
          addPorts(
            this.bridge().uuid,
            ends.map((e, i) => nodePort(lab, e, isolated[i]!)),
          ),
        ),
      ]);
      if (offload.status === "rejected") {
        if (ports.status === "fulfilled")
          await this.takeOffBridge(ends.map((e) => this.port(e.iface.hostPort)));
        throw offload.reason;
      }
      if (ports.status === "rejected") throw ports.reason;
    } catch (e) {
      for (const v of isolated) this.vlans.release(v);
      // createVeths undoes its own failure: a device by that name then is someone else's.
      if (made)
        await deleteLinks(
          ends.map((e) => e.iface.hostPort),
          { ignoreMissing: true, netns: this.hostNs },
        ).catch(() => undefined);
      throw e;
    }
    const down = ends.filter((e) => e.iface.carrier === "down");
    this.follow.setDesired(
      ends.filter((e) => e.iface.carrier === "up").map((e) => e.iface.hostPort),
      "up",
    );
    if (down.length > 0) await this.setCarrier(lab, down, "down");
  }

  async release(_lab: LabRecord, ends: readonly LinkEnd[]): Promise<void> {
    this.follow.forget(ends.map((e) => e.iface.hostPort));
    for (const e of ends) this.shaped.delete(e.iface.hostPort);
    await this.removePortRows(ends.map((e) => this.port(e.iface.hostPort)));
    await deleteLinks(
      ends.map((e) => e.iface.hostPort),
      { ignoreMissing: true, netns: this.hostNs },
    );
  }

  async connect(_lab: LabRecord, links: readonly WiredLink[]): Promise<void> {
    const vlans = this.vlans.allocateMany("local", links.length);
    const ops: Operation[] = [];
    try {
      links.forEach((w, i) => {
        for (const end of [w.a, w.b]) {
          const p = this.requirePort(end);
          ops.push(retag(p.uuid, vlans[i]!, { ...p.external_ids, [OWNER.link]: w.link.id }));
        }
      });
      await this.transact(ops);
    } catch (e) {
      for (const v of vlans) this.vlans.release(v);
      throw e;
    }
    await this.impair(
      _lab,
      links.filter((w) => !isEmptyImpairment(w)),
    );
    const down = links.filter((w) => w.link.carrier === "down").flatMap((w) => [w.a, w.b]);
    this.follow.setDesired(
      down.map((e) => e.iface.hostPort),
      "down",
    );
    if (down.length > 0)
      await setLinkUp(
        down.map((e) => e.iface.hostPort),
        false,
        this.hostNs,
      );
  }

  async disconnect(_lab: LabRecord, links: readonly WiredLink[]): Promise<void> {
    const ops: Operation[] = [];
    const freed: number[] = [];
    for (const w of links) {
      for (const end of [w.a, w.b]) {
        const p = this.port(end.iface.hostPort);
        if (!p || p.external_ids[OWNER.link] !== w.link.id) continue;
        if (p.tag !== undefined && this.vlans.inPool("local", p.tag)) freed.push(p.tag);
        ops.push(isolateAgain(p));
      }
    }
    await this.transact(ops);
    for (const v of new Set(freed)) this.vlans.release(v);
    // The link's impairment goes with it: its ends are plain interfaces again.
    const shaped = links.filter(
      (w) => !isEmptyImpairment(w) || [w.a, w.b].some((e) => this.shaped.has(e.iface.hostPort)),
    );
    await this.shape(shaped.flatMap((w) => directions(w, undefined)));
  }

  private async impair(_lab: LabRecord, links: readonly WiredLink[]): Promise<void> {
    await this.shape(links.flatMap((w) => directions(w, w.link.impairment)));
  }

  /** Gives each host port its qdisc (undefined: none) in one tc batch. */
  private async shape(items: readonly Shaping[]): Promise<void> {
    if (items.length === 0) return;
    await tcBatch(
      items.map((i) => qdiscLine(i.dev, i.shape, i.mtu)),
      this.hostNs,
    );
    for (const i of items) {
      if (isEmptyShape(i.shape)) this.shaped.delete(i.dev);
      else this.shaped.add(i.dev);
    }
  }

  private async appliedImpairments(links: readonly WiredLink[]) {
    return Promise.all(
      links.map(async (w) => {
        const [toB, toA] = directions(w, w.link.impairment);
        const [haveB, haveA] = await Promise.all(
          [toB!, toA!].map((d) => rootQdisc(d.dev, this.hostNs).catch(() => undefined)),
        );
        return {
          a_to_b: shapeOf(haveB),
          b_to_a: shapeOf(haveA),
          in_sync: sameShape(toB!.shape, haveB) && sameShape(toA!.shape, haveA),
        };
      }),
    );
  }

  private capturePoint(end: LinkEnd): CapturePoint | undefined {
    if (!this.port(end.iface.hostPort)) return undefined;
    return { netns: this.hostNs, dev: end.iface.hostPort };
  }

  async setCarrier(lab: LabRecord, ends: readonly LinkEnd[], state: CarrierState): Promise<void> {
    // The host end down is a pulled cable: the node's end loses carrier (NO-CARRIER).
    this.follow.setDesired(
      ends.map((e) => e.iface.hostPort),
      state,
    );
    // An end whose link peer is down stays down (peer_down) until the peer comes back.
    const names = ends.map((e) => e.iface.hostPort).filter((h) => state === "down" || this.follow.wantUp(h));
    // The follower's batch for these ends (if any) lands first: a late one would undo this call.
    await this.follow.idle();
    await setLinkUp(names, state === "up", this.hostNs);
    // A cable plugged back in answers once the switch sees the ports up (it forwards then) and
    // the nodes' ends transmit again (Docker's nodes have no namespace on record: not waited for).
    if (state === "up") {
      const inNodes = ends.filter((e) => e.node.netns !== undefined && names.includes(e.iface.hostPort));
      // Peers held down for these ends come back once the switch sees these up: waited for too.
      const held = new Set(this.follow.heldPeers(names));
      const [, mine] = await Promise.all([
        this.untilLinkUp(names),
        untilCarrier(
          inNodes.map((e) => ({ dev: e.iface.name, netns: e.node.netns })),
          CARRIER_WAIT_MS,
        ),
      ]);
      const late = [...mine];
      if (held.size > 0) {
        await this.follow.idle();
        const peers = Object.values(lab.nodes).flatMap((node) =>
          Object.values(node.interfaces)
            .filter((iface) => held.has(iface.hostPort) && node.netns !== undefined)
            .map((iface) => ({ dev: iface.name, netns: node.netns })),
        );
        const [, theirs] = await Promise.all([
          this.untilLinkUp([...held]),
          untilCarrier(peers, CARRIER_WAIT_MS),
        ]);
        late.push(...theirs);
      }
      if (late.length > 0)
        this.logger.warn({ interfaces: late }, "carrier up: node interfaces not ready yet");
    }
  }

  /** Waits (on the monitor, no polling) until ovs-vswitchd reports these ports' links up. */
  private untilLinkUp(names: readonly string[], timeoutMs = CARRIER_WAIT_MS): Promise<void> {
    const up = () => names.every((n) => this.client.interfaceByName(n)?.link_state === "up");
    if (up()) return Promise.resolve();
    return new Promise((resolve) => {
      const onChange = () => {
        if (up()) done();
      };
      const done = () => {
        clearTimeout(timer);
        this.client.off("change", onChange);
        resolve();
      };
      const timer = setTimeout(() => {
        this.logger.warn(
          { ports: names, timeoutMs },
          "carrier up: the switch has not reported the links up yet",
        );
        done();
      }, timeoutMs);
      this.client.on("change", onChange);
    });
  }

  async teardown(lab: LabRecord): Promise<void> {
    const hostPorts = Object.values(lab.nodes).flatMap((n) =>
      Object.values(n.interfaces).map((i) => i.hostPort),
    );
    this.follow.forget(hostPorts);
    // Docker's interfaces stay: an impairment of theirs goes below; the lab's own die with their veths.
    const shapedStaying = hostPorts.filter(
      (h) => this.shaped.has(h) && this.port(h) && portKind(this.port(h)!.external_ids) === "plugin",
    );
    for (const h of hostPorts) this.shaped.delete(h);
    const mine = this.client
      .ports()
      .filter((p) => p.external_ids[OWNER.lab] === lab.lab && portKind(p.external_ids) === "node");
    // Ports and kernel devices go at the same time, and it answers once the removal is committed
    // (ovs-vswitchd closing hundreds of ports takes seconds; provisioning waits for that).
    await Promise.all([
      this.removeOnCommit(mine),
      // One call removes every host veth of the lab (and their peers in the nodes).
      deleteGroup(lab.group, { netns: this.hostNs }),
    ]);
    // Plugin nodes belong to Docker: they are only separated from the lab's links.
    const plugin = this.client
      .ports()
      .filter(
        (p) =>
          p.external_ids[OWNER.lab] === lab.lab &&
          portKind(p.external_ids) === "plugin" &&
          p.external_ids[OWNER.link],
      );
    await this.transact(plugin.map(isolateAgain));
    await this.shape(shapedStaying.map((dev) => ({ dev, shape: undefined, mtu: 0, what: "" })));
  }

  observe(iface: InterfaceRecord): PortObservation {
    const p = this.client?.portByName(iface.hostPort);
    const stats = p ? this.client.interfaceByName(iface.hostPort)?.statistics : undefined;
    return {
      present: p !== undefined,
      vlan: p?.tag ?? null,
      link: p?.external_ids[OWNER.link] ?? null,
      operState: this.follow?.operState(iface.hostPort),
      ...(stats ? { counters: nodeSide(stats) } : {}),
    };
  }

  status(): Promise<SwitchStatusView> {
    return Promise.resolve(switchStatus(this.client, this.config.bridge, this.datapath));
  }

  /**
   * Callers hold one of the agent's locks (src/plugin does): a reconcile or cleanup pass
   * (exclusive) rebuilds the VLAN allocator from OVSDB and would forget the isolated VLANs taken
   * here before their ports are committed, handing them out again.
   */
  private async createDetached(eps: readonly DetachedEndpoint[]): Promise<void> {
    if (eps.length === 0) return;
    const isolated = this.vlans.allocateMany("isolated", eps.length); // all or none
    try {
      await createVethsInHost(
        eps.map((ep) => ({ host: ep.hostPort, peer: ep.peerName, mtu: ep.mtu, alias: ep.alias })),
        { netns: this.hostNs },
      );
      // Container start may wait on this: the offload change and the ports go in parallel, and
      // the ports need not be applied by ovs-vswitchd yet (linking them waits for that).
      const offload =
        this.datapath === "netdev"
          ? disableTxOffload(eps.map((ep) => ({ dev: ep.peerName, netns: undefined })))
          : undefined;
      const now = String(Date.now());
      const ports = this.transact(
        addPorts(
          this.bridge().uuid,
          eps.map((ep, k) => ({
            name: ep.hostPort,
            tag: isolated[k]!,
            externalIds: {
              alias: ep.alias,
              ...dockerOwnerIds(ep.owner),
              [OWNER.kind]: "plugin",
              [OWNER.lab]: ep.lab,
              [OWNER.isolated]: String(isolated[k]),
              [OWNER.created]: now,
            },
          })),
        ),
        { waitApplied: false },
      );
      const [o, p] = await Promise.allSettled([offload, ports]);
      if (p.status === "rejected") throw p.reason;
      if (o.status === "rejected") {
        await this.takeOffBridge(eps.map((ep) => this.port(ep.hostPort)));
        throw o.reason;
      }
    } catch (e) {
      for (const v of isolated) this.vlans.release(v);
      await deleteLinks(
        eps.map((ep) => ep.hostPort),
        { ignoreMissing: true, netns: this.hostNs },
      ).catch(() => undefined);
      throw e;
    }
  }

  private async removeDetached(hostPorts: readonly string[]): Promise<void> {
    if (hostPorts.length === 0) return;
    await this.removePortRows(hostPorts.map((h) => this.port(h)));
    await deleteLinks(hostPorts, { ignoreMissing: true, netns: this.hostNs });
  }

  /**
   * Sets external_ids of a plugin port (its endpoint when a spare is claimed, its container
   * after Join); false when the port is not on the bridge. `wait: false` answers on commit.
   * Only these keys are written, in place (a mutation, not the cached map): the tag and the
   * other marks stay whatever a concurrent retag made them.
   */
  private async markPort(
    hostPort: string,
    owner: DockerPortOwner,
    opts: { wait?: boolean } = {},
  ): Promise<boolean> {
    const p = this.port(hostPort);
    if (!p) return false;
    const marks = dockerOwnerIds(owner);
    const ids = [mapDeleteKeys("external_ids", Object.keys(marks)), mapInsert("external_ids", marks)];
    await this.transact([mutate("Port", [eqUuid(p.uuid)], ids)], { waitApplied: opts.wait ?? true });
    return true;
  }

  private async audit(ctx: CleanupContext): Promise<Orphan[]> {
    const links = await listLinks(this.hostNs);
    return auditOrphans(this.client, this.config.bridge, ctx, {
      links,
      pluginPeersHere: this.hostNs === undefined,
      firstSeen: this.strayVeths,
      now: Date.now(),
    });
  }

  /** All port removals of one pass in one transaction, then the kernel devices in one batch. */
  private async removeOrphans(orphans: readonly Orphan[]): Promise<void> {
    const { ops, kernel, ports } = removeOrphanOps(this.client, this.config.bridge, orphans);
    await this.transact(ops);
    if (ports.length > 0) this.vlans.rebuild(this.vlansInUse());
    if (kernel.length > 0) await deleteDevices(kernel, this.hostNs);
    for (const name of kernel) this.strayVeths.delete(name);
  }

  /**
   * Makes OVS and the kernel match the desired state: the bridge and its settings, a veth and a
   * port for every interface, the right tag on each port, links wired, carrier as declared,
   * overlay ports present. Each repair is reported as a line; each lab is repaired on its own.
   */
  async reconcile(labs: readonly LabRecord[], overlays: readonly OverlayRecord[]): Promise<ReconcileReport> {
    const repairs: string[] = [];
    const failed = new Map<string, Error>();
    const bridgeOps = ensureBridgeOps(
      this.config.bridge,
      this.datapath,
      this.client.bridgeByName(this.config.bridge),
    );
    if (bridgeOps.length > 0) {
      await this.transact(bridgeOps);
      repairs.push(`bridge ${this.config.bridge} created or corrected`);
    }
    this.vlans.rebuild(this.vlansInUse());
    const kernel = new Map((await listLinks(this.hostNs)).map((l) => [l.name, l]));
    for (const lab of labs) {
      for (const node of Object.values(lab.nodes)) {
        for (const i of Object.values(node.interfaces)) this.follow.setDesired([i.hostPort], i.carrier);
      }
    }
    // Before the carrier repairs below: a hold a previous agent made is one, not a wrong state.
    this.follow.start();

    for (const lab of labs) {
      try {
        await this.reconcileLab(lab, kernel, repairs);
      } catch (e) {
        failed.set(lab.lab, e instanceof Error ? e : new Error(String(e)));
      }
    }
    await this.reconcileImpairments(
      labs.filter((l) => !failed.has(l.lab)),
      repairs,
      failed,
    );
    repairs.push(...(await this.tunnels.reconcile(overlays, (o) => this.endOf(labs, o))));
    if (repairs.length > 0) this.logger.info({ repairs }, "reconciled");
    return { repairs, failed };
  }

  private async reconcileLab(
    lab: LabRecord,
    kernel: ReadonlyMap<string, { up: boolean }>,
    repairs: string[],
  ): Promise<void> {
    const ends: LinkEnd[] = [];
    for (const node of Object.values(lab.nodes)) {
      for (const iface of Object.values(node.interfaces)) ends.push({ node, iface });
    }
    // Veths that vanished are created again where their node still exists, as the namespace it
    // was made in (Docker's own endpoints are the plugin's to re-create).
    const lost = ends.filter((e) => e.node.origin === "api" && !kernel.has(e.iface.hostPort));
    const recreate = lost.filter((e) => e.node.netns && !netnsLost(e.node.netns, e.node.netnsId));
    await this.removePortRows(recreate.map((e) => this.port(e.iface.hostPort)));
    if (recreate.length > 0) {
      await this.provision(lab, recreate);
      repairs.push(...recreate.map((e) => `lab ${lab.lab}: ${e.node.name}:${e.iface.name} re-created`));
    }
    // Ports missing from the bridge (the bridge was deleted, or the port removed by hand).
    const unported = ends.filter((e) => kernel.has(e.iface.hostPort) && !this.port(e.iface.hostPort));
    if (unported.length > 0) {
      const isolated = this.vlans.allocateMany("isolated", unported.length);
      await this.transact(
        addPorts(
          this.bridge().uuid,
          unported.map((e, i) => nodePort(lab, e, isolated[i]!)),
        ),
      );
      repairs.push(...unported.map((e) => `lab ${lab.lab}: port ${e.iface.hostPort} re-added`));
    }
    repairs.push(...(await this.reconcileLinks(lab)));
    repairs.push(...(await this.reconcileCarrier(lab, ends, kernel)));
  }

  /**
   * The host ends' qdiscs as the links' impairments say: what differs (a veth made again, a
   * qdisc changed or removed by hand) is set again, a shape on a port that wants none removed.
   * One `tc` listing per pass, and only when some link is impaired or was (or on the first pass).
   */
  private async reconcileImpairments(
    labs: readonly LabRecord[],
    repairs: string[],
    failed: Map<string, Error>,
  ): Promise<void> {
    const wanted = labs.map((lab) => ({ lab, items: wantedShapes(lab) }));
    const any = wanted.some((w) => w.items.some((i) => !isEmptyShape(i.shape)));
    if (!any && this.shaped.size === 0 && this.qdiscsChecked) return;
    const have = await listRootQdiscs(this.hostNs);
    this.qdiscsChecked = true;
    for (const { items } of wanted) {
      for (const i of items) {
        if (have.get(i.dev)?.kind === "shape") this.shaped.add(i.dev);
        else this.shaped.delete(i.dev);
      }
    }
    for (const { lab, items } of wanted) {
      const wrong = items.filter((i) => {
        const now = have.get(i.dev);
        if (now === undefined) return false; // no such device (yet): nothing to shape
        if (isEmptyShape(i.shape)) return now.kind === "shape";
        return !sameShape(i.shape, now);
      });
      if (wrong.length === 0) continue;
      try {
        await this.shape(wrong);
        repairs.push(
          ...wrong.map((i) =>
            isEmptyShape(i.shape)
              ? `lab ${lab.lab}: stray qdisc on ${i.dev} removed`
              : `lab ${lab.lab}: impairment ${i.what} set again`,
          ),
        );
      } catch (e) {
        failed.set(lab.lab, e instanceof Error ? e : new Error(String(e)));
      }
    }
  }

  private endOf(labs: readonly LabRecord[], o: OverlayRecord): LinkEnd | undefined {
    const lab = labs.find((l) => l.lab === o.lab);
    return lab && resolveEnd(lab, { node: o.node, iface: o.interface });
  }

  /** Links whose ends exist but do not share the link's VLAN are wired again; stray links undone. */
  private async reconcileLinks(lab: LabRecord): Promise<string[]> {
    const find = (text: string) => resolveEnd(lab, storedEnd(text));
    const rewire: WiredLink[] = [];
    const expected = new Map<string, string>();
    for (const link of Object.values(lab.links)) {
      const a = find(link.a);
      const b = find(link.b);
      if (!a || !b) continue;
      expected.set(a.iface.hostPort, link.id);
      expected.set(b.iface.hostPort, link.id);
      const pa = this.port(a.iface.hostPort);
      const pb = this.port(b.iface.hostPort);
      if (!pa || !pb) continue;
      const ok =
        pa.external_ids[OWNER.link] === link.id &&
        pb.external_ids[OWNER.link] === link.id &&
        pa.tag !== undefined &&
        pa.tag === pb.tag &&
        this.vlans.inPool("local", pa.tag);
      if (!ok) rewire.push({ link, a, b });
    }
    const repairs: string[] = [];
    // Ports that think they are in a link the lab no longer has go back to isolation.
    const ops: Operation[] = [];
    for (const p of this.client.ports()) {
      if (p.external_ids[OWNER.lab] !== lab.lab || portKind(p.external_ids) === "overlay") continue;
      const isolated = Number(p.external_ids[OWNER.isolated]);
      const want = expected.get(p.name);
      const rewired = rewire.some((w) => w.a.iface.hostPort === p.name || w.b.iface.hostPort === p.name);
      if (rewired) continue;
      if (
        want === undefined &&
        !p.external_ids[OWNER.overlay] &&
        (p.external_ids[OWNER.link] || p.tag !== isolated)
      ) {
        ops.push(isolateAgain(p));
        repairs.push(`lab ${lab.lab}: port ${p.name} isolated again`);
      }
    }
    await this.transact(ops);
    if (rewire.length > 0) {
      // Free what the broken pairs held, then wire them in one transaction.
      for (const w of rewire) {
        for (const e of [w.a, w.b]) {
          const p = this.port(e.iface.hostPort);
          if (p?.tag !== undefined && this.vlans.inPool("local", p.tag) && !this.tagShared(p))
            this.vlans.release(p.tag);
        }
      }
      await this.connect(lab, rewire);
      repairs.push(...rewire.map((w) => `lab ${lab.lab}: link ${w.link.id} wired again`));
    }
    return repairs;
  }

  private tagShared(p: PortRow): boolean {
    return this.client
      .ports()
      .some(
        (o) =>
          o.uuid !== p.uuid && o.tag === p.tag && o.external_ids[OWNER.link] !== p.external_ids[OWNER.link],
      );
  }

  private async reconcileCarrier(
    lab: LabRecord,
    ends: readonly LinkEnd[],
    kernel: ReadonlyMap<string, { up: boolean }>,
  ): Promise<string[]> {
    // Up unless the API pulled the cable or the link peer is down (peer_down, not stored).
    const wantUp = (e: LinkEnd) => this.follow.wantUp(e.iface.hostPort);
    const wrong = ends.filter((e) => {
      const k = kernel.get(e.iface.hostPort);
      return k !== undefined && k.up !== wantUp(e);
    });
    const up = wrong.filter(wantUp);
    if (up.length > 0) await this.setCarrier(lab, up, "up");
    const down = wrong.filter((e) => !wantUp(e));
    if (down.length > 0)
      await setLinkUp(
        down.map((e) => e.iface.hostPort),
        false,
        this.hostNs,
      );
    return wrong.map(
      (e) =>
        `lab ${lab.lab}: carrier of ${e.node.name}:${e.iface.name} set ${wantUp(e) ? "up" : e.iface.carrier === "down" ? "down" : "down (its peer is down)"}`,
    );
  }

  /** Every VLAN a port of the bridge uses now or returns to (isolated marks), ours or not. */
  private vlansInUse(): number[] {
    const out: number[] = [];
    for (const p of this.client.ports()) {
      if (p.tag !== undefined) out.push(p.tag);
      const iso = Number(p.external_ids[OWNER.isolated]);
      if (Number.isInteger(iso) && iso > 0) out.push(iso);
    }
    return out;
  }

  /**
   * Takes these ports off the bridge in one transaction (missing rows: skipped); their VLANs stay
   * allocated (a failed provisioning releases its own).
   */
  private async takeOffBridge(
    found: readonly (PortRow | undefined)[],
    opts: TransactOptions = {},
  ): Promise<PortRow[]> {
    const rows = found.filter((p): p is PortRow => p !== undefined);
    if (rows.length === 0) return rows;
    await this.transact(
      removePorts(
        this.bridge().uuid,
        rows.map((p) => p.uuid),
      ),
      opts,
    );
    return rows;
  }

  /** Takes these ports off the bridge and frees their VLANs, answering on commit. */
  private async removeOnCommit(rows: readonly PortRow[]): Promise<void> {
    if (rows.length === 0) return;
    this.ownTxns++;
    try {
      const { applied } = await this.client.transactCommitted(
        removePorts(
          this.bridge().uuid,
          rows.map((p) => p.uuid),
        ),
        { appliedTimeoutMs: CLOSE_APPLY_MS },
      );
      applied.catch((e: unknown) =>
        this.logger.warn({ err: e, ports: rows.length }, "ovs-vswitchd has not closed removed ports"),
      );
    } finally {
      this.ownTxns--;
    }
    for (const p of rows) this.releasePortVlans(p);
  }

  /** Takes these ports off the bridge and frees their VLANs. */
  private async removePortRows(
    found: readonly (PortRow | undefined)[],
    opts: TransactOptions = {},
  ): Promise<void> {
    for (const p of await this.takeOffBridge(found, opts)) this.releasePortVlans(p);
  }

  private releasePortVlans(p: PortRow): void {
    if (p.tag !== undefined && !this.tagShared(p)) this.vlans.release(p.tag);
    const iso = Number(p.external_ids[OWNER.isolated]);
    if (Number.isInteger(iso)) this.vlans.release(iso);
  }

  private requirePort(end: LinkEnd): PortRow {
    const p = this.port(end.iface.hostPort);
    if (!p) {
      throw new AgentError(
        "INTERFACE_NOT_FOUND",
        `${end.node.name}:${end.iface.name} has no port on ${this.config.bridge}`,
        "the agent repairs missing ports within a second; retry",
      );
    }
    return p;
  }
}

/** One host port's qdisc: what the direction towards its node suffers. */
interface Shaping {
  dev: string;
  shape: QdiscShape | undefined;
  mtu: number;
  /** e.g. `a_to_b of link l1`. */
  what: string;
}

/** A link's two directions: a->b is the egress of b's host end (towards node b), b->a of a's. */
function directions(w: WiredLink, imp: WiredLink["link"]["impairment"]): [Shaping, Shaping] {
  return [
    { dev: w.b.iface.hostPort, shape: imp?.a_to_b, mtu: w.b.iface.mtu, what: `a_to_b of link ${w.link.id}` },
    { dev: w.a.iface.hostPort, shape: imp?.b_to_a, mtu: w.a.iface.mtu, what: `b_to_a of link ${w.link.id}` },
  ];
}

function isEmptyImpairment(w: WiredLink): boolean {
  return isEmptyShape(w.link.impairment?.a_to_b) && isEmptyShape(w.link.impairment?.b_to_a);
}

/** Every interface of the lab with the qdisc it should have (none unless in an impaired link). */
function wantedShapes(lab: LabRecord): Shaping[] {
  const out = new Map<string, Shaping>();
  for (const node of Object.values(lab.nodes)) {
    for (const iface of Object.values(node.interfaces)) {
      out.set(iface.hostPort, { dev: iface.hostPort, shape: undefined, mtu: iface.mtu, what: "" });
    }
  }
  for (const link of Object.values(lab.links)) {
    const end = (text: string) => {
      const [n, i] = text.split(":") as [string, string];
      const node = lab.nodes[n];
      const iface = node?.interfaces[i];
      return node && iface ? { node, iface } : undefined;
    };
    const a = end(link.a);
    const b = end(link.b);
    if (a && b) for (const d of directions({ link, a, b }, link.impairment)) out.set(d.dev, d);
  }
  return [...out.values()];
}

function shapeOf(q: RootQdisc | undefined): QdiscShape {
  return q?.kind === "shape" ? q.shape : {};
}

/** The host end's counters from the node's side: what the host end sends, the node receives. */
function nodeSide(s: Record<string, number>) {
  return {
    rx_packets: s.tx_packets ?? 0,
    tx_packets: s.rx_packets ?? 0,
    rx_bytes: s.tx_bytes ?? 0,
    tx_bytes: s.rx_bytes ?? 0,
    rx_dropped: s.tx_dropped ?? 0,
    tx_dropped: s.rx_dropped ?? 0,
    rx_errors: s.tx_errors ?? 0,
    tx_errors: s.rx_errors ?? 0,
  };
}

/** A port back in its own VLAN, out of any link. */
function isolateAgain(p: PortRow): Operation {
  const { [OWNER.link]: _gone, ...ids } = p.external_ids;
  return retag(p.uuid, Number(ids[OWNER.isolated]), ids);
}

function nodePort(lab: LabRecord, { node, iface }: LinkEnd, isolated: number): NewPort {
  return {
    name: iface.hostPort,
    tag: isolated,
    externalIds: {
      [OWNER.kind]: node.origin === "plugin" ? "plugin" : "node",
      [OWNER.lab]: lab.lab,
      [OWNER.node]: node.name,
      [OWNER.iface]: iface.name,
      [OWNER.isolated]: String(isolated),
      [OWNER.created]: String(iface.createdAt),
    },
  };
}
