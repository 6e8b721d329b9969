import { randomBytes } from "node:crypto";
import type { DetachedEndpoint } from "../backends/network-backend.js";
import type { Durability } from "../common/atomic-file.js";
import { toAgentError } from "../common/errors.js";
import type { Logger } from "../common/log.js";
import type { AgentConfig } from "../config/config.js";
import { pluginPortNames } from "../model/derived-names.js";
import type { PluginNetworkRecord, SpareInterface } from "../model/records.js";
import type { StateStore } from "../state/state-store.js";
import type { PortReaper } from "./port-reaper.js";
import { ALIAS_PREFIX } from "./protocol.js";

export interface SparePoolDeps {
  config: AgentConfig;
  store: StateStore;
  logger: Logger;
  reaper: PortReaper;
  /** The MTU of a network's interfaces without `-o mtu`. */
  defaultMtu: number;
  /** Makes detached veths (the driver's batcher, under the agent's locks). */
  create(eps: DetachedEndpoint[]): Promise<void>;
}

/**
 * Refill once Docker has been quiet this long (a container start calls CreateEndpoint in a burst
 * and then needs the CPU): the driver asks sooner when Docker reports the container started.
 */
const QUIET_MS = 1000;
/**
 * A network's list of spares changes while containers start; like the veths it lists, it need
 * not outlive the machine (after a reboot recover() forgets spares whose veth is gone).
 */
const SPARE_DURABILITY: Durability = "crash";
/** At most this many spares per network, whatever the demand. */
const MAX_SPARES = 64;

/**
 * Pre-made interfaces per plugin network: ARCHETYPE_AGENT_PLUGIN_SPARES, or as many as there are
 * containers created on the lab's networks and not started yet (the demand, see setDemand).
 * Docker calls CreateEndpoint one network after the other while a container starts, and one
 * container after the other on the same network; making a veth there costs processes (ip, the
 * offload helper) on that critical path, taking a spare costs no process and no wait. Spares are
 * made in the background, all missing ones in one kernel batch and one transaction, and are
 * recorded in their network's record (cleanup treats them as owned).
 */
export class SparePool {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  /** Network id -> endpoints expected soon (containers created and not started yet). */
  private readonly expected = new Map<string, number>();
  /** Containers are being created: a quarter more is made ahead (the next ones are on their way). */
  private growing = false;

  constructor(private readonly d: SparePoolDeps) {}

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /**
   * Takes a spare of `net` (no other caller gets it), or undefined when it has none; `recorded`
   * resolves once the network's record without it is on disk.
   */
  take(net: PluginNetworkRecord): { spare: SpareInterface; recorded: Promise<void> } | undefined {
    const spare = net.spares?.[0];
    if (!spare) return undefined;
    net.spares = net.spares?.slice(1);
    const recorded = this.d.store.pluginNetworks.set(net.networkId, net, SPARE_DURABILITY);
    const left = (this.expected.get(net.networkId) ?? 0) - 1;
    if (left > 0) this.expected.set(net.networkId, left);
    else this.expected.delete(net.networkId);
    this.refillSoon();
    return { spare, recorded };
  }

  /**
   * After a restart: forgets spares whose host end is gone, removes those beyond the configured
   * count (the setting may have been lowered), then refills.
   */
  async recover(present: ReadonlySet<string>): Promise<void> {
    for (const net of this.d.store.pluginNetworks.values()) {
      const spares = net.spares ?? [];
      const kept = spares.filter((s) => present.has(s.hostPort)).slice(0, this.d.config.pluginSpares);
      if (kept.length === spares.length) continue;
      this.d.reaper.add(spares.filter((s) => !kept.includes(s)).map((s) => s.hostPort));
      net.spares = kept;
      await this.d.store.pluginNetworks.set(net.networkId, net, SPARE_DURABILITY);
    }
    this.refillSoon();
  }

