import { AgentError } from "../../../common/errors.js";
import type { Logger } from "../../../common/log.js";
import type { AgentConfig } from "../../../config/config.js";
import { type NetnsRef, switchNetnsRef } from "../../../link/netns.js";
import {
  type BridgeRow,
  type CacheChange,
  type Operation,
  OvsdbClient,
  type PortRow,
  type TransactOptions,
} from "../../../ovsdb/index.js";
import { resolveDatapath } from "./bridge.js";
import { mgmtTarget, OpenflowDoor, ovsRundir } from "./openflow-door.js";
import { OWNER } from "./ownership.js";
import { OFPORT_REQUEST_MAX, OFPORT_REQUEST_MIN, type Parking } from "./parking.js";
import { addPorts, type NewPort, removePorts } from "./port-ops.js";
import { VlanAllocator } from "./vlan-allocator.js";
import { VswitchdCtl } from "./vswitchd-ctl.js";

/** How long ovs-vswitchd may take to close a lab's removed ports (hundreds on a busy host). */
const CLOSE_APPLY_MS = 60_000;
/**
 * How long ovs-vswitchd may take to apply a transaction or answer an OpenFlow request: a base,
 * and a share per port on the bridge or being added. Its userspace datapath reconfigures every
 * port on each change (about 2.5 ms a port here, far more on a busy machine), so a retag in a
 * 1000-port lab needs more than a retag in an empty one. A hang guard, not a speed target; both
 * guards are multiplied by the switch-timeout-scale setting (an emulated CPU is 10-30x slower).
 */
const APPLY_BASE_MS = 10_000;
const APPLY_PORT_MS = 20;

/**
 * The switch as every room of the OVS backend sees it: one OVSDB connection and its monitor-fed
 * cache, the one transaction door (each batch of work is one transaction that also records
 * ownership in `external_ids`, and resolves once ovs-vswitchd has applied it), the bridge and
 * port rows, the VLAN pool, and drift: changes to the agent's rows that it did not make.
 */
export class OvsSwitch {
  readonly datapath: "system" | "netdev";
  readonly vlans: VlanAllocator;
  /** Where the host ends of veths live: the namespace ovs-vswitchd opens ports in. */
  readonly hostNs: NetnsRef | undefined;
  readonly bridgeName: string;
  /** The bridge's OpenFlow connection (wires, carrier's PORT_MOD). */
  readonly openflow: OpenflowDoor;
  /** ovs-vswitchd's control socket, beside a local OVSDB socket (none for a tcp: remote). */
  readonly vswitchd: VswitchdCtl;
  /** Shared isolation's drop flows (set by the composition; undefined: a VLAN per port). */
  parking: Parking | undefined;
  private ovsdb: OvsdbClient | undefined;
  /** OpenFlow numbers asked for and not yet seen on a port. */
  private readonly requested = new Set<number>();
  /** Those of them asked for parked ports (their drop flows are wanted before the ports). */
  private readonly requestedParked = new Set<number>();
  /** Numbers promised to ports by name (promiseOfports), until the port is open or gone. */
  private readonly promised = new Map<string, number>();
  private nextRequest = OFPORT_REQUEST_MIN;
  private ownTxns = 0;
  private readonly driftListeners: ((reason: string) => void)[] = [];

  constructor(
    private readonly config: AgentConfig,
    private readonly logger: Logger,
  ) {
    this.datapath = resolveDatapath(config.datapath);
    this.vlans = new VlanAllocator(config.vlan, { sharedIsolation: config.isolation === "shared" });
    this.hostNs = switchNetnsRef(config.switchNetns);
    this.bridgeName = config.bridge;
    // A barrier is answered after ovs-vswitchd's main loop handled the batch, and each of its
    // turns polls every port: a message counts as a port.
    this.openflow = new OpenflowDoor(
      config.openflow ?? mgmtTarget(config.ovsdb, config.bridge),
      logger,
      (n) => this.applyBudgetMs(n),
    );
    this.vswitchd = new VswitchdCtl(ovsRundir(config.ovsdb));
  }

  get client(): OvsdbClient {
    if (!this.ovsdb) throw new AgentError("OVS_UNREACHABLE", "the OVS backend has not started");
    return this.ovsdb;
  }

  get started(): boolean {
    return this.ovsdb !== undefined;
  }

