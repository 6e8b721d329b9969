import { AgentError } from "../../common/errors.js";
import type { Logger } from "../../common/log.js";
import type { AgentConfig } from "../../config/config.js";
import { type DeviceRef, untilCarrier } from "../../link/index.js";
import { netnsLost } from "../../link/netns.js";
import { nodeMac } from "../../model/derived-names.js";
import { type LinkEnd, type WiredLink, wiredLinks } from "../../model/ends.js";
import type { CarrierState, InterfaceRecord, LabRecord, OverlayRecord } from "../../model/records.js";
import type { SwitchPortView, SwitchStatusView } from "../../model/views.js";
import type {
  Capability,
  CaptureCapability,
  CleanupContext,
  NetworkBackend,
  Orphan,
  OrphansCapability,
  PortObservation,
  ReconcileReport,
  WireCapability,
} from "../network-backend.js";
import {
  createPairs,
  deleteDevices,
  deletePairs,
  listByNetns,
  nsKey,
  orient,
  type Pair,
  type PairSide,
  setAdmin,
} from "./pairs.js";

/** How long carrier up waits for the interfaces to transmit again before answering anyway. */
const CARRIER_WAIT_MS = 3000;

const UNSUPPORTED: Partial<Record<Capability, string>> = {
  overlay:
    "the local backend has no switch to attach VXLAN tunnels to; run the agent with ARCHETYPE_AGENT_BACKEND=ovs",
  dockerPorts:
    "the local backend cannot serve the Docker network plugin; run the agent with ARCHETYPE_AGENT_BACKEND=ovs",
  impairment:
    "the local backend has no host ends to shape traffic on (its links are veth pairs between the nodes); run the agent with ARCHETYPE_AGENT_BACKEND=ovs",
};

/**
 * The legacy backend without Open vSwitch: a point-to-point link is a veth pair created directly
 * between the two nodes' namespaces, with the interface names the lab declared. An interface
 * exists only while it is linked (provisioning records nothing in the kernel). Carrier down on an
 * interface sets its peer's end down, so the interface sees NO-CARRIER, as with a pulled cable.
 * What it made is kept in memory and re-adopted from the kernel on start.
 */
export class LocalBackend implements NetworkBackend {
  readonly name = "local" as const;
  readonly datapath = null;
  /** `lab/link` -> pair. */
  private readonly pairs = new Map<string, Pair>();
  /** hostPort of either end -> pair. */
  private readonly byPort = new Map<string, Pair>();

  constructor(
    readonly config: AgentConfig,
    readonly logger: Logger,
  ) {}

  readonly unsupported = UNSUPPORTED;

  /** A veth pair between the nodes is a cable already: wire links are the same links. */
  readonly wire: WireCapability = {
    connect: (lab, links) => this.connect(lab, links),
    disconnect: (lab, links) => this.disconnect(lab, links),
  };

  /** The node's own interface, in its namespace: it exists while the link does. */
  readonly capture: CaptureCapability = {
    point: (hostPort) => {
      const p = this.byPort.get(hostPort);
      const side = p && (p.first.hostPort === hostPort ? p.first : p.second);
      return side ? { netns: side.netns, dev: side.name } : undefined;
    },
  };

  readonly orphans: OrphansCapability = {
    audit: (ctx) => this.audit(ctx),
    remove: (orphans) => this.removeOrphans(orphans),
  };

  /** Nothing to connect to: the kernel is always there. */
  async start(): Promise<void> {}

  /** Pairs stay when the agent stops (like OVS ports): a restarted agent adopts them. */
  async stop(): Promise<void> {}

  async provision(_lab: LabRecord, ends: readonly LinkEnd[]): Promise<void> {
    for (const { node } of ends) {
      if (!node.netns)
        throw new AgentError(
          "NOT_SUPPORTED",
          `node ${node.name} has no namespace: ${UNSUPPORTED.dockerPorts}`,
        );
    }
  }

