import { existsSync } from "node:fs";
import { AgentError, isErrorCode } from "../../common/errors.js";
import type { Logger } from "../../common/log.js";
import type { AgentConfig } from "../../config/config.js";
import { netemMissing, type RootQdisc, rootQdisc } from "../../link/index.js";
import type { NetnsRef } from "../../link/netns.js";
import type { InterfaceRecord } from "../../model/records.js";
import {
  type CacheChange,
  decodeMap,
  decodeOptional,
  del,
  eqUuid,
  insert,
  MONITORED_COLUMNS,
  map,
  mapSetKey,
  mapSetKeys,
  mutate,
  type Operation,
  OvsdbClient,
  OvsdbTransactError,
  type Row,
  update,
} from "../../ovsdb/index.js";
import type {
  CaptureCapability,
  CleanupContext,
  DockerPortsCapability,
  NetworkBackend,
  Orphan,
  OrphansCapability,
  PortObservation,
  ReconcileReport,
  SwitchDbCapability,
} from "../network-backend.js";
import { OvnDockerPorts } from "./docker-ports.js";
import { HostLiveness } from "./host-liveness.js";
import { HostPorts, type LocalPort, type ShapedMark } from "./host-ports.js";
import {
  dockerSwitchName,
  INTEGRATION_BRIDGE,
  isLabPort,
  NB_MARK,
  OVS_CONFIGURED_MARK,
  OWNER_VALUE,
  PORT_MARK,
  parseShapedError,
} from "./marks.js";
import { type NbPort, type NbState, readNb } from "./nb-model.js";
import { findNbOrphans, removeOrphanOps } from "./nb-orphans.js";
import { type DesiredLab, deleteLabOps, type NbPlan, planLab } from "./nb-plan.js";

/** How long a change waits for the hypervisors it touches before it answers anyway. */
const APPLY_TIMEOUT_MS = 10_000;

const NB_MONITOR = {
  NB_Global: ["nb_cfg", "sb_cfg", "hv_cfg"],
  Logical_Switch: ["name", "ports", "external_ids", "other_config"],
  Logical_Switch_Port: ["name", "addresses", "enabled", "up", "external_ids"],
} as const;

const SB_MONITOR = {
  SB_Global: ["nb_cfg"],
  Chassis: ["name", "hostname"],
  Chassis_Private: ["name", "chassis", "nb_cfg"],
  Port_Binding: ["logical_port", "chassis", "up"],
} as const;

/** Where a logical port is bound, per the southbound database. */
export interface Binding {
  /** The chassis that claimed the port, or null. */
  chassis: string | null;
  /** ovn-controller installed its flows (Port_Binding.up). */
  up: boolean;
}

/** What a lab change waited for; `pending` names the chassis that had not applied it in time. */
export interface Applied {
  nbCfg: number;
  pending: string[];
  /** From the transaction until all was applied (or the timeout). */
  ms: number;
  /** From the transaction until the touched chassis reported the nb_cfg (before the bindings were up). */
  chassisMs: number;
  /** Ports whose host's agent could not apply their new qdisc (tc's error, as a typed error). */
  shapeFailed: { lsp: string; error: AgentError }[];
}

type NetworkBackendFn<K extends keyof NetworkBackend> = NetworkBackend[K] extends (...a: infer A) => infer R
  ? (...a: A) => R
  : never;

function notHere(what: string): AgentError {
  return new AgentError(
    "NOT_SUPPORTED",
    `the ovn backend keeps labs in OVN's northbound database: ${what} is not one of its operations`,
    "use the lab API (PUT /labs/{lab})",
  );
}

/**
 * The OVN backend: one lab spans hosts. Labs live in OVN's northbound database (NB), written by
 * any agent in one transaction per change; every agent makes its own host's veths and binds them
 * to their logical ports on br-int (HostPorts); ovn-controller on each host does the rest (Geneve
 * tunnels, flows). Three OVSDB connections: this host's Open_vSwitch, NB and SB (bindings,
 * chassis, and each chassis' applied `nb_cfg`).
 */
