/**
 * What the agent answers about labs, in the contract's JSON shapes (snake_case, see
 * shared/spec/api.md). The API's TypeBox schemas describe exactly these.
 */
import type { CarrierState, Impairment, ImpairmentDirection, LinkMode } from "./records.js";

export type { Impairment, ImpairmentDirection };

export type LinkState = "up" | "down" | "pending";

/**
 * Why an interface forwards or not: `admin_down` the API pulled its cable, `peer_down` its link
 * peer is down (the agent holds this end down too), `no_carrier` its own node has it down.
 */
export type OperState = "up" | "admin_down" | "peer_down" | "no_carrier";

export interface InterfaceView {
  name: string;
  host_port: string;
  mtu: number;
  /** The access VLAN of the host port now (isolated, or the link's); null when the backend has none. */
  vlan: number | null;
  carrier: CarrierState;
  oper_state: OperState;
  /** Whether the interface exists on the host right now. */
  present: boolean;
  link: string | null;
  /** ovn backend: the chassis the interface's node runs on. */
  host?: string;
  /** ovn backend: where OVN has bound the interface's logical port (SB Port_Binding). */
  binding?: { chassis: string | null; up: boolean };
  /** Why it does not forward though its cable is in (ovn: its host, or its peer's, is gone). */
  reason?: string;
}

export interface NodeView {
  name: string;
  /** Netns name or path, `pid:N`, or null for Docker plugin nodes. */
  netns: string | null;
  origin: "api" | "plugin";
  /** lost: its namespace is gone, or its pid or path points to another one now (see reason). */
  state: "ok" | "lost";
  reason?: string;
  /** ovn backend: the chassis the node runs on. */
  host?: string;
  interfaces: InterfaceView[];
}

export interface LinkView {
  id: string;
  a: string;
  b: string;
  mode: LinkMode;
  /** The VLAN joining the ends (vlan links); null for a wire and while pending. */
  vlan: number | null;
  /** up: both ends exist and are joined; pending: an end does not exist yet; down: carrier down (or see reason). */
  state: LinkState;
  /** Why it is down other than a pulled cable (ovn: an end's host is gone). */
  reason?: string;
  /** Delay, loss, rate... per direction; absent when none. */
  impairment?: Impairment;
  /** Per end, from the node's side; absent where the backend counts nothing (see InterfaceCounters). */
  counters?: { a: InterfaceCounters | null; b: InterfaceCounters | null };
}

/**
 * An interface's counters from its node's side (rx: what reached the node), as the switch counts
 * them on the host end (OVS refreshes them every 5 s); null while the interface is absent.
 */
export interface InterfaceCounters {
  rx_packets: number;
  tx_packets: number;
  rx_bytes: number;
  tx_bytes: number;
  rx_dropped: number;
  tx_dropped: number;
  rx_errors: number;
  tx_errors: number;
}

/** `GET /labs/{lab}/links/{id}/impairment`: what is asked, and what the kernel applies now. */
export interface ImpairmentView {
  lab: string;
  id: string;
  a: string;
  b: string;
  /** What is asked, per direction ({}: nothing). */
  a_to_b: ImpairmentDirection;
  b_to_a: ImpairmentDirection;
  /** Read back from tc on the host ends now; null while the link is pending (an end is absent). */
  applied: { a_to_b: ImpairmentDirection; b_to_a: ImpairmentDirection } | null;
  /** Whether what is applied is what is asked (the agent's reconcile repairs a difference). */
  in_sync: boolean;
}

export interface LabView {
  lab: string;
  nodes: NodeView[];
  links: LinkView[];
  /** Why the agent could not converge the lab (it keeps trying); absent when it could. */
  reconcile_error?: string;
}

export interface LabSummary {
  lab: string;
  nodes: number;
  links: number;
}

/** What a declarative PUT changed. */
export interface LabChanges {
  nodes_added: string[];
  nodes_removed: string[];
  interfaces_added: string[];
  interfaces_removed: string[];
  links_added: string[];
  links_removed: string[];
  /** Overlay links (ids) detached because their interface left the lab. */
  overlays_detached: string[];
  /** Links (ids) kept whose impairment was set, changed or cleared. */
  impairments_changed: string[];
}

/** Body of `PUT /labs/{lab}`. */
export interface LabSpec {
  nodes: {
    name: string;
    netns?: string;
    pid?: number;
    /** ovn backend: the chassis the node runs on; absent: the agent's own host. */
    host?: string;
    interfaces: { name: string; mtu?: number }[];
  }[];
  links: { a: string; b: string; id?: string; mode?: LinkMode; impairment?: Impairment }[];
}

/** Body of `POST /labs/{lab}/nodes/{node}/interfaces`. */
export interface NodeInterfacesSpec {
  netns?: string;
  pid?: number;
  interfaces: { name: string; mtu?: number }[];
}

export interface OverlaySpec {
  lab: string;
  link: string;
  node: string;
  interface: string;
  vni: number;
  local_ip: string;
  remote_ip: string;
  mtu?: number;
  /** wire: a cable across hosts (attach both ends as wires); default ARCHETYPE_AGENT_LINK_MODE. */
  mode?: LinkMode;
}

export interface TunnelView {
  lab: string;
  link: string;
  mode: LinkMode;
  vni: number;
  vlan: number | null;
  port: string;
  local_ip: string;
  remote_ip: string;
  node: string;
  interface: string;
  mtu: number;
  /**
   * `pending`: committed, ovs-vswitchd is still creating the VXLAN port (tens of ms); `error`:
   * ovs-vswitchd could not create it (see `error`); `missing`: the VXLAN port or the node's port
   * is not on the bridge; otherwise the VXLAN port's link state.
   */
  state: "up" | "down" | "pending" | "error" | "missing";
  /** Why ovs-vswitchd could not create the VXLAN port (state `error`). */
  error?: string;
  rx_packets: number;
  tx_packets: number;
  rx_bytes: number;
  tx_bytes: number;
  /** Packets the switch dropped on this tunnel (e.g. too big for the underlay). */
  drops: number;
}

export interface SwitchPortView {
  name: string;
  vlan: number | null;
  lab: string | null;
  node: string | null;
  interface: string | null;
  link: string | null;
  ofport: number | null;
  link_state: string | null;
  type: string;
  rx_packets: number;
  tx_packets: number;
  rx_bytes: number;
  tx_bytes: number;
}

export interface SwitchStatusView {
  backend: string;
  bridge: string | null;
  fail_mode: string | null;
  datapath: string | null;
  connected: boolean;
  ports: SwitchPortView[];
}

export interface OrphanView {
  /** logical_switch: ovn backend, a switch in OVN's northbound database (its ports go with it). */
  kind: "veth" | "port" | "overlay_port" | "plugin_endpoint" | "state" | "logical_switch";
  name: string;
  reason: string;
}
