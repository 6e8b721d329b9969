import { AgentError } from "../../../common/errors.js";
import type { Logger } from "../../../common/log.js";
import { type LinkEnd, resolveEnd, storedEnd, type WiredLink, wiredLinks } from "../../../model/ends.js";
import type { LabRecord, OverlayRecord } from "../../../model/records.js";
import type { FlowMod, FlowRemoved, OpenflowClient } from "../../../openflow/index.js";
import type { CacheChange } from "../../../ovsdb/index.js";
import type { CarrierControl } from "../carrier/carrier-control.js";
import { vxlanPortName } from "../overlay/vxlan-port.js";
import type { Shaper } from "../shaping/shaper.js";
import type { OvsSwitch } from "../switch/ovs-switch.js";
import type { Parking } from "../switch/parking.js";
import {
  AGENT_COOKIE_MARK,
  AGENT_COOKIE_MASK,
  deleteStrict,
  flowDiff,
  normalFlow,
  PARK_PRIORITY,
  parkFlow,
  WIRE_COOKIE,
  WIRE_PRIORITY,
  wireFlows,
} from "./flow-table.js";

/** How long a wire waits for its ports' OpenFlow numbers and for the OpenFlow connection. */
const PORTS_WAIT_MS = 10_000;

interface Wire {
  lab: string;
  id: string;
  /** Switch ports of the two ends: host ends of veths, or a VXLAN port (overlay wires). */
  a: string;
  b: string;
  /** A node's port and its overlay link's VXLAN port (carrier follow pairs those by their marks). */
  overlay?: boolean;
}

/**
 * Wire links: two flows between the ends' ports (flow-table.ts), while both ports stay in their
 * own isolating VLANs so NORMAL never joins them. A hot (dis)connect is flow changes only (no
 * OVSDB transaction, no bridge reconfiguration, no process), answered at the barrier reply and
 * once the datapath's cached flows are gone (`settled`).
 *
 * Flows live in ovs-vswitchd's memory only, so the wanted set is kept here (from the records)
 * and the switch is brought back to it, with no API call, whenever it may have lost some: a new
 * OpenFlow connection (ovs-vswitchd restarted, the bridge made again), a port with a new ofport,
 * or a removal the switch reports (`ovs-ofctl del-flows` by hand). One sync at a time; hot
 * changes wait for a sync in flight, so a sync never writes back a wire removed meanwhile.
 */
export class WireLinks implements Parking {
  /** Wanted wires, by `lab\0id`. */
  private readonly wires = new Map<string, Wire>();
  /** Host port -> the wire it is in (wanted). */
  private readonly byPort = new Map<string, Wire>();
  /** Wires the switch confirmed (barrier) with these ofports, by `lab\0id`. */
  private readonly installed = new Map<string, { a: number; b: number }>();
  private queue: Promise<unknown> = Promise.resolve();
  private syncWanted = false;
  /** Whether the agent's NORMAL flow is known to be on the switch (since the last connect or removal). */
  private normalOk = false;
  /** Ports given a drop flow by `drop()` that OVSDB does not show parked yet (shared isolation). */
  private readonly held = new Set<number>();
  private purgeWarned = false;
  private syncScheduled = false;

  constructor(
    private readonly sw: OvsSwitch,
    private readonly carrier: CarrierControl,
    private readonly shaper: Shaper,
    private readonly logger: Logger,
  ) {
    carrier.follow.setExtraPeers(() =>
      [...this.wires.values()].filter((w) => !w.overlay).map((w) => [w.a, w.b] as const),
    );
    sw.openflow.on("connected", () => {
      this.normalOk = false;
      this.scheduleSync("OpenFlow connected");
    });
    sw.openflow.on("flow-removed", (f: FlowRemoved) => this.onRemoved(f));
    sw.client.on("change", (c: CacheChange) => this.onChange(c));
  }

  /** The wire link a host port is in, once the switch has its flows (for views). */
  linkOf(hostPort: string): string | undefined {
    const w = this.byPort.get(hostPort);
    return w && this.installed.has(keyOf(w)) ? w.id : undefined;
  }

  connect(lab: LabRecord, links: readonly WiredLink[]): Promise<void> {
    return this.serial(async () => {
      const wires = links.map((l) => wireOf(lab.lab, l));
      await this.install(wires);
      this.carrier.follow.relinked(wires.flatMap((w) => [w.a, w.b]));
      await this.shaper.joined(links);
      await this.carrier.joined(links);
    });
  }