  async connect(): Promise<void> {
    this.ovsdb = await OvsdbClient.connect({
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
    this.ovsdb.on("change", (c: CacheChange) => this.onChange(c));
    this.ovsdb.on("connected", () => this.drift("reconnected to ovsdb-server"));
  }

  async close(): Promise<void> {
    await this.openflow.close();
    await this.ovsdb?.close();
  }

  onDrift(listener: (reason: string) => void): void {
    this.driftListeners.push(listener);
  }

  drift(reason: string): void {
    for (const l of this.driftListeners) l(reason);
  }

  /** Our own transactions' updates arrive before their results; anything else is someone else. */
  private onChange(c: CacheChange): void {
    if (c.table === "Interface" && this.promised.size > 0) {
      const row = (c.new ?? c.old) as { name?: unknown; ofport?: unknown } | undefined;
      const name = String(row?.name ?? "");
      if (this.promised.has(name) && (c.kind === "delete" || Number(row?.ofport) > 0))
        this.promised.delete(name);
    }
    if (this.ownTxns > 0) return;
    if (c.table === "Bridge") {
      const name = String((c.old ?? c.new)?.name ?? "");
      if (name === this.bridgeName)
        this.drift(`bridge ${this.bridgeName} changed behind the agent's back (${c.kind})`);
    } else if (c.table === "Port") {
      const row = (c.old ?? c.new) as { external_ids?: unknown } | undefined;
      if (JSON.stringify(row?.external_ids ?? "").includes(OWNER.kind))
        this.drift(`port changed (${c.kind})`);
    }
  }

  /** Every change goes through here: one transaction, applied by ovs-vswitchd before it resolves. */
  async transact(ops: Operation[], opts: TransactOptions = {}): Promise<void> {
    if (ops.length === 0) return;
    this.ownTxns++;
    try {
      await this.client.transact(ops, {
        ...opts,
        waitApplied: opts.waitApplied ?? true,
        timeoutMs: opts.timeoutMs ?? this.applyBudgetMs(0),
      });
    } finally {
      this.ownTxns--;
    }
  }

  /** The hang guard of a change that adds `adding` ports (see APPLY_BASE_MS). */
  private applyBudgetMs(adding: number): number {
    const ports = (this.ovsdb?.portCount() ?? 0) + adding;
    return (APPLY_BASE_MS + APPLY_PORT_MS * ports) * this.config.switchTimeoutScale;
  }

  /** The hang guard of ovs-vswitchd closing removed ports (see CLOSE_APPLY_MS). */
  get closeBudgetMs(): number {
    return CLOSE_APPLY_MS * this.config.switchTimeoutScale;
  }

  bridge(): BridgeRow {
    const b = this.client.bridgeByName(this.bridgeName);
    if (!b) {
      throw new AgentError(
        "OVS_UNREACHABLE",
        `bridge ${this.bridgeName} does not exist`,
        "the agent re-creates it within a second; retry",
      );
    }
    return b;
  }

  port(name: string): PortRow | undefined {
    return this.client.portByName(name);
  }

  /** The port's OpenFlow number once ovs-vswitchd has opened it (undefined before, or on error). */
  ofport(name: string): number | undefined {
    const n = this.client.interfaceByName(name)?.ofport;
    return n !== undefined && n > 0 ? n : undefined;
  }

  /** The OpenFlow numbers of these ports that have one. */
  ofports(names: readonly string[]): number[] {
    return names.map((n) => this.ofport(n)).filter((n): n is number => n !== undefined);
  }

  /** Every VLAN a port of the bridge uses now or returns to (isolated marks), ours or not. */
  vlansInUse(): number[] {
    const out: number[] = [];
    for (const p of this.client.ports()) {
      if (p.tag !== undefined) out.push(p.tag);
      const iso = Number(p.external_ids[OWNER.isolated]);
      if (Number.isInteger(iso) && iso > 0) out.push(iso);
    }
    return out;
  }

  /** The marks of a new node or Docker port, isolated in `isolated`. */
  isolationMarks(isolated: number): Record<string, string> {
    return {
      [OWNER.isolated]: String(isolated),
      ...(isolated === this.vlans.park ? { [OWNER.parked]: "true" } : {}),
    };
  }

  /** Whether this port waits in the parking VLAN (then a drop flow keeps it apart). */
  isParked(p: PortRow): boolean {
    return p.external_ids[OWNER.parked] === "true" && p.tag === this.vlans.park;
  }

  /**
   * OpenFlow numbers no port has or was promised, for ports made now (next-fit): flows can name
   * them before the ports exist. Given back with `forgetOfports` if the ports are not made.
   */
  promiseOfports(names: readonly string[]): Map<string, number> {
    const numbers = this.ofportRequests(names.length, false);
    const out = new Map(names.map((n, i) => [n, numbers[i]!]));
    for (const [n, v] of out) this.promised.set(n, v);
    return out;
  }

  /** The number promised to a port ovs-vswitchd has not opened yet. */
  promisedOfport(name: string): number | undefined {
    return this.promised.get(name);
  }

  /** Promised numbers whose ports were not made. */
  forgetOfports(numbers: Iterable<number>): void {
    const gone = new Set(numbers);
    for (const v of gone) {
      this.requested.delete(v);
      this.requestedParked.delete(v);
    }
    for (const [n, v] of this.promised) if (gone.has(v)) this.promised.delete(n);
  }

  private ofportRequests(n: number, parked: boolean): number[] {
    const taken = new Set<number>();
    for (const i of this.client.interfaces()) if (i.ofport !== undefined) taken.add(i.ofport);
    // A promise is kept until its port shows the number (or the port was never made).
    for (const v of this.requested) if (taken.has(v)) this.forgetOfports([v]);
    for (const v of this.requested) taken.add(v);
    const out: number[] = [];
    const size = OFPORT_REQUEST_MAX - OFPORT_REQUEST_MIN + 1;
    for (let k = 0; k < size && out.length < n; k++) {
      const v = OFPORT_REQUEST_MIN + ((this.nextRequest - OFPORT_REQUEST_MIN + k) % size);
      if (!taken.has(v)) out.push(v);
    }
    if (out.length < n)
      throw new AgentError("VLAN_EXHAUSTED", `no ${n} free OpenFlow port numbers on ${this.bridgeName}`);
    for (const v of out) {
      this.requested.add(v);
      if (parked) this.requestedParked.add(v);
    }
    this.nextRequest = out[out.length - 1]! + 1;
    return out;
  }

  /** Numbers promised to ports being made: their drop flows are wanted before the ports exist. */
  pendingOfports(): ReadonlySet<number> {
    return this.requestedParked;
  }

  /**
   * Adds ports to the bridge in one transaction. Parked ones (shared isolation) get an OpenFlow
   * number (chosen here unless promised) and their drop flow first, so not one frame of theirs
   * reaches NORMAL. Numbers chosen here are given back on failure; promised ones by the promisor.
   */
  async addPortRows(ports: readonly NewPort[], opts: TransactOptions = {}): Promise<void> {
    const parking = this.parking;
    const parked = parking ? ports.filter((p) => p.externalIds[OWNER.parked] === "true") : [];
    const unnumbered = parked.filter((p) => p.ofportRequest === undefined);
    const chosen = unnumbered.length > 0 ? this.ofportRequests(unnumbered.length, true) : [];
    const asked = new Map(unnumbered.map((p, i) => [p.name, chosen[i]!]));
    const drops = parked.map((p) => p.ofportRequest ?? asked.get(p.name)!);
    for (const v of drops) this.requestedParked.add(v);
    if (parking && drops.length > 0) await parking.drop(drops);
    try {
      await this.transact(
        addPorts(
          this.bridge().uuid,
          ports.map((p) => (asked.has(p.name) ? { ...p, ofportRequest: asked.get(p.name)! } : p)),
        ),
        { ...opts, timeoutMs: opts.timeoutMs ?? this.applyBudgetMs(ports.length) },
      );
    } catch (e) {
      this.forgetOfports(chosen);
      for (const v of drops) this.requestedParked.delete(v);
      if (parking && drops.length > 0) await parking.undrop(drops).catch(() => undefined);
      throw e;
    }
  }

  /** Whether another link's port uses this port's tag (then the tag is not this port's to free). */
  tagShared(p: PortRow): boolean {
    return this.client
      .ports()
      .some(
        (o) =>
          o.uuid !== p.uuid && o.tag === p.tag && o.external_ids[OWNER.link] !== p.external_ids[OWNER.link],
      );
  }

  /**
   * Takes these ports off the bridge in one transaction (missing rows: skipped); their VLANs stay
   * allocated (a failed provisioning releases its own).
   */
  async takeOffBridge(
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

  /** Takes these ports off the bridge and frees their VLANs. */
  async removePortRows(found: readonly (PortRow | undefined)[], opts: TransactOptions = {}): Promise<void> {
    for (const p of await this.takeOffBridge(found, opts)) this.releasePortVlans(p);
  }

  /** Takes these ports off the bridge and frees their VLANs, answering on commit. */
  async removeOnCommit(rows: readonly PortRow[]): Promise<void> {
    if (rows.length === 0) return;
    this.ownTxns++;
    try {
      const { applied } = await this.client.transactCommitted(
        removePorts(
          this.bridge().uuid,
          rows.map((p) => p.uuid),
        ),
        { appliedTimeoutMs: this.closeBudgetMs },
      );
      applied.catch((e: unknown) =>
        this.logger.warn({ err: e, ports: rows.length }, "ovs-vswitchd has not closed removed ports"),
      );
    } finally {
      this.ownTxns--;
    }
    for (const p of rows) this.releasePortVlans(p);
  }

  private releasePortVlans(p: PortRow): void {
    if (p.tag !== undefined && !this.tagShared(p)) this.vlans.release(p.tag);
    const iso = Number(p.external_ids[OWNER.isolated]);
    if (Number.isInteger(iso)) this.vlans.release(iso);
  }

  /** Waits (on the monitor, no polling) until ovs-vswitchd reports these ports' links up. */
  async untilLinkUp(names: readonly string[], timeoutMs: number): Promise<void> {
    const up = await this.client.until(
      () => names.every((n) => this.client.interfaceByName(n)?.link_state === "up"),
      timeoutMs,
    );
    if (!up)
      this.logger.warn(
        { ports: names, timeoutMs },
        "carrier up: the switch has not reported the links up yet",
      );
  }
}
