import { CommandError } from "../common/exec.js";
import { validateIfName } from "../model/names.js";
import { ipJson } from "./ip.js";
import type { NetnsRef } from "./netns.js";

/** One network interface as the kernel reports it. */
export interface LinkInfo {
  ifindex: number;
  name: string;
  /** rtnl kind: "veth", "bridge", "vxlan", "openvswitch", ...; absent for plain devices. */
  kind?: string;
  mtu: number;
  /** Interface group: a number, 0 for "default", or a name from /etc/iproute2/group. */
  group: number | string;
  /** Administratively up (`ip link set up`). */
  up: boolean;
  /** Lower layer up: for a veth, false while the other end is down (NO-CARRIER). */
  carrier: boolean;
  operstate: string;
  address?: string;
  alias?: string;
  master?: string;
  /** Id, in this namespace, of the namespace the peer/lower device lives in. */
  linkNetnsId?: number;
  /** For a veth: the peer's ifindex (in its own namespace; by getLink only when that is another one). */
  peerIfindex?: number;
  /** For a veth whose peer is in the same namespace: the peer's name. */
  peer?: string;
  /** Raw `link_index`: the peer (veth) or the lower device (vxlan, macvlan...). */
  linkIndex?: number;
}

interface IpLinkJson {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu: number;
  group?: string;
  operstate?: string;
  address?: string;
  ifalias?: string;
  master?: string;
  link_netnsid?: number;
  link_index?: number;
  /** ip prints the lower/peer device by name instead of link_index when it is in the same namespace. */
  link?: string;
  linkinfo?: { info_kind?: string };
}

function parseGroup(g: string | undefined): number | string {
  if (g === undefined || g === "default") return 0;
  return /^\d+$/.test(g) ? Number(g) : g;
}

export function toLinkInfo(j: IpLinkJson): LinkInfo {
  const flags = j.flags ?? [];
  const kind = j.linkinfo?.info_kind;
  const info: LinkInfo = {
    ifindex: j.ifindex,
    name: j.ifname,
    mtu: j.mtu,
    group: parseGroup(j.group),
    up: flags.includes("UP"),
    carrier: flags.includes("LOWER_UP"),
    operstate: j.operstate ?? "UNKNOWN",
  };
  if (kind !== undefined) info.kind = kind;
  if (j.address !== undefined) info.address = j.address;
  if (j.ifalias !== undefined) info.alias = j.ifalias;
  if (j.master !== undefined) info.master = j.master;
  if (j.link_netnsid !== undefined) info.linkNetnsId = j.link_netnsid;
  if (j.link_index !== undefined) {
    info.linkIndex = j.link_index;
    if (kind === "veth") info.peerIfindex = j.link_index;
  }
  if (kind === "veth" && j.link !== undefined) info.peer = j.link;
  return info;
}

/** All interfaces of a namespace (the agent's own when none is given), in one `ip` process. */
export async function listLinks(netns?: NetnsRef): Promise<LinkInfo[]> {
  const links = (await ipJson<IpLinkJson[]>(["-details", "link", "show"], netns)).map(toLinkInfo);
  const byName = new Map(links.map((l) => [l.name, l]));
  for (const l of links) {
    if (l.peer !== undefined && l.peerIfindex === undefined) l.peerIfindex = byName.get(l.peer)?.ifindex;
  }
  return links;
}

/** One interface, or undefined when there is none by that name. */
export async function getLink(name: string, netns?: NetnsRef): Promise<LinkInfo | undefined> {
  validateIfName(name);
  try {
    const [j] = await ipJson<IpLinkJson[]>(["-details", "link", "show", "dev", name], netns);
    return j && toLinkInfo(j);
  } catch (e) {
    if (e instanceof CommandError && /does not exist/.test(e.stderr)) return undefined;
    throw e;
  }
}