export class OvnBackend implements NetworkBackend {
  readonly name = "ovn" as const;
  readonly datapath: "system" | "netdev";
  readonly hostId: string;
  ovs!: OvsdbClient;
  nb!: OvsdbClient;
  sb!: OvsdbClient;
  private hostPorts!: HostPorts;
  /** Which chassis stopped applying syncs (a host gone without leaving SB). */
  liveness!: HostLiveness;
  private readonly hostNs: NetnsRef | undefined;
  private nbCache: NbState | undefined;
  private readonly nbListeners = new Set<() => void>();

  constructor(
    private readonly config: AgentConfig,
    private readonly logger: Logger,
  ) {
    const dp = config.datapath;
    this.datapath = dp === "auto" ? (existsSync("/sys/module/openvswitch") ? "system" : "netdev") : dp;
    this.hostId = config.ovn.hostId;
    const sw = config.switchNetns;
    this.hostNs = sw === undefined ? undefined : sw.startsWith("/") ? { path: sw } : { name: sw };
    this.dockerPorts = new OvnDockerPorts({
      ovs: () => this.ovs,
      hostNs: this.hostNs,
      datapath: this.datapath,
    });
  }

  readonly unsupported = {
    overlay:
      "the ovn backend links hosts itself (Geneve, through OVN): give nodes a host in the lab body instead",
    impairment:
      "the ovn backend keeps impairments in OVN's northbound database: use the lab API (PUT /labs/{lab}/links/{id}/impairment)",
  };

  /** Why this host's kernel has no netem (undefined: it has). Each host's agent applies its own ends. */
  netemMissing(): string | undefined {
    const why = netemMissing();
    return (
      why &&
      `${why}; delay, jitter, loss, corruption, duplication and reordering need it (rate_kbit alone works, through tbf)`
    );
  }

  /** Docker plugin endpoints: veths on br-int, bound once their container is in a lab. */
  readonly dockerPorts: DockerPortsCapability;

  /** The live page's counters and port changes: this host's OVS, where its lab ports are br-int's. */
  readonly switchDb: SwitchDbCapability = {
    client: () => this.ovs,
    labOf: (ids) => (isLabPort(ids) ? ids[PORT_MARK.lab] : undefined),
  };

  /** This host's interfaces: the host end of the veth, a port of br-int (both directions cross it). */
  readonly capture: CaptureCapability = {
    point: (hostPort) =>
      isLabPort(this.ovs.portByName(hostPort)?.external_ids ?? {})
        ? { netns: this.hostNs, dev: hostPort }
        : undefined,
  };

  /**
   * Cleanup of NB: switches with the agent's marks that no lab holds (see nb-orphans.ts). NB is
   * the desired state here, so the agent's state dir (`ctx.labs`) plays no part; this host's
   * node ports follow NB by themselves (HostPorts removes what NB no longer places here). Docker
   * plugin ports on br-int whose endpoint or spare the agent does not know go with their veths.
   */
  readonly orphans: OrphansCapability = {
    audit: async (ctx: CleanupContext): Promise<Orphan[]> => [
      ...findNbOrphans((t) => this.nb.rawRows(t), ctx.graceSince).map((o) => ({
        kind: "logical_switch" as const,
        name: o.name,
        reason: o.reason,
        detail: { uuid: o.uuid, lab: o.lab },
      })),
      ...this.ovs
        .ports()
        .filter(
          (p) =>
            p.external_ids[PORT_MARK.kind] === PORT_MARK.pluginKind &&
            !ctx.pluginPorts.has(p.name) &&
            Number(p.external_ids[PORT_MARK.created] ?? 0) < ctx.graceSince,
        )
        .map((p) => ({
          kind: "plugin_endpoint" as const,
          name: p.name,
          reason: "a Docker plugin port whose endpoint and spare the agent no longer knows",
        })),
    ],
    remove: async (orphans: readonly Orphan[]): Promise<void> => {
      const plugin = orphans.filter((o) => o.kind === "plugin_endpoint").map((o) => o.name);
      await this.dockerPorts.removeDetached(plugin);
      for (const o of orphans) {
        if (o.kind !== "logical_switch" || o.detail?.uuid === undefined) continue;
        const orphan = { uuid: o.detail.uuid, name: o.name, lab: o.detail.lab ?? "", reason: o.reason };
        try {
          await this.nb.transact(removeOrphanOps(orphan));
        } catch (e) {
          // Its lab was made again meanwhile (the guard failed): it is no orphan any more.
          if (!(e instanceof OvsdbTransactError && e.errors.some((x) => x.error === "timed out"))) throw e;
          this.logger.info({ switch: o.name, err: e.message }, "ovn: not removed, no longer an orphan");
        }
      }
    },
  };

