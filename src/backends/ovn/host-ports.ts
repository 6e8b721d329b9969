import { toAgentError } from "../../common/errors.js";
import type { Logger } from "../../common/log.js";
import {
  createVeths,
  deleteMany,
  disableTxOffload,
  isEmptyShape,
  listLinks,
  listRootQdiscs,
  qdiscLine,
  sameShape,
  setLinkUp,
  shapeText,
  tcBatch,
} from "../../link/index.js";
import { type NetnsRef, netnsLost, parseNetnsRef } from "../../link/netns.js";
import { nodeMac } from "../../model/derived-names.js";
import type { Operation, OvsdbClient } from "../../ovsdb/index.js";
import { ifaceIdOps, type NewPort, plugOps, unplugOps } from "./br-int.js";
import { INTEGRATION_BRIDGE, PORT_MARK, shapedError } from "./marks.js";
import type { NbPort } from "./nb-model.js";

/** How soon a port that could not be made (its namespace missing, ...) is tried again. */
const RETRY_MS = 2000;
/** How long ovs-vswitchd may take to close removed ports (hundreds on a busy host). */
const CLOSE_APPLY_MS = 60_000;

/** What a pass reports applied on a port's host end (NB_MARK.shaped). */
export interface ShapedMark {
  /** The logical switch port's uuid. */
  uuid: string;
  shaped: string;
}

/** A node interface of this host, as NB declares it. */
export interface LocalPort {
  /** The logical switch port's name: the `iface-id` that binds the veth to it. */
  lsp: string;
  port: NbPort;
}

/**
 * Makes this host's part of every lab real: for each logical port NB places on this chassis, a
 * veth whose node end sits in the node's namespace and whose host end is a port of br-int with
 * `external_ids:iface-id` naming the logical port (ovn-controller then binds it). Ports of ours
 * that NB no longer places here are removed with their veths. The host end's qdisc is the shape
 * of its link's direction towards the node (tc), reported back to NB. Runs one pass at a time; a change
 * during a pass runs another after it. Nothing of other hosts is touched: they do their own.
 */
export class HostPorts {
  private running: Promise<void> | undefined;
  private again = false;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  /** Why a port could not be made, by logical port (shown in views). */
  readonly problems = new Map<string, string>();
  /** Passes finished so far; `sync` waits for one that started after it was called. */
  private passes = 0;
  private started = 0;
  private readonly waiters: { after: number; resolve: () => void }[] = [];
  /** ovs-vswitchd closing the ports a pass removed (userspace: the pass does not wait for it). */
  private closing: Promise<void> = Promise.resolve();
  /** This host's ports as declared when the last pass that went through began. */
  private madeFrom: string | undefined;
  private checkQueued = false;
  /** Host ends given a qdisc by this agent: a pass lists qdiscs while there are any, or are wanted. */
  private readonly shaped = new Set<string>();
  private qdiscsChecked = false;

  constructor(
    private readonly d: {
      ovs: OvsdbClient;
      /** The ports NB places on this host now. */
      desired: () => LocalPort[];
      hostNs: NetnsRef | undefined;
      datapath: "system" | "netdev";
      /** Writes what passes applied on host ends into NB (each port's NB_MARK.shaped). */
      report: (marks: readonly ShapedMark[]) => Promise<void>;
      logger: Logger;
    },
  ) {}

