import { AgentError } from "../common/errors.js";
import type { BackendName } from "../config/config.js";
import type { LinkEnd, WiredLink } from "../model/ends.js";
import type { CarrierState, InterfaceRecord, LabRecord, NetnsRef, OverlayRecord } from "../model/records.js";
import type {
  ImpairmentDirection,
  InterfaceCounters,
  OperState,
  OrphanView,
  SwitchStatusView,
  TunnelView,
} from "../model/views.js";
import type { OvsdbClient } from "../ovsdb/client.js";

/**
 * The network mechanics behind the agent. The lab service, the API, the CLI and the Docker
 * plugin see only this interface; `ovs/` and `local/` implement it. Lab bookkeeping
 * (validation, desired state, locking, persistence) is not a backend's job: a backend is told
 * what to build and reports what exists.
 *
 * A small core every backend implements, and optional capabilities as objects (`overlay`,
 * `dockerPorts`, `orphans`, `switchDb`, `impairment`, `capture`): a backend without one leaves it out and says why in `unsupported`;
 * `capability()` turns the absence into NOT_SUPPORTED (HTTP 501) with that reason.
 */
export type { BackendName };

/** What exists for one interface right now. */
export interface PortObservation {
  present: boolean;
  vlan: number | null;
  /** The link the switch has this interface in, per the backend's own records. */
  link: string | null;
  /** Why it forwards or not, where the backend can tell (otherwise: the API's carrier). */
  operState?: OperState;
  /** The interface's counters from the node's side, where the backend counts (from its caches). */
  counters?: InterfaceCounters;
}

/** Where an interface's traffic, both directions, can be captured: a device in a namespace. */
export interface CapturePoint {
  /** undefined: the agent's own namespace. */
  netns: NetnsRef | undefined;
  dev: string;
}

export interface DetachedEndpoint {
  lab: string;
  /** Host-side port (stays on the host). */
  hostPort: string;
  /** The other end, left in the host namespace for someone else (Docker) to move. */
  peerName: string;
  mtu: number;
  /** ifalias of the peer (the runtime hook renames the interface by it). */
  alias: string;
  owner: DockerPortOwner;
}

/**
 * Whose a Docker port is, in the backend's neutral terms; the backend keeps these where it keeps
 * its own marks (OVS: the port's external_ids), so cleanup and a restarted agent can tell.
 */
export interface DockerPortOwner {
  /** The Docker network (a spare has this and no endpoint yet). */
  network?: string;
  endpoint?: string;
  /** The container, once joined, and the interface it is in the lab. */
  node?: string;
  iface?: string;
}

export interface CleanupContext {
  labs: readonly LabRecord[];
  overlays: readonly OverlayRecord[];
  /** Host ports of Docker plugin endpoints the agent still knows about. */
  pluginPorts: ReadonlySet<string>;
  /** Resources younger than this (ms since epoch) are never orphans. */
  graceSince: number;
  /** The grace period itself (ms): a device first seen now is an orphan at once when it is 0. */
  graceMs: number;
}

export interface Orphan extends OrphanView {
  /** Backend-private detail needed to remove it. */
  detail?: Record<string, string>;
}

/** What a reconcile did: a line per repair made, and the labs it could not converge, with why. */
export interface ReconcileReport {
  repairs: string[];
  failed: Map<string, Error>;
}

/** Cross-host links: VXLAN tunnels of lab interfaces. */
export interface OverlayCapability {
  /** Resolves once committed; with `wait`, once the switch forwards on it. */
  attach(rec: OverlayRecord, end: LinkEnd, opts?: { wait?: boolean }): Promise<void>;
  detach(rec: OverlayRecord, end: LinkEnd | undefined): Promise<void>;
  status(recs: readonly OverlayRecord[]): TunnelView[];
}

/** Docker plugin endpoints: veths made for Docker to move, on the switch from the start. */
export interface DockerPortsCapability {
  /** All or nothing: one kernel batch and one transaction for the lot. */
  createDetached(eps: readonly DetachedEndpoint[]): Promise<void>;
  /** One transaction and one kernel batch; ports and veths already gone are fine. */
  removeDetached(hostPorts: readonly string[]): Promise<void>;
  /**
   * Records these owner fields on a port (the others stay); false when the port is not there.
   * `wait: false` answers on commit.
   */
  mark(hostPort: string, owner: DockerPortOwner, opts?: { wait?: boolean }): Promise<boolean>;
}

/** Cleanup: what is orphaned (removes nothing), and removing a list of orphans. */
export interface OrphansCapability {
  audit(ctx: CleanupContext): Promise<Orphan[]>;
  remove(orphans: readonly Orphan[]): Promise<void>;
}

