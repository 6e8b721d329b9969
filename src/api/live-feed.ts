/**
 * What the live page (/ui) is told, as one stream: lab changes, per-port counter samples with
 * rates, and the switch's connection. Fed by the agent's own caches (the OVSDB monitor's
 * "change" events) and by the API's successful writes; nothing here polls a link.
 */
import { EventEmitter } from "node:events";
import type { SwitchDbCapability } from "../backends/network-backend.js";
import type { CacheChange } from "../ovsdb/cache.js";
import type { OvsdbClient } from "../ovsdb/client.js";
import { decodeInterface, decodePort, type InterfaceRow } from "../ovsdb/models.js";
import type { AgentServices } from "../services.js";

/** One port's counters at a sample, with rates since its previous sample (bits/s, packets/s). */
export interface PortSample {
  port: string;
  lab: string | null;
  link_state: string | null;
  admin_state: string | null;
  rx_bytes: number;
  tx_bytes: number;
  rx_packets: number;
  tx_packets: number;
  rx_bps: number;
  tx_bps: number;
  rx_pps: number;
  tx_pps: number;
}

export type FeedEvent =
  /** Something of this lab changed (its view should be fetched again); lab null: the lab list. */
  | { type: "lab"; data: { lab: string; reason: string } }
  /** Counter samples, all ports that changed in one OVSDB update (at most one per port). */
  | { type: "ports"; data: { t: number; ports: PortSample[] } }
  /** The switch connection came or went (fetch /ovs/status and /overlay/status again). */
  | { type: "switch"; data: { connected: boolean } };

/** Ports' lab changes are gathered for this long, so a 500-link PUT is a few events, not 2000. */
const LAB_COALESCE_MS = 30;

type Rates = Pick<PortSample, "rx_bps" | "tx_bps" | "rx_pps" | "tx_pps">;
const IDLE: Rates = { rx_bps: 0, tx_bps: 0, rx_pps: 0, tx_pps: 0 };

/** A port's counters when they last changed, and the rates computed then. */
interface Last {
  t: number;
  stats: Record<string, number>;
  rates: Rates;
}

export class LiveFeed extends EventEmitter {
  /** The backend's switch database (none: the feed has only the API's lab changes). */
  private db: SwitchDbCapability | undefined;
  private client: OvsdbClient | undefined;
  private readonly last = new Map<string, Last>();
  private pendingPorts = new Map<string, InterfaceRow>();
  private pendingLabs = new Map<string, string>();
  /** Ports whose last rate was not zero, and whether the pending changes include statistics. */
  private moving = new Set<string>();
  private statsUpdate = false;
  private portsFlush: NodeJS.Immediate | undefined;
  private labsFlush: NodeJS.Timeout | undefined;
  private readonly onChange = (c: CacheChange) => this.change(c);
  private readonly onConnected = () => this.publish({ type: "switch", data: { connected: true } });
  private readonly onDisconnected = () => this.publish({ type: "switch", data: { connected: false } });

  constructor(private readonly services: AgentServices) {
    super();
    this.setMaxListeners(0);
  }

  /** Adds a subscriber; the OVSDB monitor is listened to only while someone is. */
  subscribe(listener: (e: FeedEvent) => void): () => void {
    this.on("event", listener);
    if (this.listenerCount("event") === 1) this.attach();
    return () => {
      this.off("event", listener);
      if (this.listenerCount("event") === 0) this.detach();
    };
  }

  /** A lab changed through the API (called after a successful write). */
  labChanged(lab: string, reason: string): void {
    this.pendingLabs.set(lab, reason);
    this.labsFlush ??= setTimeout(() => this.flushLabs(), LAB_COALESCE_MS);
  }

  /** The latest sample of every port seen so far (sent to a new subscriber first). */
  snapshot(): PortSample[] {
    const out: PortSample[] = [];
    for (const i of this.client?.interfaces() ?? []) {
      out.push(this.sample(i, false, true));
    }
    return out;
  }

  close(): void {
    this.detach();
    this.removeAllListeners();
  }

  private publish(e: FeedEvent): void {
    this.emit("event", e);
  }

  private attach(): void {
    this.db = this.services.backend.switchDb;
    this.client = this.db?.client();
    this.client?.on("change", this.onChange);
    this.client?.on("connected", this.onConnected);
    this.client?.on("disconnected", this.onDisconnected);
  }

