import type { CarrierState } from "./records.js";
import type {
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
  addLink(lab: string, spec: { a: string; b: string; id?: string }): Promise<LinkView>;
  listLinks(lab: string): LinkView[];
  removeLink(lab: string, id: string): Promise<void>;
  setCarrier(lab: string, node: string, iface: string, state: CarrierState): Promise<InterfaceView>;
  setLinkCarrier(lab: string, id: string, state: CarrierState): Promise<LinkView>;
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

export interface CleanupOperations {
  audit(): Promise<OrphanView[]>;
  run(): Promise<OrphanView[]>;
}
