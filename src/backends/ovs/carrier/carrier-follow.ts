import type { Logger } from "../../../common/log.js";
import type { CarrierState } from "../../../model/records.js";
import type { OperState } from "../../../model/views.js";
import type { CacheChange, InterfaceRow, OvsdbClient } from "../../../ovsdb/index.js";
import { OWNER, portKind } from "../switch/ownership.js";

/**
 * A cable has two ends: when one end of a link goes dead (its node set it down, its node is gone,
 * or the API pulled its cable), the peer's host end is set admin down too, so the peer node sees
 * NO-CARRIER at once instead of waiting for hello timers; when the cause clears, it comes back.
 *
 * Driven by the OVSDB monitor (Interface `link_state`/`admin_state` of the host ends, Port link
 * marks), no polling. The agent's own holds are told apart from a node's own down: an end the
 * agent holds down is never counted as dead (no loop), and an end whose own node is down is not
 * held (the agent keeps seeing its node's state through its link_state). The held set is not
 * stored: a restarted agent derives it again (an end admin down that the API does not want down
 * is a hold), then re-evaluates every link.
 *
 * Bursts coalesce: a change marks its port dirty; one evaluation per tick handles every dirty
 * port and its peer and applies the result in one batch (port-admin.ts: an OpenFlow PORT_MOD
 * batch, `ip -batch` as the fallback); one batch in flight at a time.
 *
 * Overlay links (the peer is on another host): the link's VXLAN interface stands in for the far
 * end. BFD runs on it (`bfd:enable=true`, set here on every overlay tunnel, both hosts' agents do
 * the same) and `bfd:cpath_down=true` is set while the local node's end is dead: the far host's
 * `bfd_status` then says forwarding=false with remote_diagnostic "Concatenated Path Down", and
 * its agent holds its node's end down until that clears. Only that explicit signal counts: a BFD
 * session that is merely down (far host not attached yet, gone, or without BFD) holds nothing.
 * BFD carries the signal in-band, so it works wherever the tunnel does (userspace datapath too).
 */
/** What carrier follow reads of the switch: the monitor-fed cache. */
export type CarrierSource = Pick<OvsdbClient, "interfaceByName" | "ports">;

/** The BFD configuration an overlay tunnel's Interface should have. */
export interface TunnelBfd {
  uuid: string;
  bfd: Record<string, string>;
}

export class CarrierFollow {
  /** Host ports whose API carrier is down (the user's intent, from the lab records). */
  private readonly apiDown = new Set<string>();
  /** Host ports the API knows about (only these are ever changed here). */
  private readonly known = new Set<string>();
  /** Host ports held down because their link peer is dead (derived, never stored). */
  private readonly held = new Set<string>();
  /**
   * Host ports set up (by a release or the API) whose carrier OVSDB has not shown yet. The kernel
   * reports a veth running a moment after admin up (linkwatch: up to a second, longer on a busy
   * machine), so "admin up, link down" right after a set-up is not a dead end; it is one when
   * carrier has not come within `graceMs` of the set-up (its node's end is down).
   */
  private readonly settingUp = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly dirty = new Set<string>();
  private scheduled = false;
  private running: Promise<void> | undefined;
  private started = false;
  /** Links the switch's port rows do not show (wires live in flows): host port pairs. */
  private extraPeers: () => Iterable<readonly [string, string]> = () => [];
  /** Ports set down/up by this module (a flap costs at most two per end). */
  changes = 0;
  /** Evaluation rounds run (a burst of events is one round per tick). */
  rounds = 0;

  constructor(
    private readonly client: CarrierSource,
    private readonly setUp: (names: readonly string[], up: boolean) => Promise<void>,
    private readonly setBfd: (tunnels: readonly TunnelBfd[]) => Promise<void>,
    private readonly logger: Logger,
    private readonly graceMs = 3000,
  ) {}

  /** Where the links that port rows do not mark are (the wires' room). */
  setExtraPeers(peers: () => Iterable<readonly [string, string]>): void {
    this.extraPeers = peers;
  }

  /** These ports joined or left a link the port rows do not show: evaluate them again. */
  relinked(hostPorts: readonly string[]): void {
    for (const h of hostPorts) this.mark(h);
  }