  private detach(): void {
    this.client?.off("change", this.onChange);
    this.client?.off("connected", this.onConnected);
    this.client?.off("disconnected", this.onDisconnected);
    this.client = undefined;
    if (this.portsFlush) clearImmediate(this.portsFlush);
    if (this.labsFlush) clearTimeout(this.labsFlush);
    this.portsFlush = undefined;
    this.labsFlush = undefined;
    this.pendingPorts.clear();
    this.pendingLabs.clear();
  }

  private labOf(port: string): string | undefined {
    const p = this.client?.portByName(port);
    return p ? this.db?.labOf(p.external_ids) : undefined;
  }

  private change(c: CacheChange): void {
    if (c.table === "Port") {
      const labs = new Set(
        [c.old, c.new].map((r) => (r ? this.db?.labOf(decodePort(r).external_ids) : undefined)),
      );
      const name = String((c.new ?? c.old)?.name);
      for (const lab of labs) if (lab) this.labChanged(lab, `port ${name} ${c.kind}`);
      return;
    }
    if (c.table !== "Interface") return;
    if (!c.new) {
      if (c.old) this.last.delete(String(c.old.name));
      return;
    }
    const row = decodeInterface(c.new);
    const before = c.old ? decodeInterface(c.old) : undefined;
    if (before?.link_state !== row.link_state || before?.admin_state !== row.admin_state) {
      const lab = this.labOf(row.name);
      if (lab) this.labChanged(lab, `port ${row.name} ${row.link_state ?? "?"}`);
    }
    if (!sameStats(before?.statistics, row.statistics)) this.statsUpdate = true;
    this.pendingPorts.set(row.name, row);
    // One OVSDB update carries every port's new statistics: they are applied synchronously, so
    // flushing on the next turn sends them as one event.
    this.portsFlush ??= setImmediate(() => this.flushPorts());
  }

  private flushPorts(): void {
    this.portsFlush = undefined;
    const pending = this.pendingPorts;
    this.pendingPorts = new Map();
    const ports = [...pending.values()].map((r) => this.sample(r, true));
    // OVSDB sends only what changed: a moving port missing from a statistics update stood still.
    if (this.statsUpdate) {
      for (const name of this.moving) {
        const row = pending.has(name) ? undefined : this.client?.interfaceByName(name);
        if (row) ports.push(this.sample(row, false, true));
      }
    }
    this.statsUpdate = false;
    this.moving = new Set(ports.filter((p) => p.rx_bps + p.tx_bps > 0).map((p) => p.port));
    if (ports.length > 0) this.publish({ type: "ports", data: { t: Date.now(), ports } });
  }

  private flushLabs(): void {
    this.labsFlush = undefined;
    const labs = this.pendingLabs;
    this.pendingLabs = new Map();
    for (const [lab, reason] of labs) this.publish({ type: "lab", data: { lab, reason } });
  }

  /**
   * A port's sample. Rates are over the time since its counters last changed; with `record` the
   * counters become the base of the next rates; `idle`: it stood still (rates 0).
   */
  private sample(row: InterfaceRow, record: boolean, idle = false): PortSample {
    const s = row.statistics;
    const now = Date.now();
    const prev = this.last.get(row.name);
    const changed = prev === undefined || !sameStats(prev.stats, s);
    const dt = prev ? (now - prev.t) / 1000 : 0;
    const rate = (k: (typeof STATS)[number], mul: number) =>
      prev && dt > 0 ? Math.max(0, (((s[k] ?? 0) - (prev.stats[k] ?? 0)) * mul) / dt) : 0;
    // A change of state alone (no new counters) keeps the rates last computed.
    const rates: Rates = idle
      ? IDLE
      : !changed && prev
        ? prev.rates
        : {
            rx_bps: rate("rx_bytes", 8),
            tx_bps: rate("tx_bytes", 8),
            rx_pps: rate("rx_packets", 1),
            tx_pps: rate("tx_packets", 1),
          };
    if (record && changed) this.last.set(row.name, { t: now, stats: { ...s }, rates });
    return {
      port: row.name,
      lab: this.labOf(row.name) ?? null,
      link_state: row.link_state ?? null,
      admin_state: row.admin_state ?? null,
      rx_bytes: s.rx_bytes ?? 0,
      tx_bytes: s.tx_bytes ?? 0,
      rx_packets: s.rx_packets ?? 0,
      tx_packets: s.tx_packets ?? 0,
      ...rates,
    };
  }
}

const STATS = ["rx_bytes", "tx_bytes", "rx_packets", "tx_packets"] as const;

function sameStats(a: Record<string, number> | undefined, b: Record<string, number>): boolean {
  return a !== undefined && STATS.every((k) => (a[k] ?? 0) === (b[k] ?? 0));
}