/** The switch's OVSDB, followed live: the live page's feed reads its cache and change events. */
export interface SwitchDbCapability {
  /** Undefined until the backend has started. */
  client(): OvsdbClient | undefined;
  /** The lab a port is in, from the marks the backend keeps on it (undefined: not the agent's). */
  labOf(externalIds: Readonly<Record<string, string>>): string | undefined;
}

/** Link impairments with tc: a rate alone (tbf) wherever offered; delay, loss and the rest need netem. */
export interface ImpairmentCapability {
  /** Undefined when the kernel has netem, otherwise why not (what needs it answers 501). */
  netemMissing(): string | undefined;
  /**
   * Applies each link's `impairment` (absent: none) to its ends; `connect` applies it too,
   * `disconnect` removes it.
   */
  apply(lab: LabRecord, links: readonly WiredLink[]): Promise<void>;
  /** What each of these links suffers now, read back from the kernel (a process, not a cache). */
  applied(
    links: readonly WiredLink[],
  ): Promise<{ a_to_b: ImpairmentDirection; b_to_a: ImpairmentDirection; in_sync: boolean }[]>;
}

/** Packet capture of lab interfaces. */
export interface CaptureCapability {
  /** Where to capture an interface (by its host port); undefined while it does not exist. */
  point(hostPort: string): CapturePoint | undefined;
}

/**
 * Wire links (`mode: "wire"`): the switch hands every frame of one end to the other unchanged, as
 * a cable does (802.1Q, QinQ, LLDP, LACP, STP cross); the core's connect and disconnect are the
 * backend's own links. A backend whose links are cables already may give its core's here.
 */
export interface WireCapability {
  connect(lab: LabRecord, links: readonly WiredLink[]): Promise<void>;
  disconnect(lab: LabRecord, links: readonly WiredLink[]): Promise<void>;
}

export interface Capabilities {
  overlay: OverlayCapability;
  wire: WireCapability;
  dockerPorts: DockerPortsCapability;
  orphans: OrphansCapability;
  switchDb: SwitchDbCapability;
  impairment: ImpairmentCapability;
  capture: CaptureCapability;
}

export type Capability = keyof Capabilities;

export interface NetworkBackend extends Readonly<Partial<Capabilities>> {
  readonly name: BackendName;
  /** The datapath in use (`netdev`, `system`), or null for backends without a switch. */
  readonly datapath: string | null;
  /** Why each capability the backend leaves out is left out (the message of the 501). */
  readonly unsupported: Readonly<Partial<Record<Capability, string>>>;

  /** Connects to what the backend needs (the agent then reconciles); fails when it cannot. */
  start(): Promise<void>;
  stop(): Promise<void>;

  /**
   * Every mutating call takes a batch: a lab of hundreds of links is one round of kernel work
   * and as few OVSDB transactions as possible, not hundreds of small operations.
   */
  /** Creates these interfaces, each isolated (reaching nothing). */
  provision(lab: LabRecord, ends: readonly LinkEnd[]): Promise<void>;
  /** Removes these interfaces. */
  release(lab: LabRecord, ends: readonly LinkEnd[]): Promise<void>;
  /** Joins interface pairs into links. Both ends of each exist (the lab service checks). */
  connect(lab: LabRecord, links: readonly WiredLink[]): Promise<void>;
  /** Separates links' ends; each is isolated again, interfaces are kept where the backend can. */
  disconnect(lab: LabRecord, links: readonly WiredLink[]): Promise<void>;
  /** Administrative carrier of interfaces: down makes the node see NO-CARRIER. */
  setCarrier(lab: LabRecord, ends: readonly LinkEnd[], state: CarrierState): Promise<void>;
  /** Removes everything of the lab in bulk. */
  teardown(lab: LabRecord): Promise<void>;

  /** What exists for an interface now (cheap: served from caches). */
  observe(iface: InterfaceRecord): PortObservation;
  /**
   * Makes reality match the desired state, each lab on its own: a lab that cannot be converged
   * is reported in `failed` and the others still are. Throws only when nothing can be done.
   */
  reconcile(labs: readonly LabRecord[], overlays: readonly OverlayRecord[]): Promise<ReconcileReport>;
  /** Subscribes to "something changed behind the agent's back": the agent then reconciles. */
  onDrift(listener: (reason: string) => void): void;
  status(): Promise<SwitchStatusView>;
}

/** The backend's capability, or NOT_SUPPORTED (HTTP 501) with the backend's reason. */
export function capability<C extends Capability>(backend: NetworkBackend, cap: C): Capabilities[C] {
  const c = backend[cap] as Capabilities[C] | undefined;
  if (c) return c;
  throw new AgentError(
    "NOT_SUPPORTED",
    backend.unsupported[cap] ?? `the ${backend.name} backend does not support ${cap}`,
  );
}
