import type { Row } from "./cache.js";
import { decodeIntMap, decodeMap, decodeOptional, decodeSet } from "./value.js";

/** Typed, decoded views of the Open_vSwitch tables the agent uses. */
export interface OpenVswitchRow {
  uuid: string;
  bridges: string[];
  cur_cfg: number;
  next_cfg: number;
  ovs_version?: string;
  datapath_types?: string[];
}

export interface BridgeRow {
  uuid: string;
  name: string;
  ports: string[];
  fail_mode?: string;
  datapath_type: string;
  other_config: Record<string, string>;
  external_ids: Record<string, string>;
}

export interface PortRow {
  uuid: string;
  name: string;
  interfaces: string[];
  tag?: number;
  external_ids: Record<string, string>;
  other_config: Record<string, string>;
}

export interface InterfaceRow {
  uuid: string;
  name: string;
  type: string;
  options: Record<string, string>;
  external_ids: Record<string, string>;
  ofport?: number;
  error?: string;
  link_state?: string;
  admin_state?: string;
  /** The device's MAC (an OpenFlow PORT_MOD must name it). */
  mac_in_use?: string;
  mtu?: number;
  mtu_request?: number;
  statistics: Record<string, number>;
  /** BFD configuration (tunnels of overlay links) and what the session sees of the far end. */
  bfd: Record<string, string>;
  bfd_status: Record<string, string>;
}

/** The columns monitored per table: exactly what the views below need. */
export const MONITORED_COLUMNS = {
  Open_vSwitch: ["bridges", "cur_cfg", "next_cfg", "ovs_version", "datapath_types"],
  Bridge: ["name", "ports", "fail_mode", "datapath_type", "other_config", "external_ids"],
  Port: ["name", "interfaces", "tag", "external_ids", "other_config"],
  Interface: [
    "name",
    "type",
    "options",
    "external_ids",
    "ofport",
    "error",
    "link_state",
    "admin_state",
    "mac_in_use",
    "mtu",
    "mtu_request",
    "statistics",
    "bfd",
    "bfd_status",
  ],
} as const satisfies Record<string, readonly string[]>;

export type MonitoredTable = keyof typeof MONITORED_COLUMNS;

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function num(v: unknown): number {
  return typeof v === "number" ? v : 0;
}

export function decodeOpenVswitch(r: Row): OpenVswitchRow {
  const out: OpenVswitchRow = {
    uuid: r._uuid,
    bridges: decodeSet(r.bridges),
    cur_cfg: num(r.cur_cfg),
    next_cfg: num(r.next_cfg),
  };
  const version = decodeOptional<string>(r.ovs_version);
  if (version !== undefined) out.ovs_version = version;
  if (r.datapath_types !== undefined) out.datapath_types = decodeSet(r.datapath_types);
  return out;
}

export function decodeBridge(r: Row): BridgeRow {
  const out: BridgeRow = {
    uuid: r._uuid,
    name: str(r.name),
    ports: decodeSet(r.ports),
    datapath_type: str(r.datapath_type),
    other_config: decodeMap(r.other_config),
    external_ids: decodeMap(r.external_ids),
  };
  const failMode = decodeOptional<string>(r.fail_mode);
  if (failMode !== undefined) out.fail_mode = failMode;
  return out;
}

export function decodePort(r: Row): PortRow {
  const out: PortRow = {
    uuid: r._uuid,
    name: str(r.name),
    interfaces: decodeSet(r.interfaces),
    external_ids: decodeMap(r.external_ids),
    other_config: decodeMap(r.other_config),
  };
  const tag = decodeOptional<number>(r.tag);
  if (tag !== undefined) out.tag = tag;
  return out;
}

export function decodeInterface(r: Row): InterfaceRow {
  const out: InterfaceRow = {
    uuid: r._uuid,
    name: str(r.name),
    type: str(r.type),
    options: decodeMap(r.options),
    external_ids: decodeMap(r.external_ids),
    statistics: decodeIntMap(r.statistics),
    bfd: decodeMap(r.bfd),
    bfd_status: decodeMap(r.bfd_status),
  };
  const ofport = decodeOptional<number>(r.ofport);
  if (ofport !== undefined) out.ofport = ofport;
  const error = decodeOptional<string>(r.error);
  if (error !== undefined) out.error = error;
  const linkState = decodeOptional<string>(r.link_state);
  if (linkState !== undefined) out.link_state = linkState;
  const adminState = decodeOptional<string>(r.admin_state);
  if (adminState !== undefined) out.admin_state = adminState;
  const mac = decodeOptional<string>(r.mac_in_use);
  if (mac !== undefined) out.mac_in_use = mac;
  const mtu = decodeOptional<number>(r.mtu);
  if (mtu !== undefined) out.mtu = mtu;
  const mtuRequest = decodeOptional<number>(r.mtu_request);
  if (mtuRequest !== undefined) out.mtu_request = mtuRequest;
  return out;
}