  /**
   * Schedules a pass (coalesced with one pending). It starts on the next turn of the event loop:
   * the rows of one database update arrive as a burst of change events, and a pass must read the
   * whole update, not the first row of it.
   */
  schedule(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.loop());
  }

  /**
   * NB changed: a pass only if this host's ports as declared differ from what the last pass
   * made. Most changes touch nothing here (a rewire moves ports between logical switches;
   * northd marks ports up), and a pass lists the host's links, a process each time.
   */
  declaredChanged(): void {
    if (this.closed || this.checkQueued) return;
    this.checkQueued = true;
    setImmediate(() => {
      this.checkQueued = false;
      if (this.running || declaredKey(this.d.desired()) !== this.madeFrom) this.schedule();
    });
  }

  /** Resolves once a pass that started after this call has finished. */
  sync(): Promise<void> {
    const after = this.started;
    const p = new Promise<void>((resolve) => this.waiters.push({ after: after + 1, resolve }));
    // A pass running now started before the call: another one must follow.
    if (this.running) this.again = true;
    else this.schedule();
    return p;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        this.started++;
        const pass = this.started;
        try {
          await this.pass();
        } catch (e) {
          this.madeFrom = undefined;
          this.d.logger.warn({ err: toAgentError(e).message }, "ovn: host ports pass failed; retrying");
          this.retryLater();
        }
        this.passes = pass;
        for (const w of [...this.waiters]) {
          if (w.after <= this.passes) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      } while (this.again && !this.closed);
    } finally {
      this.running = undefined;
    }
  }

  private retryLater(): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.schedule();
    }, RETRY_MS);
    this.retry.unref?.();
  }

  private async pass(): Promise<void> {
    const { ovs, hostNs } = this.d;
    if (!ovs.isConnected) return; // reconnecting: the "connected" event schedules a pass
    const bridge = ovs.bridgeByName(INTEGRATION_BRIDGE);
    const all = this.d.desired();
    this.madeFrom = declaredKey(all);
    // Docker containers' veths are their plugin's: only bound here (see bindContainers).
    const desired = all.filter((d) => d.port.origin === "api");
    const want = new Map(desired.map((d) => [d.port.hostPort, d]));
    const kernel = new Map((await listLinks(hostNs)).map((l) => [l.name, l]));
    // Our ports on br-int, by name.
    const ours = new Map(
      ovs
        .ports()
        .filter((p) => p.external_ids[PORT_MARK.kind] === PORT_MARK.kindValue)
        .map((p) => [p.name, p]),
    );
    const problems = new Map<string, string>();

    // 1. What goes: our ports NB no longer places here, or whose node or MTU changed, and the
    // ports of veths that vanished (ovs-vswitchd does not reopen a device made again by name).
    const removePorts: string[] = [];
    const removeVeths: string[] = [];
    for (const [name, p] of ours) {
      const d = want.get(name);
      if (d !== undefined && !kernel.has(name)) {
        removePorts.push(p.uuid);
        continue;
      }
      const stale =
        d === undefined ||
        p.external_ids[PORT_MARK.netns] !== d.port.netns ||
        p.external_ids[PORT_MARK.mtu] !== String(d.port.mtu);
      if (stale) {
        removePorts.push(p.uuid);
        removeVeths.push(name);
        kernel.delete(name);
      }
    }
    // Veths of ours left without a port (a pass that failed half-way) whose node changed are
    // found by their MTU: a veth of the right name and MTU is taken as it is.
    for (const d of desired) {
      const k = kernel.get(d.port.hostPort);
      if (k && !ours.has(d.port.hostPort) && k.mtu !== d.port.mtu) {
        removeVeths.push(d.port.hostPort);
        kernel.delete(d.port.hostPort);
      }
    }
    const unplug = bridge ? unplugOps(bridge.uuid, removePorts) : [];
    const veths = () =>
      // The ovn backend keeps no interface groups of its own: a fresh one is nobody's.
      removeVeths.length > 0 ? deleteMany(removeVeths, hostNs) : Promise.resolve();
    if (this.d.datapath === "system") {
      // The kernel datapath closes ports whose devices are still there quickly, but devices that
      // vanish under open ports cost it minutes (800 ports: 586 s against 23 s): ports first.
      if (unplug.length > 0) await ovs.transact(unplug, { waitApplied: true, timeoutMs: CLOSE_APPLY_MS });
      await veths();
    } else await Promise.all([this.unplugOnCommit(unplug), veths()]);

    // 2. Veths that are missing, where the node's namespace exists.
    const make: { d: LocalPort; netns: NetnsRef }[] = [];
    for (const d of desired) {
      if (kernel.has(d.port.hostPort)) continue;
      let netns: NetnsRef;
      try {
        netns = toNetnsRef(d.port.netns);
      } catch (e) {
        problems.set(d.lsp, toAgentError(e).message);
        continue;
      }
      const lost = netnsLost(netns, undefined);
      if (lost) {
        problems.set(d.lsp, `node ${d.port.node}: ${lost}`);
        continue;
      }
      make.push({ d, netns });
    }
    // ovs-vswitchd does not reopen a device made again by name before it closed the old one.
    if (make.length > 0) await this.closing;
    const made = await this.createAll(make, problems);

    // 3. br-int ports: every veth there is, with iface-id naming its logical port.
    if (!bridge) {
      for (const d of all)
        problems.set(d.lsp, `${INTEGRATION_BRIDGE} does not exist yet (ovn-controller makes it)`);
    } else {
      const present = new Set([...kernel.keys(), ...made]);
      const ops: Operation[] = [];
      const fresh: NewPort[] = [];
      for (const d of desired) {
        if (!present.has(d.port.hostPort)) continue;
        const have = ours.get(d.port.hostPort);
        const portIds = {
          [PORT_MARK.kind]: PORT_MARK.kindValue,
          [PORT_MARK.lab]: d.port.lab,
          [PORT_MARK.node]: d.port.node,
          [PORT_MARK.iface]: d.port.iface,
          [PORT_MARK.netns]: d.port.netns,
          [PORT_MARK.mtu]: String(d.port.mtu),
        };
        if (have && !removePorts.includes(have.uuid)) {
          const iface =
            have.interfaces[0] === undefined ? undefined : ovs.interfaceByUuid(have.interfaces[0]);
          if (iface && iface.external_ids["iface-id"] !== d.lsp) ops.push(...ifaceIdOps(iface.uuid, d.lsp));
          continue;
        }
        fresh.push({ name: d.port.hostPort, portIds, ifaceIds: { "iface-id": d.lsp } });
      }
      ops.push(...plugOps(bridge.uuid, fresh));
      const containers = all.filter((d) => d.port.origin === "plugin");
      ops.push(...this.bindContainers(containers, problems));
      if (ops.length > 0) await ovs.transact(ops, { waitApplied: true });
      // Carrier: a pulled cable is the host end down (the node sees NO-CARRIER).
      const wrong = all.filter((d) => {
        const k = kernel.get(d.port.hostPort);
        const up = k === undefined ? made.includes(d.port.hostPort) : k.up;
        return present.has(d.port.hostPort) && up !== (d.port.carrier === "up");
      });
      for (const state of ["up", "down"] as const) {
        const names = wrong.filter((d) => d.port.carrier === state).map((d) => d.port.hostPort);
        if (names.length > 0) await setLinkUp(names, state === "up", hostNs);
      }
      await this.shapeHostEnds(all.filter((d) => present.has(d.port.hostPort)));
    }

    this.problems.clear();
    for (const [k, v] of problems) this.problems.set(k, v);
    if (problems.size > 0) this.retryLater();
  }

  /**
   * Docker containers' interfaces of this host: their veths' host ends (made by the plugin, on
   * br-int without `iface-id` while no lab has them) get the logical port's name as `iface-id`;
   * a plugin port whose container left its lab loses it again (isolated).
   */
  private bindContainers(containers: readonly LocalPort[], problems: Map<string, string>): Operation[] {
    const { ovs } = this.d;
    const ops: Operation[] = [];
    const wanted = new Map(containers.map((d) => [d.port.hostPort, d.lsp]));
    for (const p of ovs.ports()) {
      if (p.external_ids[PORT_MARK.kind] !== PORT_MARK.pluginKind) continue;
      const iface = p.interfaces[0] === undefined ? undefined : ovs.interfaceByUuid(p.interfaces[0]);
      if (!iface) continue;
      const lsp = wanted.get(p.name);
      if (iface.external_ids["iface-id"] !== lsp) ops.push(...ifaceIdOps(iface.uuid, lsp));
    }
    for (const d of containers) {
      if (ovs.portByName(d.port.hostPort)?.external_ids[PORT_MARK.kind] !== PORT_MARK.pluginKind)
        problems.set(
          d.lsp,
          `container ${d.port.node}: its interface ${d.port.iface} (host end ${d.port.hostPort}) is not on ${INTEGRATION_BRIDGE}; the Docker plugin makes it again when the container starts`,
        );
    }
    return ops;
  }

  /**
   * Gives the host ends their qdiscs (one `tc` listing, one batch for what differs) and reports
   * each port's result to NB where it changed. Nothing runs while no port is or was shaped.
   */
  private async shapeHostEnds(present: readonly LocalPort[]): Promise<void> {
    const wanted = present.some((d) => !isEmptyShape(d.port.shape) || d.port.shaped !== "");
    if (!wanted && this.shaped.size === 0 && this.qdiscsChecked) return;
    const { hostNs } = this.d;
    const have = await listRootQdiscs(hostNs);
    this.qdiscsChecked = true;
    const wrong = present.filter((d) => {
      const now = have.get(d.port.hostPort);
      return now !== undefined && !sameShape(d.port.shape, now);
    });
    const failed = new Map<string, string>();
    const line = (d: LocalPort) => qdiscLine(d.port.hostPort, d.port.shape, d.port.mtu);
    try {
      await tcBatch(wrong.map(line), hostNs);
    } catch {
      // One by one, to tell which (tc -batch stops at the first failure).
      for (const d of wrong) {
        await tcBatch([line(d)], hostNs).catch((e: unknown) => {
          const err = toAgentError(e);
          failed.set(d.lsp, shapedError(shapeText(d.port.shape), err.code, err.message));
        });
      }
    }
    this.shaped.clear();
    const marks: ShapedMark[] = [];
    for (const d of present) {
      const mark = failed.get(d.lsp) ?? shapeText(d.port.shape);
      if (!failed.has(d.lsp) && mark !== "") this.shaped.add(d.port.hostPort);
      if (mark !== d.port.shaped) marks.push({ uuid: d.port.uuid, shaped: mark });
    }
    if (failed.size > 0)
      this.d.logger.warn({ failed: Object.fromEntries(failed) }, "ovn: impairment not applied");
    if (marks.length > 0) await this.d.report(marks);
  }

  /**
   * Takes ports off br-int (userspace), answering on commit: ovs-vswitchd closing hundreds of
   * ports takes seconds, and a lab's removal need not wait for it; `closing` holds the rest for a
   * pass that makes veths.
   */
  private async unplugOnCommit(ops: Operation[]): Promise<void> {
    if (ops.length === 0) return;
    const { applied } = await this.d.ovs.transactCommitted(ops, { appliedTimeoutMs: CLOSE_APPLY_MS });
    this.closing = applied.catch((e: unknown) =>
      this.d.logger.warn({ err: toAgentError(e).message }, "ovn: ovs-vswitchd has not closed removed ports"),
    );
  }

  /** Creates veths in one batch; when the batch fails, one by one, recording who failed. */
  private async createAll(
    make: readonly { d: LocalPort; netns: NetnsRef }[],
    problems: Map<string, string>,
  ): Promise<string[]> {
    if (make.length === 0) return [];
    const spec = (m: { d: LocalPort; netns: NetnsRef }) => ({
      host: m.d.port.hostPort,
      peer: m.d.port.iface,
      netns: m.netns,
      mtu: m.d.port.mtu,
      mac: nodeMac(m.d.port.lab, m.d.port.node, m.d.port.iface),
    });
    const offload = async (list: readonly { d: LocalPort; netns: NetnsRef }[]) => {
      // The userspace datapath does not fill in checksums a veth left to the hardware.
      if (this.d.datapath === "netdev")
        await disableTxOffload(list.map((m) => ({ dev: m.d.port.iface, netns: m.netns })));
    };
    try {
      await createVeths(make.map(spec), { netns: this.d.hostNs });
      await offload(make);
      return make.map((m) => m.d.port.hostPort);
    } catch (e) {
      if (make.length === 1) {
        problems.set(make[0]!.d.lsp, toAgentError(e).message);
        return [];
      }
    }
    const made: string[] = [];
    for (const m of make) {
      try {
        await createVeths([spec(m)], { netns: this.d.hostNs });
        await offload([m]);
        made.push(m.d.port.hostPort);
      } catch (e) {
        problems.set(m.d.lsp, toAgentError(e).message);
      }
    }
    return made;
  }
}

/** What a pass makes of the declared ports, as one comparable string. */
function declaredKey(desired: readonly LocalPort[]): string {
  const rows = desired.map(({ lsp, port: p }) =>
    [lsp, p.hostPort, p.netns, p.mtu, p.lab, p.node, p.iface, p.carrier, shapeText(p.shape)].join("\u0000"),
  );
  return rows.sort().join("\u0001");
}

/** The NB mark (JSON of a NetnsRef) back into a validated reference. */
export function toNetnsRef(text: string): NetnsRef {
  const v = JSON.parse(text) as { name?: unknown; path?: unknown; pid?: unknown };
  if (typeof v.name === "string") return parseNetnsRef({ netns: v.name });
  if (typeof v.path === "string") return parseNetnsRef({ netns: v.path });
  if (typeof v.pid === "number") return parseNetnsRef({ pid: v.pid });
  return parseNetnsRef({});
}
