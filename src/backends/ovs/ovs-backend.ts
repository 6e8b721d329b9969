import type { Logger } from "../../common/log.js";
import type { AgentConfig } from "../../config/config.js";
import type { NetnsRef } from "../../link/netns.js";
import type { LinkEnd, WiredLink } from "../../model/ends.js";
import type { CarrierState, InterfaceRecord, LabRecord, OverlayRecord } from "../../model/records.js";
import type { SwitchStatusView } from "../../model/views.js";
import type { OvsdbClient } from "../../ovsdb/index.js";
import type {
  CaptureCapability,
  DockerPortsCapability,
  ImpairmentCapability,
  NetworkBackend,
  OrphansCapability,
  OverlayCapability,
  PortObservation,
  ReconcileReport,
  SwitchDbCapability,
  WireCapability,
} from "../network-backend.js";
import { CarrierControl } from "./carrier/carrier-control.js";
import type { CarrierFollow } from "./carrier/carrier-follow.js";
import { OrphanSweep } from "./cleanup/orphans.js";
import { WireLinks } from "./flows/wire-links.js";
import { VlanLinks } from "./links/vlan-links.js";
import { OverlayManager } from "./overlay/overlay-manager.js";
import { DockerPorts } from "./ports/docker-ports.js";
import { NodePorts } from "./ports/node-ports.js";
import { type ReconcileRooms, reconcile } from "./reconcile/reconciler.js";
import { Shaper } from "./shaping/shaper.js";
import { OvsSwitch } from "./switch/ovs-switch.js";
import { OWNER } from "./switch/ownership.js";
import { switchStatus } from "./switch/status.js";

/**
 * The Open vSwitch backend: one bridge, every node interface a veth whose host end is an access
 * port, a link = both ends share a VLAN. This file only composes the rooms (ARCHITECTURE.md):
 * `switch/` (OVSDB, the transaction door, rows, VLANs), `ports/` (node and Docker ports),
 * `links/` (VLAN links), `carrier/` (carrier and carrier follow), `shaping/` (impairments),
 * `overlay/` (VXLAN), `cleanup/` (orphans) and `reconcile/`.
 */
export class OvsBackend implements NetworkBackend {
  readonly name = "ovs" as const;
  readonly datapath: "system" | "netdev";
  private readonly sw: OvsSwitch;
  private readonly shaper: Shaper;
  private rooms: ReconcileRooms | undefined;

  constructor(
    private readonly config: AgentConfig,
    private readonly logger: Logger,
  ) {
    this.sw = new OvsSwitch(config, logger);
    this.datapath = this.sw.datapath;
    this.shaper = new Shaper(this.sw);
    this.dockerPorts = new DockerPorts(this.sw);
    this.orphans = new OrphanSweep(this.sw);
    this.impairment = this.shaper.capability;
  }

  readonly unsupported = {};

  readonly overlay: OverlayCapability = {
    attach: async (rec, end, opts = {}) => {
      // A wire needs the VXLAN port's OpenFlow number: it waits for ovs-vswitchd to make it.
      const wire = rec.mode === "wire";
      const parked = this.parkedOfport(end.iface.hostPort);
      await this.started.tunnels.attach(rec, end, (opts.wait ?? false) || wire);
      // Out of the parking VLAN into the tunnel's: its drop flow goes (shared isolation).
      if (parked !== undefined) await this.sw.parking?.undrop([parked]);
      if (wire) await this.started.wires.attachOverlay(rec, end);
    },
    detach: async (rec, end) => {
      if (end && rec.mode === "wire") await this.started.wires.detachOverlay(rec, end);
      const ofport = end && this.sw.ofport(end.iface.hostPort);
      if (this.sw.parking && ofport !== undefined) await this.sw.parking.drop([ofport]);
      await this.started.tunnels.detach(rec, end);
    },
    status: (recs) => this.started.tunnels.status(recs),
  };

  readonly dockerPorts: DockerPortsCapability;

  readonly orphans: OrphansCapability;

  readonly impairment: ImpairmentCapability;

  readonly wire: WireCapability = {
    connect: (lab, links) => this.started.wires.connect(lab, links),
    disconnect: (lab, links) => this.started.wires.disconnect(lab, links),
  };

  readonly switchDb: SwitchDbCapability = {
    client: () => this.sw.client,
    labOf: (externalIds) => externalIds[OWNER.lab],
  };

  readonly capture: CaptureCapability = {
    point: (hostPort) => (this.sw.port(hostPort) ? { netns: this.sw.hostNs, dev: hostPort } : undefined),
  };

  get ovsdb(): OvsdbClient {
    return this.sw.client;
  }

  /** The namespace of the switch's ports (undefined: the agent's own). */
  get switchNetns(): NetnsRef | undefined {
    return this.sw.hostNs;
  }