  /** The API's carrier of these host ports (provision, carrier calls, reconcile). */
  setDesired(hostPorts: readonly string[], state: CarrierState): void {
    for (const h of hostPorts) {
      this.known.add(h);
      if (state === "down") {
        this.apiDown.add(h);
        this.held.delete(h);
      } else if (this.apiDown.delete(h)) this.comingUp(h);
      this.mark(h);
    }
  }

  forget(hostPorts: readonly string[]): void {
    for (const h of hostPorts) {
      this.known.delete(h);
      this.apiDown.delete(h);
      this.held.delete(h);
      this.cameUp(h);
    }
  }

  /**
   * Called by the first reconcile, once every lab's desired carrier is known: an end admin down
   * that the API does not want down was held by a previous agent (re-evaluated right after).
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const h of this.known) {
      if (!this.apiDown.has(h) && this.client.interfaceByName(h)?.admin_state === "down") this.held.add(h);
      this.mark(h);
    }
  }

  /** The admin state an end should have now: down when the API or its dead peer says so. */
  wantUp(hostPort: string): boolean {
    return !this.apiDown.has(hostPort) && !this.wantHeld(hostPort, this.peers());
  }

  /** The link peers of these ends that are held down now (released once these are up). */
  heldPeers(hostPorts: readonly string[]): string[] {
    const peers = this.peers();
    return hostPorts.map((h) => peers.get(h)).filter((p): p is string => p !== undefined && this.held.has(p));
  }

  operState(hostPort: string): OperState {
    if (this.apiDown.has(hostPort)) return "admin_down";
    if (this.held.has(hostPort)) return "peer_down";
    return this.client.interfaceByName(hostPort)?.link_state === "up" ? "up" : "no_carrier";
  }

  /** Monitor changes: an Interface's state or a Port's link marks changed. */
  onChange(c: CacheChange): void {
    if (c.table !== "Interface" && c.table !== "Port") return;
    for (const row of [c.old, c.new]) {
      const name = row?.name;
      if (typeof name === "string") this.mark(name);
    }
    if (c.table === "Interface" && c.new?.link_state === "up") this.cameUp(String(c.new.name));
  }

  private comingUp(h: string): void {
    if (this.settingUp.has(h)) return;
    const timer = setTimeout(() => {
      this.settingUp.delete(h);
      this.mark(h);
    }, this.graceMs);
    timer.unref();
    this.settingUp.set(h, timer);
  }

  private cameUp(h: string): void {
    clearTimeout(this.settingUp.get(h));
    this.settingUp.delete(h);
  }

  /** Resolves once no evaluation is pending or running (tests, bench). */
  async idle(): Promise<void> {
    while (this.running || this.scheduled) await (this.running ?? new Promise((r) => setImmediate(r)));
  }

  private mark(hostPort: string): void {
    this.dirty.add(hostPort);
    if (!this.started || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.kick());
  }

  private kick(): void {
    this.scheduled = false;
    if (this.running) return; // the running round schedules the next one when it ends
    this.running = this.round()
      .catch((e) => this.logger.warn({ err: e }, "carrier follow: could not set a peer's carrier"))
      .finally(() => {
        this.running = undefined;
        if (this.dirty.size > 0 && !this.scheduled) {
          this.scheduled = true;
          setImmediate(() => this.kick());
        }
      });
  }

  private async round(): Promise<void> {
    this.rounds++;
    const peers = this.peers();
    const todo = new Set<string>();
    for (const h of this.dirty) {
      todo.add(h);
      const p = peers.get(h);
      if (p !== undefined) todo.add(p);
    }
    this.dirty.clear();
    const down: string[] = [];
    const up: string[] = [];
    const bfd: TunnelBfd[] = [];
    for (const h of todo) {
      const iface = this.client.interfaceByName(h);
      if (iface && isTunnel(iface)) {
        const want = this.tunnelBfd(iface, peers.get(h));
        if (want) bfd.push({ uuid: iface.uuid, bfd: want });
        continue;
      }
      if (!this.known.has(h)) continue;
      if (!iface || gone(iface) || iface.admin_state === undefined) continue; // no device: nothing to set
      const wasHeld = this.held.has(h);
      const hold = !this.apiDown.has(h) && this.wantHeld(h, peers);
      if (hold) this.held.add(h);
      else this.held.delete(h);
      // Down: a new hold, or an end that should be down and is up (a race with a release; the API
      // sets its own ends down itself).
      // Up: only a release of its own hold (an end down for another reason is not ours to lift).
      if ((hold && !wasHeld) || ((hold || this.apiDown.has(h)) && iface.admin_state === "up")) down.push(h);
      else if (wasHeld && !hold && !this.apiDown.has(h)) {
        this.comingUp(h);
        up.push(h);
      }
    }
    if (down.length > 0 || up.length > 0 || bfd.length > 0) {
      this.changes += down.length + up.length;
      this.logger.debug({ down, up, bfd }, "carrier follow");
      await Promise.all([
        down.length > 0 ? this.setUp(down, false) : undefined,
        up.length > 0 ? this.setUp(up, true) : undefined,
        bfd.length > 0 ? this.setBfd(bfd) : undefined,
      ]);
    }
  }

