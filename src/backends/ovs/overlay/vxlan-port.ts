import type { OverlayRecord } from "../../../model/records.js";
import type { InterfaceRow, PortRow } from "../../../ovsdb/index.js";
import { OWNER } from "../switch/ownership.js";

/**
 * The VXLAN port of an overlay link, as data. Its name follows from the VNI alone
 * (`vxlan<VNI>`, at most 13 characters), so a restarted agent, cleanup and a person reading
 * `ovs-vsctl show` all find it without any other record.
 *
 * `options:dst_port` is left to OVS's default, the IANA port 4789, which every OVS and
 * current Linux agree on (Linux's own `ip link add type vxlan` without `dstport` uses 8472).
 */
export const VXLAN_PREFIX = "vxlan";

export function vxlanPortName(vni: number): string {
  return `${VXLAN_PREFIX}${vni}`;
}

/** The Interface options of the tunnel: both ends and the VNI (`key`). */
export function vxlanOptions(rec: OverlayRecord): Record<string, string> {
  return { remote_ip: rec.remoteIp, local_ip: rec.localIp, key: String(rec.vni) };
}

/** The Port's ownership marks. */
export function vxlanMarks(rec: OverlayRecord): Record<string, string> {
  return {
    [OWNER.kind]: "overlay",
    [OWNER.lab]: rec.lab,
    [OWNER.link]: rec.link,
    [OWNER.vni]: String(rec.vni),
    [OWNER.node]: rec.node,
    [OWNER.iface]: rec.interface,
    [OWNER.created]: String(rec.createdAt),
  };
}

/** Whether an existing port is this record's tunnel (ours, same lab and link). */
export function ownsPort(rec: OverlayRecord, p: PortRow): boolean {
  return (
    p.external_ids[OWNER.kind] === "overlay" &&
    p.external_ids[OWNER.lab] === rec.lab &&
    p.external_ids[OWNER.link] === rec.link
  );
}

/** Whether the Interface is a VXLAN with exactly the record's options (ignoring others we do not set). */
export function sameTunnel(rec: OverlayRecord, i: InterfaceRow | undefined): boolean {
  if (i?.type !== "vxlan") return false;
  const want = vxlanOptions(rec);
  return Object.entries(want).every(([k, v]) => i.options[k] === v);
}

/** Bytes VXLAN over IPv4 adds to a frame: outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8. */
export const VXLAN_OVERHEAD = 50;

/** Dropped and failed packets of an Interface, both directions (`Interface.statistics`). */
export function dropCount(i: InterfaceRow | undefined): number {
  const s = i?.statistics ?? {};
  return (s.tx_dropped ?? 0) + (s.rx_dropped ?? 0) + (s.tx_errors ?? 0) + (s.rx_errors ?? 0);
}

/**
 * Packets lost on an overlay link: those of the VXLAN Interface plus those of the node's access
 * port. The second is where a frame too big for the overlay ends: the host end of the node's
 * veth has the link's MTU, so the kernel drops a bigger frame there (rx_dropped) instead of
 * letting ovs-vswitchd encapsulate it into a packet the underlay cannot carry. Counters run
 * since the interfaces were created.
 */
export function tunnelDrops(tunnel: InterfaceRow | undefined, nodePort: InterfaceRow | undefined): number {
  return dropCount(tunnel) + dropCount(nodePort);
}