  async start(): Promise<void> {
    const unreachable = (what: string, hint: string) => (e: unknown) => {
      if (!(e instanceof AgentError) || e.code !== "OVS_UNREACHABLE") throw e;
      throw new AgentError("OVS_UNREACHABLE", `${what}: ${e.message}`, hint, { cause: e });
    };
    this.ovs = await OvsdbClient.connect({
      remote: this.config.ovsdb,
      // ovn-controller's settings are Open_vSwitch external_ids.
      monitor: { ...MONITORED_COLUMNS, Open_vSwitch: [...MONITORED_COLUMNS.Open_vSwitch, "external_ids"] },
      probeIntervalMs: this.config.ovsdbProbeMs,
      logger: this.logger,
    }).catch(unreachable("this host's Open vSwitch", "is Open vSwitch running (make run)?"));
    try {
      this.nb = await OvsdbClient.connect({
        remote: this.config.ovn.nb,
        database: "OVN_Northbound",
        monitor: NB_MONITOR,
        probeIntervalMs: this.config.ovsdbProbeMs,
        logger: this.logger,
      }).catch(
        unreachable(
          "OVN's northbound database",
          "is ovn-central running, and ARCHETYPE_AGENT_OVN_NB its address?",
        ),
      );
      this.sb = await OvsdbClient.connect({
        remote: this.config.ovn.sb,
        database: "OVN_Southbound",
        monitor: SB_MONITOR,
        probeIntervalMs: this.config.ovsdbProbeMs,
        logger: this.logger,
      }).catch(
        unreachable(
          "OVN's southbound database",
          "is ovn-central running, and ARCHETYPE_AGENT_OVN_SB its address?",
        ),
      );
      await this.configureChassis();
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.hostPorts = new HostPorts({
      ovs: this.ovs,
      desired: () => this.localPorts(),
      hostNs: this.hostNs,
      datapath: this.datapath,
      report: (marks) => this.reportShaped(marks),
      logger: this.logger,
    });
    this.liveness = new HostLiveness({
      timeoutMs: this.config.ovn.hostTimeoutS * 1000,
      bump: async () => (await this.transactNb([])).target,
      applied: () => this.appliedCfg(),
      logger: this.logger,
    });
    this.liveness.start();
    this.nb.on("change", (c: CacheChange) => this.onNbChange(c));
    this.sb.on("change", (c: CacheChange) => {
      // A host leaving or coming back is news: views show its links down meanwhile.
      const name = (c.new ?? c.old)?.name;
      if (c.table !== "Chassis" || c.kind === "modify" || typeof name !== "string") return;
      if (c.kind === "delete") this.logger.warn({ chassis: name }, "ovn: chassis gone from SB");
      else this.logger.info({ chassis: name }, "ovn: chassis registered in SB");
    });
    this.nb.on("connected", () => {
      this.nbCache = undefined;
      this.hostPorts.schedule();
    });
    this.ovs.on("connected", () => {
      // A restarted ovsdb-server may have lost ovn-controller's settings (a fresh database).
      this.configureChassis().catch((e: unknown) =>
        this.logger.warn({ err: e }, "ovn: could not write ovn-controller's settings"),
      );
      this.hostPorts.schedule();
    });
    this.ovs.on("change", (c: CacheChange) => {
      if (c.table === "Bridge" && (c.new ?? c.old)?.name === INTEGRATION_BRIDGE) {
        // ovn-controller writes br-int's external_ids on every nb_cfg: only its ports matter here.
        if (c.kind !== "modify" || columnsDiffer(c.old, c.new, ["ports"])) this.hostPorts.schedule();
      } else if (c.table === "Port") {
        const ids = decodeMap((c.old ?? c.new)?.external_ids);
        if (isLabPort(ids)) this.hostPorts.schedule();
      } else if (c.table === "Interface" && c.kind === "modify" && columnsDiffer(c.old, c.new, DEVICE)) {
        // A veth deleted by hand under its port: ovs-vswitchd says so only here (its link goes
        // down); counter updates alone change none of these.
        const port = this.ovs.portByName(String(c.new?.name));
        if (port && isLabPort(port.external_ids)) this.hostPorts.schedule();
      }
    });
  }

  async stop(): Promise<void> {
    this.liveness?.stop();
    this.hostPorts?.close();
    await Promise.all([this.ovs?.close(), this.nb?.close(), this.sb?.close()]);
  }

  /**
   * ovn-controller's settings in this host's Open_vSwitch external_ids: chassis name, SB
   * remote, Geneve endpoint, br-int's datapath. Refuses a host whose OVS another OVN deployment
   * configured (a different ovn-remote and not written by this agent).
   */
  private async configureChassis(): Promise<void> {
    const row = this.ovs.rawRows("Open_vSwitch").values().next().value as Row | undefined;
    if (!row) {
      throw new AgentError(
        "OVSDB_ERROR",
        "this host's Open vSwitch database has no Open_vSwitch row",
        "initialise it (ovs-vsctl init)",
      );
    }
    const ids = decodeMap(row.external_ids);
    const remote = ids["ovn-remote"];
    if (remote !== undefined && remote !== this.config.ovn.sb && ids[OVS_CONFIGURED_MARK] === undefined) {
      throw new AgentError(
        "CONFLICT",
        `this host's Open vSwitch belongs to another OVN deployment (ovn-remote=${remote})`,
        "run the agent on a host without OVN, or point ARCHETYPE_AGENT_OVN_SB at that deployment's southbound database",
      );
    }
    const want: Record<string, string> = {
      "system-id": this.hostId,
      "ovn-remote": this.config.ovn.sb,
      "ovn-encap-type": "geneve",
      "ovn-encap-ip": this.config.ovn.encapIp ?? "",
      "ovn-bridge-datapath-type": this.datapath,
      [OVS_CONFIGURED_MARK]: "1",
    };
    if (Object.entries(want).every(([k, v]) => ids[k] === v)) return;
    await this.ovs.transact([mutate("Open_vSwitch", [], mapSetKeys("external_ids", want))]);
    this.logger.info({ chassis: this.hostId, encapIp: want["ovn-encap-ip"] }, "ovn: chassis configured");
  }

  private onNbChange(c: CacheChange): void {
    if (c.table === "NB_Global") return;
    this.nbCache = undefined;
    for (const l of this.nbListeners) l();
    // Only our own host's ports make work here; any change of our rows may move one.
    const ids = decodeMap((c.new ?? c.old)?.external_ids);
    // A lab switch deleted (by hand) takes the lab's ports here with it, whatever rows it had.
    if (
      (c.table === "Logical_Switch_Port" || c.table === "Logical_Switch") &&
      ids.archetype_owner !== undefined
    )
      this.hostPorts.declaredChanged();
  }

  /** Called after every change of NB's rows (the cache is fresh by then). */
  onNbChanged(listener: () => void): () => void {
    this.nbListeners.add(listener);
    return () => this.nbListeners.delete(listener);
  }

  /**
   * This host's Docker network slots ("LAB/IF") in its own NB row, made, updated or removed
   * (none left) when they differ from what NB has.
   */
  async writeDockerSlots(slots: readonly string[]): Promise<void> {
    const want = [...new Set(slots)].sort();
    const have = this.nbState().dockerSlots.get(this.hostId);
    if (have && JSON.stringify([...have.slots].sort()) === JSON.stringify(want)) return;
    if (!have && want.length === 0) return;
    const ids = map({
      [NB_MARK.owner]: OWNER_VALUE,
      [NB_MARK.kind]: "docker",
      [NB_MARK.host]: this.hostId,
      [NB_MARK.slots]: JSON.stringify(want),
    });
    const op =
      want.length === 0
        ? del("Logical_Switch", [eqUuid(have!.uuid)])
        : have
          ? update("Logical_Switch", [eqUuid(have.uuid)], { external_ids: ids })
          : insert("Logical_Switch", { name: dockerSwitchName(this.hostId), external_ids: ids });
    await this.nb.transact([op]);
  }

  /** The labs as NB holds them (cached until NB changes). */
  nbState(): NbState {
    this.nbCache ??= readNb((t) => this.nb.rawRows(t));
    return this.nbCache;
  }

  private localPorts(): LocalPort[] {
    const out: LocalPort[] = [];
    for (const lab of this.nbState().labs.values()) {
      for (const port of lab.interfaces.values()) {
        if (port.host === this.hostId) out.push({ lsp: port.name, port });
      }
    }
    return out;
  }

  /**
   * Chassis registered in SB now (from the monitor's cache). A host whose chassis is missing is
   * gone (its ovn-controller stopped and its row deleted, or it never came): its ports stay in
   * NB, and views show them and their links down with that reason until it registers again.
   */
  registeredChassis(): Set<string> {
    const out = new Set<string>();
    for (const r of this.sb.rawRows("Chassis").values()) if (typeof r.name === "string") out.add(r.name);
    return out;
  }

  /** Each chassis' applied nb_cfg (SB Chassis_Private), by chassis name. */
  private appliedCfg(): Map<string, number> {
    const cfg = new Map<string, number>();
    for (const r of this.sb.rawRows("Chassis_Private").values()) {
      if (typeof r.name === "string" && typeof r.nb_cfg === "number") cfg.set(r.name, r.nb_cfg);
    }
    return cfg;
  }

  /** Chassis names known to SB, and this host (known before its ovn-controller registered). */
  knownHosts(): Set<string> {
    const out = new Set([this.hostId]);
    for (const r of this.sb.rawRows("Chassis").values()) if (typeof r.name === "string") out.add(r.name);
    return out;
  }

  binding(lsp: string): Binding {
    for (const r of this.sb.rawRows("Port_Binding").values()) {
      if (r.logical_port !== lsp) continue;
      const ch = decodeOptional(r.chassis);
      const chassis = ch === undefined ? null : String(this.sb.rawRows("Chassis").get(ch)?.name ?? "");
      return { chassis: chassis === "" ? null : chassis, up: decodeOptional<boolean>(r.up) === true };
    }
    return { chassis: null, up: false };
  }

  /** Bindings of every logical port, by name (one pass over SB's cache). */
  bindings(): Map<string, Binding> {
    const chassis = this.sb.rawRows("Chassis");
    const out = new Map<string, Binding>();
    for (const r of this.sb.rawRows("Port_Binding").values()) {
      const ch = decodeOptional(r.chassis);
      const name = ch === undefined ? undefined : chassis.get(ch)?.name;
      out.set(String(r.logical_port), {
        chassis: typeof name === "string" ? name : null,
        up: decodeOptional<boolean>(r.up) === true,
      });
    }
    return out;
  }

  /** Why this host could not make a port (its namespace is gone, ...), if it could not. */
  localProblem(lsp: string): string | undefined {
    return this.hostPorts.problems.get(lsp);
  }

  /** What this host's agent applied on its ports' host ends, into each port's NB_MARK.shaped. */
  private async reportShaped(marks: readonly ShapedMark[]): Promise<void> {
    await this.nb.transact(
      marks.map((m) =>
        mutate(
          "Logical_Switch_Port",
          [eqUuid(m.uuid)],
          mapSetKey("external_ids", NB_MARK.shaped, m.shaped === "" ? undefined : m.shaped),
        ),
      ),
    );
  }

  /** What a host end of this host has as its root qdisc now (a process, not a cache). */
  localQdisc(hostPort: string): Promise<RootQdisc> {
    return rootQdisc(hostPort, this.hostNs);
  }

  /** Whether this host's veth for the port is on br-int. */
  localPresent(hostPort: string): boolean {
    const p = this.ovs.portByName(hostPort);
    return p !== undefined && isLabPort(p.external_ids);
  }

  /** Makes this host's ports match NB now; resolves once a pass after the call is done. */
  syncHost(): Promise<void> {
    return this.hostPorts.sync();
  }

  /**
   * Writes a lab to NB in one transaction and answers once it is applied: this host's ports
   * made, and every chassis the change touches reported the new `nb_cfg` applied (SB
   * Chassis_Private.nb_cfg, seen through the monitor) with the moved ports bound and up.
   */
  async applyLab(want: DesiredLab): Promise<Applied> {
    const plan = planLab(this.nbState(), want, this.hostId, Date.now());
    return this.commit(plan);
  }

  async deleteLab(lab: string): Promise<Applied> {
    const cur = this.nbState().labs.get(lab);
    if (!cur) return { nbCfg: 0, pending: [], ms: 0, chassisMs: 0, shapeFailed: [] };
    // Once NB has lost the lab and this host's veths are gone, nothing of it carries traffic
    // anywhere: the other hosts' agents remove theirs on the same change. Waiting for every
    // chassis to unprogram it too took 8.5 s for 300 links on three hosts, and promised nothing more.
    return this.commit(deleteLabOps(cur), { chassis: false });
  }

  /** `chassis: false`: answer without waiting for the chassis (their `pending` is who had not). */
  private async commit(plan: NbPlan, opts: { chassis?: boolean } = {}): Promise<Applied> {
    if (plan.ops.length === 0) return { nbCfg: 0, pending: [], ms: 0, chassisMs: 0, shapeFailed: [] };
    const started = performance.now();
    const { target, hvApplied } = await this.transactNb(plan.ops);
    // This host's veths, when the change makes or removes some (a rewire makes none).
    const local = plan.making.has(this.hostId) ? this.hostPorts.sync() : Promise.resolve();
    if (opts.chassis === false) {
      await local;
      const pending = this.lateHosts(target, plan);
      return { nbCfg: target, pending, ms: performance.now() - started, chassisMs: 0, shapeFailed: [] };
    }
    // Qdiscs: each end's host agent reports in NB what it applied on its host end.
    const shaped =
      plan.shaping.size === 0 ? Promise.resolve([]) : this.until(this.nb, () => this.unshaped(plan.shaping));
    let pending: string[];
    let chassisAt: number | undefined;
    if (plan.moved.length > 0 && plan.hosts.size > 1) {
      // A moved port's binding is made anew: its chassis claims it after the change, so another
      // chassis' nb_cfg may predate the claim (it would not tunnel to it yet). A second nb_cfg,
      // bumped as soon as the claims are in SB, is applied only with them (SB keeps commit order)
      // and implies the first: one wait covers both.
      const claims = await this.until(this.sb, () => this.unclaimed(target, plan.moved), hvApplied);
      if (claims.length > 0) {
        pending = [...claims, ...this.lateHosts(target, plan)];
      } else {
        const second = await this.transactNb([]);
        ({ pending, chassisAt } = await this.untilApplied(second.target, plan, second.hvApplied));
      }
    } else {
      ({ pending, chassisAt } = await this.untilApplied(target, plan, hvApplied));
    }
    await local;
    const chassisMs = (chassisAt ?? performance.now()) - started;
    pending.push(...(await shaped).map((lsp) => `port ${lsp} (impairment not applied)`));
    const shapeFailed = this.shapeFailures(plan.shaping);
    const ms = performance.now() - started;
    if (pending.length > 0) {
      this.logger.warn(
        { nbCfg: target, pending, timeoutMs: APPLY_TIMEOUT_MS },
        "ovn: committed, but these chassis have not applied it yet",
      );
    }
    return { nbCfg: target, pending, ms, chassisMs, shapeFailed };
  }

  /** Ports of `shaping` whose host's agent has not reported that shape (its refusal is a report). */
  private unshaped(shaping: ReadonlyMap<string, string>): string[] {
    const known = this.knownHosts();
    const out: string[] = [];
    for (const p of this.portsNamed(shaping)) {
      const want = shaping.get(p.name);
      const refused = parseShapedError(p.shaped)?.shape === want;
      if (known.has(p.host) && p.shaped !== want && !refused) out.push(p.name);
    }
    return out;
  }

  private shapeFailures(shaping: ReadonlyMap<string, string>): Applied["shapeFailed"] {
    const out: Applied["shapeFailed"] = [];
    for (const p of this.portsNamed(shaping)) {
      const err = parseShapedError(p.shaped);
      if (!err || err.shape !== shaping.get(p.name)) continue;
      const code = isErrorCode(err.code) ? err.code : "COMMAND_FAILED";
      out.push({ lsp: p.name, error: new AgentError(code, `host ${p.host}: ${err.message}`) });
    }
    return out;
  }

  private *portsNamed(names: ReadonlyMap<string, unknown>): Generator<NbPort> {
    for (const lab of this.nbState().labs.values())
      for (const p of lab.interfaces.values()) if (names.has(p.name)) yield p;
  }

  private async transactNb(ops: Operation[]): Promise<{ target: number; hvApplied: Promise<void> }> {
    try {
      const { applied, target } = await this.nb.transactCommitted(ops, {
        appliedTimeoutMs: APPLY_TIMEOUT_MS,
      });
      applied.catch(() => undefined);
      return { target, hvApplied: applied };
    } catch (e) {
      if (e instanceof AgentError && e.code === "OVSDB_ERROR" && /wait|timed out/i.test(e.message)) {
        throw new ConcurrentLabChange(e);
      }
      throw e;
    }
  }

  /** The known chassis of the plan that have not applied `target` yet. */
  private lateHosts(target: number, plan: NbPlan): string[] {
    const cfg = this.appliedCfg();
    const known = this.knownHosts();
    return [...plan.hosts].filter((h) => known.has(h) && (cfg.get(h) ?? -1) < target);
  }

  /**
   * The moved ports not claimed yet, judged once northd has put `target` into SB (before that,
   * SB still shows their old bindings).
   */
  private unclaimed(target: number, moved: readonly string[]): string[] {
    const sbCfg = [...this.sb.rawRows("SB_Global").values()][0]?.nb_cfg;
    if (typeof sbCfg !== "number" || sbCfg < target) return moved.map((lsp) => `port ${lsp} (not in SB yet)`);
    const b = this.bindings();
    return moved.filter((lsp) => !b.get(lsp)?.chassis).map((lsp) => `port ${lsp} (not claimed)`);
  }

  /**
   * Resolves with the chassis (and moved ports, bound and up) that have not applied `target`
   * (empty: all did), and when the chassis had.
   */
  private async untilApplied(
    target: number,
    plan: NbPlan,
    hvApplied: Promise<void>,
  ): Promise<{ pending: string[]; chassisAt: number | undefined }> {
    let chassisAt: number | undefined;
    const pending = await this.until(
      this.sb,
      () => {
        const late = this.lateHosts(target, plan);
        if (late.length === 0) chassisAt ??= performance.now();
        const b = this.bindings();
        for (const lsp of plan.moved) if (!b.get(lsp)?.up) late.push(`port ${lsp}`);
        return late;
      },
      hvApplied,
    );
    return { pending, chassisAt };
  }

  /**
   * Resolves with what `missing` still names once it names nothing, or at the timeout.
   * Event-driven on the database's monitor; while it is disconnected, `fallback` (SB: NB's
   * hv_cfg, every chassis) stands in.
   */
  private until(db: OvsdbClient, missing: () => string[], fallback?: Promise<void>): Promise<string[]> {
    if (missing().length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const check = () => {
        if (missing().length === 0) done([]);
      };
      const done = (late: string[]) => {
        clearTimeout(timer);
        db.off("change", check);
        resolve(late);
      };
      const timer = setTimeout(() => done(missing()), APPLY_TIMEOUT_MS);
      db.on("change", check);
      if (!db.isConnected)
        fallback?.then(
          () => done([]),
          () => undefined,
        );
    });
  }

