import type { Readable } from "node:stream";
import type { CarrierState, InterfaceRecord, LinkMode } from "./records.js";
import type {
  Impairment,
  ImpairmentView,
  InterfaceView,
  LabChanges,
  LabSpec,
  LabSummary,
  LabView,
  LinkView,
  NodeInterfacesSpec,
  NodeView,
  OrphanView,
  OverlaySpec,
  TunnelView,
} from "./views.js";

/** What the HTTP API (and through it the CLI) can ask of the agent. Errors are AgentErrors. */
export interface LabOperations {
  listLabs(): LabSummary[];
  /** LAB_NOT_FOUND when unknown. */
  getLab(lab: string): LabView;
  /** Declarative: converge the lab to exactly this (API-made nodes absent from it are removed). */
  putLab(lab: string, spec: LabSpec): Promise<{ lab: LabView; changes: LabChanges }>;
  deleteLab(lab: string): Promise<void>;
  /** Creates the lab if needed; CONFLICT when the node exists with another netns. */
  addInterfaces(lab: string, node: string, spec: NodeInterfacesSpec): Promise<NodeView>;
  /** ALREADY_LINKED (409) when an end is in another link; creates the lab if needed. */
  addLink(lab: string, spec: { a: string; b: string; id?: string; mode?: LinkMode }): Promise<LinkView>;
  listLinks(lab: string): LinkView[];
  removeLink(lab: string, id: string): Promise<void>;
  setCarrier(lab: string, node: string, iface: string, state: CarrierState): Promise<InterfaceView>;
  setLinkCarrier(lab: string, id: string, state: CarrierState): Promise<LinkView>;
}

/**
 * What the Docker plugin asks of a lab service: a container's interface (its veth made by the
 * plugin, on this host) joins a lab as NODE:IF, node origin `plugin`, and the links that name it
 * are wired; it leaves again when the container stops (its links wait for it).
 */
export interface PluginInterfaceOperations {
  /** CONFLICT when NODE is an API node of the lab, or NODE:IF is another endpoint's. */
  adoptPluginInterface(lab: string, node: string, iface: InterfaceRecord): Promise<void>;
  /** Nothing when NODE:IF is not this endpoint's (`hostPort`). */
  releasePluginInterface(lab: string, node: string, ifname: string, hostPort: string): Promise<void>;
  /** This host's plugin interfaces in labs now (a restarted plugin releases those without an endpoint). */
  pluginInterfaces(): { lab: string; node: string; iface: string; hostPort: string }[];
  /** This host's Docker networks' slots, all of them (where other hosts must know them). */
  setPluginSlots(slots: readonly { lab: string; iface: string }[]): Promise<void>;
  labExists(lab: string): boolean;
  /**
   * Where labs can change behind this host's back (another host's agent deletes a lab and puts
   * it again): called after such changes, so the plugin puts its containers back into labs.
   */
  watchLabs?(listener: () => void): () => void;
}

export interface OverlayOperations {
  /** Idempotent for an equal spec; CONFLICT when it clashes with another link. */
  /**
   * Answers once the change is committed to OVSDB; with `wait`, once ovs-vswitchd has created
   * the VXLAN port too (state `pending` until then).
   */
  attach(spec: OverlaySpec, opts?: { wait?: boolean }): Promise<TunnelView>;
  detach(lab: string, link: string): Promise<void>;
  status(): TunnelView[];
}

/** Impairments of links (delay, loss, rate...): stored with the lab, applied with tc. */
export interface ImpairmentOperations {
  /** LAB_NOT_FOUND, LINK_NOT_FOUND; what is asked and what the kernel applies now. */
  get(lab: string, link: string): Promise<ImpairmentView>;
  /**
   * Sets a link's impairment exactly (undefined or {}: none). BAD_REQUEST for a bad field,
   * NOT_SUPPORTED for what the kernel or backend cannot do; either changes nothing.
   */
  set(lab: string, link: string, impairment: Impairment | undefined): Promise<ImpairmentView>;
}

/**
 * What to capture: a link (both directions, on one end), one interface, or an overlay link (its
 * local end: the node interface the tunnel carries, which both directions cross).
 */
export type CaptureTarget =
  | { lab: string; link: string }
  | { lab: string; node: string; iface: string }
  | { lab: string; overlay: string };

export interface CaptureOptions {
  /** Stop after this many packets. */
  count?: number;
  /** Stop after this many seconds. */
  seconds?: number;
  /** A BPF expression (as tcpdump takes it). */
  filter?: string;
}

/** A capture that has started: pcap bytes as they come, until stopped or a limit is reached. */
export interface CaptureHandle {
  /** pcap (tcpdump -w -), both directions of the interface. */
  stream: Readable;
  /** The interface captured, for a file name: `lab-node-if`. */
  name: string;
  /** Ends the capture (the client left); resolves once its helper process has exited. */
  stop(): Promise<void>;
}

export interface CaptureOperations {
  /**
   * Resolves once the capture listens. BAD_REQUEST for a filter that does not compile,
   * TOO_MANY_REQUESTS past the agent's limit, CONFLICT while the interface is absent,
   * OVERLAY_NOT_FOUND for an overlay link that does not exist.
   */
  start(target: CaptureTarget, opts: CaptureOptions): Promise<CaptureHandle>;
  /** Captures running now. */
  active(): number;
}

export interface CleanupOperations {
  audit(): Promise<OrphanView[]>;
  run(): Promise<OrphanView[]>;
}