  async release(lab: LabRecord, ends: readonly LinkEnd[]): Promise<void> {
    const gone = new Set(ends.map((e) => e.iface.hostPort));
    await this.remove([...this.pairs.values()].filter((p) => p.lab === lab.lab && touches(p, gone)));
  }

  async connect(lab: LabRecord, links: readonly WiredLink[]): Promise<void> {
    const fresh: Pair[] = [];
    const stale: Pair[] = [];
    for (const w of links) {
      const old = this.pairs.get(key(lab.lab, w.link.id));
      if (old) stale.push(old);
      fresh.push(pairOf(lab.lab, w));
    }
    if (stale.length > 0) await this.remove(stale);
    orient(fresh);
    await createPairs(fresh);
    for (const p of fresh) this.remember(p);
  }

  async disconnect(lab: LabRecord, links: readonly WiredLink[]): Promise<void> {
    const ids = new Set(links.map((w) => w.link.id));
    await this.remove([...this.pairs.values()].filter((p) => p.lab === lab.lab && ids.has(p.link)));
  }

  /**
   * Carrier of an interface is its peer's admin state: down makes the interface see NO-CARRIER.
   * Up answers once the interfaces transmit again.
   */
  async setCarrier(_lab: LabRecord, ends: readonly LinkEnd[], state: CarrierState): Promise<void> {
    const sides: PairSide[] = [];
    const plugged: DeviceRef[] = [];
    for (const e of ends) {
      const p = this.byPort.get(e.iface.hostPort);
      if (!p) continue; // not linked: the state is applied when it is
      const [own, peer] = p.first.hostPort === e.iface.hostPort ? [p.first, p.second] : [p.second, p.first];
      peer.up = state === "up";
      sides.push(peer);
      plugged.push({ dev: own.name, netns: own.netns });
    }
    await setAdmin(sides);
    if (state === "down") return;
    const late = await untilCarrier(plugged, CARRIER_WAIT_MS);
    if (late.length > 0) this.logger.warn({ interfaces: late }, "carrier up: interfaces not ready yet");
  }

  async teardown(lab: LabRecord): Promise<void> {
    await this.remove([...this.pairs.values()].filter((p) => p.lab === lab.lab));
  }

  observe(iface: InterfaceRecord): PortObservation {
    const p = this.byPort.get(iface.hostPort);
    // One veth between the nodes: the peer's pulled cable is this side set down (peer_down).
    const own = p && (p.first.hostPort === iface.hostPort ? p.first : p.second);
    const operState = own && !own.up ? ("peer_down" as const) : undefined;
    return {
      present: p !== undefined,
      vlan: null,
      link: p?.link ?? null,
      ...(operState ? { operState } : {}),
    };
  }

  /**
   * Makes the kernel match the desired links: pairs that exist intact are adopted, missing ones
   * created (where both namespaces exist), wrong admin states corrected, and pairs the desired
   * state no longer has deleted. Each lab on its own: one that fails keeps what it has.
   */
  async reconcile(labs: readonly LabRecord[], _overlays: readonly OverlayRecord[]): Promise<ReconcileReport> {
    const repairs: string[] = [];
    const failed = new Map<string, Error>();
    const fail = (lab: string, e: unknown) => failed.set(lab, e instanceof Error ? e : new Error(String(e)));
    const wanted = new Map<string, Map<string, Pair>>();
    for (const lab of labs) {
      try {
        wanted.set(lab.lab, wantedPairs(lab));
      } catch (e) {
        fail(lab.lab, e);
      }
    }
    const unwanted = [...this.pairs.entries()]
      .filter(([k, p]) => {
        if (failed.has(p.lab)) return false;
        const want = wanted.get(p.lab)?.get(k);
        return !want || !sameEnds(p, want);
      })
      .map(([, p]) => p);
    if (unwanted.length > 0) {
      await this.remove(unwanted);
      repairs.push(...unwanted.map((p) => `lab ${p.lab}: stray pair of link ${p.link} deleted`));
    }
    for (const [lab, pairs] of wanted) {
      try {
        await this.reconcilePairs(pairs, repairs);
      } catch (e) {
        fail(lab, e);
      }
    }
    if (repairs.length > 0) this.logger.info({ repairs }, "reconciled");
    return { repairs, failed };
  }

