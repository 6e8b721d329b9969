/** A network namespace: named (`ip netns add`), a bind-mount/proc path, or a process's. */
export type NetnsRef = { name: string } | { path: string } | { pid: number };

/**
 * Which namespace a reference pointed to when it was checked: device and inode of its nsfs file
 * (the same through every path to it). A pid or path may point elsewhere later; this does not.
 */
export interface NetnsIdentity {
  dev: number;
  ino: number;
}

/**
 * The desired state the agent keeps per lab. It is what the controller declared, not what the
 * kernel or OVS has: reconciliation compares the two and repairs the difference.
 */
export type CarrierState = "up" | "down";

export interface InterfaceRecord {
  /** Name inside the node, e.g. `eth1`. */
  name: string;
  /** Host-side veth name, also the OVS port name. */
  hostPort: string;
  mtu: number;
  carrier: CarrierState;
  /** ms since epoch: cleanup leaves young resources alone. */
  createdAt: number;
}

export interface NodeRecord {
  name: string;
  /** Where the node's interfaces live; undefined for Docker plugin nodes (Docker moves them). */
  netns: NetnsRef | undefined;
  /**
   * The namespace `netns` pointed to when the node was created (pid and path references): once
   * the pid or path points elsewhere the node is lost, and nothing is made there again.
   */
  netnsId?: NetnsIdentity;
  /** `api`: created through the lab API; `plugin`: created by the Docker network plugin. */
  origin: "api" | "plugin";
  interfaces: Record<string, InterfaceRecord>;
}

/**
 * vlan: both ends share a VLAN on the switch (the specification's link; NORMAL forwards, so
 * tagged frames are dropped at the access ports). wire: the switch forwards every frame of one
 * end to the other unchanged (a cable: 802.1Q, QinQ, LLDP, LACP, STP cross).
 */
export type LinkMode = "vlan" | "wire";
export const LINK_MODES: readonly LinkMode[] = ["vlan", "wire"];

export interface LinkRecord {
  id: string;
  /** `NODE:IF` */
  a: string;
  b: string;
  carrier: CarrierState;
  createdAt: number;
  /** Absent in records made before links had modes: vlan. */
  mode?: LinkMode;
  /** Delay, loss, rate... per direction (tc on the host ends); absent: none. */
  impairment?: Impairment;
}

/**
 * What one direction of a link suffers (netem; tbf for a rate alone). Fields that are absent
 * or 0 are not applied; the API's names, as stored.
 */
export interface ImpairmentDirection {
  delay_ms?: number;
  jitter_ms?: number;
  loss_pct?: number;
  corrupt_pct?: number;
  duplicate_pct?: number;
  reorder_pct?: number;
  rate_kbit?: number;
}

/** Both directions of a link: `a_to_b` is what reaches end b from end a. */
export interface Impairment {
  a_to_b?: ImpairmentDirection;
  b_to_a?: ImpairmentDirection;
}

export interface LabRecord {
  lab: string;
  /** Kernel interface group of the lab's host-side veths: bulk teardown in one call. */
  group: number;
  createdAt: number;
  nodes: Record<string, NodeRecord>;
  links: Record<string, LinkRecord>;
}

export interface OverlayRecord {
  lab: string;
  link: string;
  node: string;
  interface: string;
  vni: number;
  localIp: string;
  remoteIp: string;
  mtu: number;
  /** wire: the node's port and the VXLAN port joined by flows (tagged frames cross); absent: vlan. */
  mode?: LinkMode;
  createdAt: number;
}

/** A Docker network of the `archetype-ovs` driver: one interface slot of a lab. */
export interface PluginNetworkRecord {
  networkId: string;
  lab: string;
  interfaceName: string;
  /** MTU of its interfaces (`-o mtu=N`); the agent's local MTU when unset. */
  mtu?: number;
  createdAt: number;
  /** Pre-made veths on the bridge that the next endpoints of this network take. */
  spares?: SpareInterface[];
}

/** A veth made ahead of its endpoint: host end isolated on the bridge, peer ready for Docker. */
export interface SpareInterface {
  hostPort: string;
  peerName: string;
  mtu: number;
  createdAt: number;
}

export interface PluginEndpointRecord {
  endpointId: string;
  networkId: string;
  hostPort: string;
  /** Host-side name of the end Docker moves into the container. */
  peerName: string;
  mtu: number;
  /** The container's name once known: the endpoint is then interface `container:IF` of the lab. */
  node?: string;
  sandboxKey?: string;
  createdAt: number;
}