  // ---- NetworkBackend: what the generic lab service would call (it is not used with ovn) ----

  provision: NetworkBackendFn<"provision"> = () => Promise.reject(notHere("provision"));
  release: NetworkBackendFn<"release"> = () => Promise.reject(notHere("release"));
  connect: NetworkBackendFn<"connect"> = () => Promise.reject(notHere("connect"));
  disconnect: NetworkBackendFn<"disconnect"> = () => Promise.reject(notHere("disconnect"));
  setCarrier: NetworkBackendFn<"setCarrier"> = () => Promise.reject(notHere("carrier"));
  teardown: NetworkBackendFn<"teardown"> = () => Promise.reject(notHere("teardown"));

  /** Whether an interface's host end is on br-int (the Docker plugin asks it of its spares). */
  observe(iface: InterfaceRecord): PortObservation {
    return { present: this.localPresent(iface.hostPort), vlan: null, link: null };
  }

  /** The agent's reconcile: this host's ports made to match NB. */
  async reconcile(): Promise<ReconcileReport> {
    await this.hostPorts.sync();
    return { repairs: [], failed: new Map() };
  }

  onDrift(): void {
    // HostPorts follows NB and OVS itself.
  }

  status: NetworkBackendFn<"status"> = async () => {
    const bridge = this.ovs.bridgeByName(INTEGRATION_BRIDGE);
    const ports = this.ovs
      .ports()
      .filter((p) => isLabPort(p.external_ids))
      .map((p) => {
        const iface = p.interfaces[0] === undefined ? undefined : this.ovs.interfaceByUuid(p.interfaces[0]);
        const st = iface?.statistics ?? {};
        return {
          name: p.name,
          vlan: null,
          lab: p.external_ids[PORT_MARK.lab] ?? null,
          node: p.external_ids[PORT_MARK.node] ?? null,
          interface: p.external_ids[PORT_MARK.iface] ?? null,
          link: null,
          ofport: iface?.ofport ?? null,
          link_state: iface?.link_state ?? null,
          type: iface?.type ?? "",
          rx_packets: st.rx_packets ?? 0,
          tx_packets: st.tx_packets ?? 0,
          rx_bytes: st.rx_bytes ?? 0,
          tx_bytes: st.tx_bytes ?? 0,
        };
      });
    return {
      backend: "ovn",
      bridge: bridge ? INTEGRATION_BRIDGE : null,
      fail_mode: bridge?.fail_mode ?? null,
      datapath: this.datapath,
      connected: this.ovs.isConnected && this.nb.isConnected && this.sb.isConnected,
      ports,
    };
  };
}

/** Another agent wrote the lab between this agent's read and its transaction (the generation guard). */
export class ConcurrentLabChange extends AgentError {
  constructor(cause: unknown) {
    super(
      "CONFLICT",
      "the lab was changed by another request meanwhile (another agent?)",
      "retry: the lab is as that change left it",
      { cause },
    );
  }
}

/** The Interface columns that change when its device is opened or lost. */
const DEVICE = ["ofport", "error", "link_state"] as const;

/** Whether any of these columns differs between two versions of a row. */
function columnsDiffer(old: Row | undefined, now: Row | undefined, columns: readonly string[]): boolean {
  return columns.some((c) => JSON.stringify(old?.[c]) !== JSON.stringify(now?.[c]));
}