  /** Carrier follows across links: a dead end takes its peer down with it. */
  get follow(): CarrierFollow {
    return this.started.carrier.follow;
  }

  async start(): Promise<void> {
    await this.sw.connect();
    const carrier = new CarrierControl(this.sw, this.logger);
    this.rooms = {
      sw: this.sw,
      carrier,
      shaper: this.shaper,
      nodePorts: new NodePorts(this.sw, carrier, this.shaper),
      vlanLinks: new VlanLinks(this.sw, carrier, this.shaper),
      wires: new WireLinks(this.sw, carrier, this.shaper, this.logger),
      tunnels: new OverlayManager({
        config: this.config,
        logger: this.logger,
        client: this.sw.client,
        vlans: this.sw.vlans,
        bridge: () => this.sw.bridge(),
        transact: (ops, opts) => this.sw.transact(ops, opts),
        switchNetns: this.sw.hostNs,
      }),
      logger: this.logger,
    };
    if (this.config.isolation === "shared") this.sw.parking = this.rooms.wires;
  }

  async stop(): Promise<void> {
    await this.sw.close();
  }

  onDrift(listener: (reason: string) => void): void {
    this.sw.onDrift(listener);
  }

  /**
   * New ports in wire links get promised OpenFlow numbers, and their wires' flows go to the
   * switch while the veths are made (WireLinks.prewire): connecting them costs nothing more.
   */
  async provision(lab: LabRecord, ends: readonly LinkEnd[]): Promise<void> {
    const { nodePorts, wires } = this.started;
    const making = new Set(ends.map((e) => e.iface.hostPort));
    const wired = wires.gaining(lab, making);
    if (wired.length === 0 || !this.sw.openflow.current()) return nodePorts.provision(lab, ends);
    const numbered = this.sw.promiseOfports(
      [...new Set(wired.flatMap((w) => [w.a, w.b].map((e) => e.iface.hostPort)))].filter((h) =>
        making.has(h),
      ),
    );
    const pre = wires.prewire(lab, wired, numbered);
    try {
      await nodePorts.provision(lab, ends, numbered);
    } catch (e) {
      this.sw.forgetOfports(numbered.values());
      await pre;
      await wires.unprewire(lab, wired);
      throw e;
    }
    await pre;
  }

  async release(_lab: LabRecord, ends: readonly LinkEnd[]): Promise<void> {
    await this.started.wires.dropPorts(ends.map((e) => e.iface.hostPort));
    await this.started.nodePorts.release(ends);
  }

  connect(_lab: LabRecord, links: readonly WiredLink[]): Promise<void> {
    return this.started.vlanLinks.connect(links);
  }

  disconnect(_lab: LabRecord, links: readonly WiredLink[]): Promise<void> {
    return this.started.vlanLinks.disconnect(links);
  }

  setCarrier(lab: LabRecord, ends: readonly LinkEnd[], state: CarrierState): Promise<void> {
    return this.started.carrier.set(lab, ends, state);
  }

  async teardown(lab: LabRecord): Promise<void> {
    // The wires' flows go while the ports go: a flow keeps its port's number after the port.
    await Promise.all([
      this.started.wires.dropPorts(
        Object.values(lab.nodes).flatMap((n) => Object.values(n.interfaces).map((i) => i.hostPort)),
      ),
      this.started.nodePorts.teardown(lab),
    ]);
  }

  observe(iface: InterfaceRecord): PortObservation {
    if (!this.sw.started) return { present: false, vlan: null, link: null };
    const p = this.sw.port(iface.hostPort);
    const stats = p ? this.sw.client.interfaceByName(iface.hostPort)?.statistics : undefined;
    const wire = this.rooms?.wires.linkOf(iface.hostPort);
    return {
      present: p !== undefined,
      // A wire's ports keep their isolating tags: no VLAN carries the link.
      vlan: wire === undefined ? (p?.tag ?? null) : null,
      link: wire ?? p?.external_ids[OWNER.link] ?? null,
      operState: this.rooms?.carrier.follow.operState(iface.hostPort),
      ...(stats ? { counters: nodeSide(stats) } : {}),
    };
  }

  status(): Promise<SwitchStatusView> {
    return Promise.resolve(switchStatus(this.sw.client, this.config.bridge, this.datapath));
  }

  reconcile(labs: readonly LabRecord[], overlays: readonly OverlayRecord[]): Promise<ReconcileReport> {
    return reconcile(this.started, labs, overlays);
  }

  /** The OpenFlow number of a port waiting in the parking VLAN (shared isolation), if it is. */
  private parkedOfport(hostPort: string): number | undefined {
    const p = this.sw.parking && this.sw.port(hostPort);
    return p && this.sw.isParked(p) ? this.sw.ofport(hostPort) : undefined;
  }

  private get started(): ReconcileRooms {
    if (!this.rooms) throw new Error("the OVS backend has not started");
    return this.rooms;
  }
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