  /** An overlay link as a wire: its node's port and its VXLAN port joined by flows. */
  attachOverlay(rec: OverlayRecord, end: LinkEnd): Promise<void> {
    return this.serial(() => this.install([overlayWire(rec, end)]));
  }

  detachOverlay(rec: OverlayRecord, end: LinkEnd): Promise<void> {
    return this.serial(() => this.unwire([overlayWire(rec, end)]));
  }

  /** The lab's wires that gain a port in `making`, whose other end is open or made too. */
  gaining(lab: LabRecord, making: ReadonlySet<string>): WiredLink[] {
    return wiredLinks(lab).filter((w) => {
      const ports = [w.a.iface.hostPort, w.b.iface.hostPort];
      return (
        w.link.mode === "wire" &&
        ports.some((p) => making.has(p)) &&
        ports.every((p) => making.has(p) || this.sw.ofport(p) !== undefined)
      );
    });
  }

  /**
   * Wires of ports about to be made, at the OpenFlow numbers promised to them (`numbered`; ports
   * that exist keep theirs): the flows reach the switch while the veths are made, so `connect`
   * finds them in place. Right after opening hundreds of ports ovs-vswitchd serves OpenFlow
   * slowly (400 flows took 0.4-0.7 s there, the whole lab's wiring). Best effort: what fails
   * here, or lands on other numbers, `connect` installs.
   */
  prewire(lab: LabRecord, links: readonly WiredLink[], numbered: ReadonlyMap<string, number>): Promise<void> {
    return this.serial(async () => {
      const of = this.sw.openflow.current();
      const at = (port: string) => this.numberOf(port);
      const wires = links
        .map((l) => wireOf(lab.lab, l))
        .filter((w) => !this.conflict(w) && at(w.a) !== undefined && at(w.b) !== undefined);
      if (!of || wires.length === 0) return;
      for (const w of wires) this.want(w);
      const flows = wires.flatMap((w) => wireFlows(at(w.a)!, at(w.b)!));
      try {
        await of.apply(this.normalOk ? flows : [normalFlow(), ...flows]);
        this.normalOk = true;
        for (const w of wires) this.installed.set(keyOf(w), { a: at(w.a)!, b: at(w.b)! });
        // An end that exists may have cached flows from before; new ports have none.
        if (wires.some((w) => !numbered.has(w.a) || !numbered.has(w.b))) await this.settled();
      } catch (e) {
        for (const w of wires) this.unwant(w);
        this.logger.debug({ err: e, lab: lab.lab }, "wires: pre-wiring failed; connecting installs them");
      }
    });
  }

  /** Pre-wired wires whose ports were not made after all: their flows go, applied. */
  unprewire(lab: LabRecord, links: readonly WiredLink[]): Promise<void> {
    return this.serial(() => this.unwire(links.map((l) => wireOf(lab.lab, l))));
  }

  /** Wants these wires and installs their flows, answering once the datapath follows them. */
  private async install(wires: readonly Wire[]): Promise<void> {
    for (const w of wires) {
      const other = this.conflict(w);
      if (other)
        throw new AgentError(
          "ALREADY_LINKED",
          `port ${other.port} is in wire ${other.id} of lab ${other.lab}`,
        );
    }
    const of = await this.openflow();
    const ofports = await this.ofports(wires.flatMap((w) => [w.a, w.b]));
    const at = (w: Wire) => ({ a: ofports.get(w.a)!, b: ofports.get(w.b)! });
    // Pre-wired at the numbers the ports have: in place already. At others: those flows go.
    const inPlace = (w: Wire) => {
      const was = this.installed.get(keyOf(w));
      return was !== undefined && was.a === at(w).a && was.b === at(w).b;
    };
    const todo = wires.filter((w) => !inPlace(w));
    const stale = todo.flatMap((w) => {
      const was = this.installed.get(keyOf(w));
      return was ? [was] : [];
    });
    for (const w of wires) this.want(w);
    if (todo.length === 0 && this.normalOk) return; // pre-wired, and settled there
    try {
      const flows = [
        ...stale.flatMap(({ a, b }) => [a, b].map((p) => deleteStrict(wireMatch(p)))),
        ...todo.flatMap((w) => wireFlows(at(w).a, at(w).b)),
      ];
      await of.apply(this.normalOk ? flows : [normalFlow(), ...flows]);
      this.normalOk = true;
    } catch (e) {
      for (const w of wires) this.unwant(w);
      throw e;
    }
    for (const w of wires) this.installed.set(keyOf(w), at(w));
    await this.settled();
  }