  /** BFD on, and cpath_down while the local node's end is dead; undefined when it is so already. */
  private tunnelBfd(tunnel: InterfaceRow, nodeEnd: string | undefined): Record<string, string> | undefined {
    if (nodeEnd === undefined || !this.known.has(nodeEnd)) return undefined;
    const want = { ...tunnel.bfd, enable: "true", cpath_down: String(this.dead(nodeEnd)) };
    return Object.entries(want).every(([k, v]) => tunnel.bfd[k] === v) ? undefined : want;
  }

  /**
   * Held when its peer is dead and it is not down by its own node: an end already without
   * carrier from its own side is left admin up, so its node's recovery stays visible.
   */
  private wantHeld(h: string, peers: ReadonlyMap<string, string>): boolean {
    const p = peers.get(h);
    if (p === undefined || !this.dead(p)) return false;
    return this.held.has(h) || !this.ownDown(h);
  }

  /**
   * The cable is dead at this end: the API pulled it, or its own node is down or gone; for an
   * overlay tunnel: the far host's agent says its node's end is dead.
   */
  private dead(h: string): boolean {
    const i = this.client.interfaceByName(h);
    if (i && isTunnel(i)) return farEndDead(i);
    return this.apiDown.has(h) || (!this.held.has(h) && this.ownDown(h));
  }

  /**
   * Its node's end is down or gone: the host end has no carrier while up (and is not coming up),
   * or it is admin down and nobody here put it down (the device vanished with its namespace: the row stays, down).
   */
  private ownDown(h: string): boolean {
    const i = this.client.interfaceByName(h);
    if (!i || gone(i)) return true;
    if (i.link_state === "up") return false;
    if (this.settingUp.has(h)) return false;
    if (i.admin_state !== "down") return true;
    return !this.apiDown.has(h) && !this.held.has(h);
  }

  /** Host port -> its link peer's host port, from the ports' link marks (current after rewires). */
  private peers(): Map<string, string> {
    const byLink = new Map<string, string[]>();
    for (const p of this.client.ports()) {
      const kind = portKind(p.external_ids);
      // A node port on an overlay link carries it as its overlay mark (its VLAN is the tunnel's).
      const link =
        kind === "overlay"
          ? p.external_ids[OWNER.link]
          : (p.external_ids[OWNER.overlay] ?? p.external_ids[OWNER.link]);
      if (!link || kind === undefined) continue;
      const key = `${p.external_ids[OWNER.lab]}\0${link}`;
      const ends = byLink.get(key);
      if (ends) ends.push(p.name);
      else byLink.set(key, [p.name]);
    }
    const out = new Map<string, string>();
    const pairs = [...byLink.values()].filter((ends) => ends.length === 2) as [string, string][];
    for (const [a, b] of [...pairs, ...this.extraPeers()]) {
      out.set(a, b);
      out.set(b, a);
    }
    return out;
  }
}

function isTunnel(i: InterfaceRow): boolean {
  return i.type === "vxlan";
}

/**
 * The far agent set cpath_down: the session up, forwarding off because of the remote's diagnostic.
 * A session that went down (the far tunnel removed) keeps showing the last remote diagnostic.
 */
function farEndDead(i: InterfaceRow): boolean {
  const s = i.bfd_status;
  return s.state === "up" && s.forwarding === "false" && s.remote_diagnostic === "Concatenated Path Down";
}

/** The device is gone (its node's namespace went away): ovs-vswitchd keeps the row, with an error. */
function gone(i: InterfaceRow): boolean {
  return i.ofport === -1 || i.error !== undefined;
}