  /**
   * Containers created on each network and not started yet (by network id): every network of a
   * lab expects the most any of them has (a lab's containers have all its interface slots, and
   * a container connected after its creation may not be counted yet), plus a quarter while
   * containers are being created (the next ones are usually on their way). `lowerOnly` (asked
   * after starts, when the containers starting still count as created) only lowers it.
   */
  setDemand(created: ReadonlyMap<string, number>, opts: { lowerOnly?: boolean } = {}): void {
    const nets = this.d.store.pluginNetworks.values();
    const perLab = new Map<string, number>();
    for (const n of nets) perLab.set(n.lab, Math.max(perLab.get(n.lab) ?? 0, created.get(n.networkId) ?? 0));
    for (const n of nets) {
      const most = perLab.get(n.lab) ?? 0;
      const want = opts.lowerOnly ? Math.min(most, this.expected.get(n.networkId) ?? 0) : most;
      if (want > 0) this.expected.set(n.networkId, want);
      else this.expected.delete(n.networkId);
    }
    if (!opts.lowerOnly) this.growing = true;
    this.d.logger.debug({ expected: Object.fromEntries(this.expected) }, "plugin endpoints expected");
    this.refillSoon(opts.lowerOnly ? QUIET_MS : 0);
  }

  /** Containers started: the ones expected are being claimed, none are on their way any more. */
  startsBegan(): void {
    this.growing = false;
  }

  /** Spares a network should have now. */
  private target(net: PluginNetworkRecord): number {
    const expected = this.expected.get(net.networkId) ?? 0;
    const ahead = this.growing ? Math.ceil(expected / 4) : 0;
    return Math.min(MAX_SPARES, Math.max(this.d.config.pluginSpares, expected + ahead));
  }

  /** Removes the spares of a network that is going away (in the background, like endpoints). */
  discard(net: PluginNetworkRecord): void {
    this.expected.delete(net.networkId);
    const spares = net.spares ?? [];
    net.spares = [];
    this.d.reaper.add(spares.map((s) => s.hostPort));
  }

  /** Schedules a refill after `ms` of quiet (each call pushes it back). */
  refillSoon(ms = QUIET_MS): void {
    if (this.closed || this.d.config.pluginSpares === 0) return; // 0: no spares at all
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refill(), ms);
    this.timer.unref();
  }

  /** Makes every missing spare now; one run at a time (a call during a run runs again after it). */
  refill(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.fill()
      .catch((e) =>
        this.d.logger.warn({ err: toAgentError(e).message }, "could not make spare plugin interfaces"),
      )
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.closed) {
          this.again = false;
          void this.refill(); // asked for while this run was under way
        }
      });
    return this.running;
  }

  private async fill(): Promise<void> {
    const made: { networkId: string; spare: SpareInterface; ep: DetachedEndpoint }[] = [];
    for (const net of this.d.store.pluginNetworks.values()) {
      const want = this.target(net);
      // Demand is over: spares beyond the setting go (like endpoints, in the background).
      if ((net.spares?.length ?? 0) > want) {
        this.d.reaper.add((net.spares ?? []).slice(want).map((s) => s.hostPort));
        net.spares = net.spares?.slice(0, want);
        await this.d.store.pluginNetworks.set(net.networkId, net, SPARE_DURABILITY);
      }
      for (let k = net.spares?.length ?? 0; k < want; k++) {
        const { hostPort, peer } = pluginPortNames(randomBytes(8).toString("hex"));
        const spare = {
          hostPort,
          peerName: peer,
          mtu: net.mtu ?? this.d.defaultMtu,
          createdAt: Date.now(),
        };
        made.push({
          networkId: net.networkId,
          spare,
          ep: {
            lab: net.lab,
            hostPort,
            peerName: peer,
            mtu: spare.mtu,
            alias: `${ALIAS_PREFIX}${net.interfaceName}`,
            owner: { network: net.networkId },
          },
        });
      }
    }
    if (made.length === 0 || this.closed) return;
    await this.d.create(made.map((m) => m.ep));
    const grown = new Set<PluginNetworkRecord>();
    for (const m of made) {
      const net = this.d.store.pluginNetworks.get(m.networkId);
      if (!net) {
        this.d.reaper.add([m.spare.hostPort]); // the network went away meanwhile
        continue;
      }
      net.spares = [...(net.spares ?? []), m.spare];
      grown.add(net);
    }
    await Promise.all(
      [...grown].map((net) => this.d.store.pluginNetworks.set(net.networkId, net, SPARE_DURABILITY)),
    );
    this.d.logger.debug({ spares: made.length }, "spare plugin interfaces made");
  }
}