  /** The wire another than `w` that one of its ports is in. */
  private conflict(w: Wire): (Wire & { port: string }) | undefined {
    for (const port of [w.a, w.b]) {
      const other = this.byPort.get(port);
      if (other && keyOf(other) !== keyOf(w)) return { ...other, port };
    }
    return undefined;
  }

  /**
   * The datapath's cached flows still hold the ports' old fate (dropped, or the old peer) until
   * the revalidators run; a packet sent right after the answer must take the new one.
   */
  private async settled(): Promise<void> {
    await this.sw.vswitchd.purgeDatapathFlows().catch((e: unknown) => {
      if (!this.purgeWarned)
        this.logger.warn(
          { err: e },
          "wires: could not purge the datapath's flows; a packet right after a change may take the old path",
        );
      this.purgeWarned = true;
    });
  }

  disconnect(lab: LabRecord, links: readonly WiredLink[]): Promise<void> {
    return this.serial(async () => {
      await this.unwire(links.map((l) => wireOf(lab.lab, l)));
      await this.shaper.unlinked(links);
    });
  }

  /**
   * Removes the wires of these host ports before the ports go: OVS keeps a flow whose port was
   * deleted, and a later port could be given that number.
   */
  dropPorts(hostPorts: readonly string[]): Promise<void> {
    const parked = this.sw.ofports(
      hostPorts.filter((h) => {
        const p = this.sw.port(h);
        return p !== undefined && this.sw.isParked(p);
      }),
    );
    return this.serial(async () => {
      if (parked.length > 0) {
        for (const o of parked) this.held.delete(o);
        // Not waited for, as the wires' below; what is left is a stray for the next sync.
        this.sw.openflow
          .current()
          ?.apply(parked.map((o) => deleteStrict(parkFlow(o))))
          .catch(() => undefined);
      }
      const wires = new Set(
        hostPorts.map((h) => this.byPort.get(h)).filter((w): w is Wire => w !== undefined),
      );
      await this.unwire([...wires], true).catch((e: unknown) =>
        this.logger.warn({ err: e }, "wires: flows of removed ports stay until the next reconcile"),
      );
    });
  }

  /**
   * `portsGo`: the ports are being removed too. Then the answer does not wait for the barrier
   * (ovs-vswitchd answers it only after closing the ports, seconds for a big lab; later flow
   * changes on this connection are applied after these anyway) and nothing cached needs a purge.
   */
  private async unwire(all: readonly Wire[], portsGo = false): Promise<void> {
    const wires = all.filter((w) => this.wires.has(keyOf(w)));
    const mods = wires.flatMap((w) => {
      const at = this.installed.get(keyOf(w));
      return at ? [at.a, at.b].map((p) => deleteStrict(wireMatch(p))) : [];
    });
    // Gone from the wanted set first: a sync after a failure here removes them too.
    for (const w of wires) this.unwant(w);
    if (mods.length > 0) {
      const of = await this.openflow();
      if (portsGo)
        of.apply(mods).catch((e: unknown) =>
          this.logger.warn({ err: e }, "wires: flows of removed ports stay until the next reconcile"),
        );
      else {
        await of.apply(mods);
        await this.settled();
      }
    }
    this.carrier.follow.relinked(wires.flatMap((w) => [w.a, w.b]));
  }

  drop(ofports: readonly number[]): Promise<void> {
    if (ofports.length === 0) return Promise.resolve();
    return this.serial(async () => {
      for (const p of ofports) this.held.add(p);
      await (await this.openflow()).apply(ofports.map(parkFlow));
      await this.settled();
    });
  }

  undrop(ofports: readonly number[]): Promise<void> {
    if (ofports.length === 0) return Promise.resolve();
    return this.serial(async () => {
      for (const p of ofports) this.held.delete(p);
      await (await this.openflow()).apply(ofports.map((p) => deleteStrict(parkFlow(p))));
      await this.settled();
    });
  }