  /** One lab's pairs: adopted when intact, created when missing, admin state corrected. */
  private async reconcilePairs(wanted: ReadonlyMap<string, Pair>, repairs: string[]): Promise<void> {
    const kernel = await listByNetns([...wanted.values()].flatMap((p) => [p.first.netns, p.second.netns]));
    const missing: Pair[] = [];
    const halves: { netns: PairSide["netns"]; name: string }[] = [];
    const wrongAdmin: PairSide[] = [];
    const foreign: Pair[] = [];
    for (const [k, want] of wanted) {
      const a = kernel.get(nsKey(want.first.netns))?.get(want.first.name);
      const b = kernel.get(nsKey(want.second.netns))?.get(want.second.name);
      const intact =
        a?.kind === "veth" &&
        b?.kind === "veth" &&
        a.peerIfindex === b.ifindex &&
        b.peerIfindex === a.ifindex &&
        a.linkNetnsId !== undefined &&
        b.linkNetnsId !== undefined;
      if (intact) {
        this.remember(want);
        for (const [side, info] of [
          [want.first, a],
          [want.second, b],
        ] as const) {
          if (info.up !== side.up) wrongAdmin.push(side);
        }
        continue;
      }
      // Devices under these names that are not our pair: a veth is a stale half of ours; anything
      // else belongs to someone else and is left alone.
      if ([a, b].some((i) => i !== undefined && i.kind !== "veth")) {
        foreign.push(want);
        continue;
      }
      if (a) halves.push(want.first);
      if (b) halves.push(want.second);
      if (this.pairs.has(k)) this.forget(this.pairs.get(k)!);
      missing.push(want);
    }
    if (halves.length > 0) await deleteDevices(halves);
    if (missing.length > 0) {
      orient(missing);
      await createPairs(missing);
      for (const p of missing) this.remember(p);
      repairs.push(...missing.map((p) => `lab ${p.lab}: link ${p.link} re-created`));
    }
    if (wrongAdmin.length > 0) {
      await setAdmin(wrongAdmin);
      repairs.push(
        ...wrongAdmin.map((s) => `interface ${s.name} (${s.hostPort}) set ${s.up ? "up" : "down"}`),
      );
    }
    if (foreign.length > 0) {
      throw new AgentError(
        "CONFLICT",
        `link ${foreign.map((p) => p.link).join(", ")} not created: an interface of an end's name exists and is not the agent's`,
        "delete that interface inside the node, or give the link's end another interface name",
      );
    }
  }

  /** Nothing watches the kernel: repairs happen on start, on reconcile and on cleanup. */
  onDrift(_listener: (reason: string) => void): void {}

  async status(): Promise<SwitchStatusView> {
    const ports: SwitchPortView[] = [];
    for (const p of this.pairs.values()) {
      for (const s of [p.first, p.second]) {
        const peer = s === p.first ? p.second : p.first;
        ports.push({
          name: s.hostPort,
          vlan: null,
          lab: p.lab,
          node: null,
          interface: s.name,
          link: p.link,
          ofport: null,
          link_state: s.up && peer.up ? "up" : "down",
          type: "veth",
          rx_packets: 0,
          tx_packets: 0,
          rx_bytes: 0,
          tx_bytes: 0,
        });
      }
    }
    ports.sort((a, b) => a.name.localeCompare(b.name));
    return { backend: "local", bridge: null, fail_mode: null, datapath: null, connected: true, ports };
  }

