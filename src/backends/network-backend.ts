import type { OperState, OrphanView, SwitchStatusView, TunnelView } from "../labs/views.js";
import type {
  CarrierState,
  InterfaceRecord,
  LabRecord,
  LinkRecord,
  NodeRecord,
  OverlayRecord,
} from "../state/records.js";

/**
 * The network mechanics behind the agent. The lab service, the API, the CLI and the Docker
 * plugin see only this interface; `ovs/` and `local/` implement it. Lab bookkeeping
 * (validation, desired state, locking, persistence) is not a backend's job: a backend is told
 * what to build and reports what exists.
 */
export type BackendName = "ovs" | "local" | "ovn";

/** Optional capabilities; a backend without one answers NOT_SUPPORTED (HTTP 501) with a reason. */
export type Capability = "overlay" | "plugin" | "carrier";

/** One end of a link: the node and its interface record. */
export interface LinkEnd {
  node: NodeRecord;
  iface: InterfaceRecord;
}

export interface WiredLink {
  link: LinkRecord;
  a: LinkEnd;
  b: LinkEnd;
}

/** What exists for one interface right now. */
export interface PortObservation {
  present: boolean;
  vlan: number | null;
  /** The link the switch has this interface in, per the backend's own records. */
  link: string | null;
  /** Why it forwards or not, where the backend can tell (otherwise: the API's carrier). */
  operState?: OperState;
}

export interface DetachedEndpoint {
  lab: string;
  /** Host-side port (stays on the host). */
  hostPort: string;
  /** The other end, left in the host namespace for someone else (Docker) to move. */
  peerName: string;
  mtu: number;
  /** Marks for ownership, e.g. the plugin's endpoint id. */
  owner: Record<string, string>;
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

export interface NetworkBackend {
  readonly name: BackendName;
  /** The datapath in use (`netdev`, `system`), or null for backends without a switch. */
  readonly datapath: string | null;
  /** Undefined when the capability is supported, otherwise why not. */
  unsupported(cap: Capability): string | undefined;

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

  /** Overlay (capability "overlay"). */
  /** Resolves once committed; with `wait`, once the switch forwards on it. */
  attachOverlay(rec: OverlayRecord, end: LinkEnd, opts?: { wait?: boolean }): Promise<void>;
  detachOverlay(rec: OverlayRecord, end: LinkEnd | undefined): Promise<void>;
  overlayStatus(recs: readonly OverlayRecord[]): TunnelView[];

  /** Docker plugin endpoints (capability "plugin"). */
  /** All or nothing: one kernel batch and one transaction for the lot. */
  createDetached(eps: readonly DetachedEndpoint[]): Promise<void>;
  /** One transaction and one kernel batch; ports and veths already gone are fine. */
  removeDetached(hostPorts: readonly string[]): Promise<void>;

  /** Cleanup: what is orphaned (removes nothing), and removing a list of orphans. */
  audit(ctx: CleanupContext): Promise<Orphan[]>;
  removeOrphans(orphans: readonly Orphan[]): Promise<void>;
}