  /** Drop flows wanted now: every parked port's, and those promised or held for ports in motion. */
  private parkedPorts(): Set<number> {
    const out = new Set<number>(this.sw.pendingOfports());
    for (const h of this.held) out.add(h);
    if (this.sw.parking === undefined) return out;
    for (const p of this.sw.client.ports()) {
      if (!this.sw.isParked(p)) continue;
      const ofport = this.sw.ofport(p.name);
      if (ofport !== undefined) {
        out.add(ofport);
        this.held.delete(ofport); // covered from now on
      }
    }
    return out;
  }

  /**
   * The wanted wires from the records (every wire link whose ends exist), then the switch's flows
   * made equal to them. Returns a line per repair.
   */
  reconcile(labs: readonly LabRecord[], overlays: readonly OverlayRecord[]): Promise<string[]> {
    return this.serial(async () => {
      this.wires.clear();
      this.byPort.clear();
      const present = (w: Wire) => this.sw.port(w.a) !== undefined && this.sw.port(w.b) !== undefined;
      for (const lab of labs) {
        for (const link of Object.values(lab.links)) {
          if (link.mode !== "wire") continue;
          const a = resolveEnd(lab, storedEnd(link.a));
          const b = resolveEnd(lab, storedEnd(link.b));
          const w = a && b && wireOf(lab.lab, { link, a, b });
          if (w && present(w)) this.want(w);
        }
      }
      for (const rec of overlays) {
        const lab = labs.find((l) => l.lab === rec.lab);
        const end = lab && resolveEnd(lab, { node: rec.node, iface: rec.interface });
        const w = rec.mode === "wire" && end && overlayWire(rec, end);
        if (w && present(w)) this.want(w);
      }
      for (const k of [...this.installed.keys()]) if (!this.wires.has(k)) this.installed.delete(k);
      return this.sync();
    });
  }

  /** Brings the switch's agent flows to the wanted set; a line per change. */
  private async sync(): Promise<string[]> {
    this.syncWanted = false;
    // Not connected (the bridge just made again, ovs-vswitchd restarting): the connection's
    // "connected" brings a sync; a reconcile (holding the agent's exclusive lock) does not wait.
    const of = this.sw.openflow.current();
    if (!of) return [];
    const want: FlowMod[] = [normalFlow(), ...[...this.parkedPorts()].map(parkFlow)];
    const at = new Map<string, { a: number; b: number }>();
    for (const [k, w] of this.wires) {
      const a = this.numberOf(w.a);
      const b = this.numberOf(w.b);
      if (a === undefined || b === undefined) continue; // not opened yet
      at.set(k, { a, b });
      want.push(...wireFlows(a, b));
    }
    const have = await of.flows({ cookie: AGENT_COOKIE_MARK, cookieMask: AGENT_COOKIE_MASK });
    const { add, remove } = flowDiff(want, have);
    if (add.length + remove.length > 0) {
      await of.apply([...remove, ...add]);
      await this.settled();
    }
    this.normalOk = true;
    this.installed.clear();
    for (const [k, v] of at) this.installed.set(k, v);
    const lines = [
      ...add.map((f) => describe("installed", f)),
      ...remove.map((f) => describe("removed stray", f)),
    ];
    if (lines.length > 0) {
      this.logger.info({ repairs: lines }, "wires: switch flows repaired");
    }
    return lines;
  }

  private scheduleSync(why: string): void {
    this.syncWanted = true;
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    setImmediate(() => {
      this.syncScheduled = false;
      if (!this.syncWanted) return;
      this.serial(() => this.sync()).catch((e: unknown) => {
        this.logger.warn(
          { err: e, why },
          "wires: could not repair the switch's flows; the next reconcile retries",
        );
      });
    });
  }

  /** A removal by anyone (ourselves included): repaired when the flow is still wanted. */
  private onRemoved(f: FlowRemoved): void {
    if ((f.cookie & AGENT_COOKIE_MASK) !== AGENT_COOKIE_MARK) return;
    if (f.priority === 0) {
      this.normalOk = false;
      this.scheduleSync("NORMAL flow removed");
      return;
    }
    if (
      f.priority === PARK_PRIORITY &&
      f.match.inPort !== undefined &&
      this.parkedPorts().has(f.match.inPort)
    ) {
      this.scheduleSync(`drop flow of parked port ${f.match.inPort} removed`);
      return;
    }
    const port = f.match.inPort;
    const hit = [...this.installed].find(([, at]) => at.a === port || at.b === port);
    const w = hit && this.wires.get(hit[0]);
    if (w) this.scheduleSync(`flow of wire ${w.id} removed`);
  }