  /**
   * Orphans: pairs the agent made whose link the desired state no longer has (`veth`), and
   * records of pairs whose namespace is gone, taking the pair with it (`state`).
   */
  private async audit(ctx: CleanupContext): Promise<Orphan[]> {
    const labs = new Map(ctx.labs.map((l) => [l.lab, l]));
    const out: Orphan[] = [];
    for (const p of this.pairs.values()) {
      if (p.createdAt > ctx.graceSince) continue;
      const name = `${p.lab}/${p.link}`;
      const detail = { pair: key(p.lab, p.link) };
      if (!labs.get(p.lab)?.links[p.link]) {
        out.push({
          kind: "veth",
          name,
          reason: `veth pair of link ${p.link}, which lab ${p.lab} does not have`,
          detail,
        });
        continue;
      }
      for (const s of [p.first, p.second]) {
        if (netnsLost(s.netns, s.netnsId)) {
          out.push({
            kind: "state",
            name,
            reason: `the namespace of ${s.name} is gone, and the pair with it`,
            detail,
          });
          break;
        }
      }
    }
    return out;
  }

  private async removeOrphans(orphans: readonly Orphan[]): Promise<void> {
    const pairs = orphans
      .map((o) => (o.detail?.pair ? this.pairs.get(o.detail.pair) : undefined))
      .filter((p): p is Pair => p !== undefined);
    await this.remove(pairs);
  }

  private async remove(pairs: readonly Pair[]): Promise<void> {
    if (pairs.length === 0) return;
    await deletePairs(pairs);
    for (const p of pairs) this.forget(p);
  }

  private remember(p: Pair): void {
    this.pairs.set(key(p.lab, p.link), p);
    this.byPort.set(p.first.hostPort, p);
    this.byPort.set(p.second.hostPort, p);
  }

  private forget(p: Pair): void {
    const k = key(p.lab, p.link);
    if (this.pairs.get(k) === p) this.pairs.delete(k);
    for (const s of [p.first, p.second])
      if (this.byPort.get(s.hostPort) === p) this.byPort.delete(s.hostPort);
  }
}

function key(lab: string, link: string): string {
  return `${lab}/${link}`;
}

function touches(p: Pair, ports: ReadonlySet<string>): boolean {
  return ports.has(p.first.hostPort) || ports.has(p.second.hostPort);
}

function sameEnds(x: Pair, y: Pair): boolean {
  const ends = (p: Pair) =>
    [p.first, p.second]
      .map((s) => `${s.hostPort}\0${nsKey(s.netns)}\0${s.name}\0${s.mtu}`)
      .sort()
      .join("\n");
  return ends(x) === ends(y);
}

/** An interface's device is up unless the other end's interface is carrier-down. */
function pairOf(lab: string, w: WiredLink): Pair {
  const side = (e: LinkEnd, other: LinkEnd): PairSide => {
    if (!e.node.netns)
      throw new AgentError(
        "NOT_SUPPORTED",
        `node ${e.node.name} has no namespace: ${UNSUPPORTED.dockerPorts}`,
      );
    return {
      hostPort: e.iface.hostPort,
      netns: e.node.netns,
      netnsId: e.node.netnsId,
      name: e.iface.name,
      mtu: e.iface.mtu,
      mac: nodeMac(lab, e.node.name, e.iface.name),
      up: other.iface.carrier === "up",
    };
  };
  return { lab, link: w.link.id, first: side(w.a, w.b), second: side(w.b, w.a), createdAt: w.link.createdAt };
}

/** The pairs a lab's links need whose namespaces both exist as they were made in, by `lab/link`. */
function wantedPairs(lab: LabRecord): Map<string, Pair> {
  const wanted = new Map<string, Pair>();
  for (const w of wiredLinks(lab)) {
    if (!w.a.node.netns || !w.b.node.netns) continue;
    if (netnsLost(w.a.node.netns, w.a.node.netnsId) || netnsLost(w.b.node.netns, w.b.node.netnsId)) continue;
    wanted.set(key(lab.lab, w.link.id), pairOf(lab.lab, w));
  }
  return wanted;
}