  /** A wanted wire's port with a new (or no) OpenFlow number: its flows name the old one. */
  private onChange(c: CacheChange): void {
    if (c.table !== "Interface" || this.wires.size === 0) return;
    const name = String((c.new ?? c.old)?.name ?? "");
    const w = this.byPort.get(name);
    if (!w) return;
    const at = this.installed.get(keyOf(w));
    const ofport = (c.new as { ofport?: number } | undefined)?.ofport;
    // A pre-wired port being opened has no number yet, then the promised one.
    const now = ofport !== undefined && ofport > 0 ? ofport : this.sw.promisedOfport(name);
    if (!at || now !== (w.a === name ? at.a : at.b)) this.scheduleSync(`port ${name} renumbered`);
  }

  /** A port's OpenFlow number, or the one promised to it while ovs-vswitchd opens it. */
  private numberOf(port: string): number | undefined {
    return this.sw.ofport(port) ?? this.sw.promisedOfport(port);
  }

  private want(w: Wire): void {
    this.wires.set(keyOf(w), w);
    this.byPort.set(w.a, w);
    this.byPort.set(w.b, w);
  }

  private unwant(w: Wire): void {
    const k = keyOf(w);
    this.wires.delete(k);
    this.installed.delete(k);
    for (const p of [w.a, w.b])
      if (this.byPort.get(p) && keyOf(this.byPort.get(p)!) === k) this.byPort.delete(p);
  }

  private async openflow(): Promise<OpenflowClient> {
    const of = this.sw.openflow.current() ?? (await this.sw.openflow.ready(PORTS_WAIT_MS));
    if (!of)
      throw new AgentError(
        "OPENFLOW_UNREACHABLE",
        `no OpenFlow connection to bridge ${this.sw.bridgeName} (${this.sw.openflow.target ?? "no target"})`,
        "wire links need it: set ARCHETYPE_AGENT_OPENFLOW when OVSDB is a tcp: remote, or use vlan links",
      );
    return of;
  }

  /** The ports' OpenFlow numbers, waiting on the monitor for ports ovs-vswitchd is still opening. */
  private async ofports(names: readonly string[]): Promise<Map<string, number>> {
    const open = () => names.every((n) => this.sw.ofport(n) !== undefined);
    if (!(await this.sw.client.until(open, PORTS_WAIT_MS + names.length))) {
      const missing = names.filter((n) => this.sw.ofport(n) === undefined);
      throw new AgentError(
        "INTERFACE_NOT_FOUND",
        `ports ${missing.join(", ")} have no OpenFlow number on ${this.sw.bridgeName}`,
        "the agent repairs missing ports within a second; retry",
      );
    }
    return new Map(names.map((n) => [n, this.sw.ofport(n)!]));
  }

  /** Runs `fn` after every change and sync before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function wireOf(lab: string, l: WiredLink): Wire {
  return { lab, id: l.link.id, a: l.a.iface.hostPort, b: l.b.iface.hostPort };
}

function overlayWire(rec: OverlayRecord, end: LinkEnd): Wire {
  // Overlay link ids are their own namespace beside the lab's links.
  return {
    lab: rec.lab,
    id: `overlay/${rec.link}`,
    a: end.iface.hostPort,
    b: vxlanPortName(rec.vni),
    overlay: true,
  };
}

/** What identifies a wire's flow from one port (strict deletes). */
function wireMatch(inPort: number) {
  return { cookie: WIRE_COOKIE, priority: WIRE_PRIORITY, match: { inPort } };
}

function keyOf(w: { lab: string; id: string }): string {
  return `${w.lab}\0${w.id}`;
}

function describe(what: string, f: FlowMod): string {
  const out = (f.actions ?? []).map((a) => a.output).join(",");
  return `flow ${what}: priority=${f.priority ?? 0}${f.match?.inPort === undefined ? "" : ` in_port=${f.match.inPort}`}${out ? ` output:${out}` : ""}`;
}
