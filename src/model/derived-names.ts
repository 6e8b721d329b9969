/** Names the agent derives: host ports, default link ids, interface groups (the rules for names it takes: names.ts). */
import { createHash } from "node:crypto";
import { type EndRef, formatEnd, isValidId } from "./names.js";

function digest(parts: readonly string[], chars: number): string {
  // base32 without padding keeps names short and safe for the kernel and OVS.
  const h = createHash("sha256").update(parts.join("\0")).digest();
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let out = "";
  for (let i = 0; out.length < chars; i++) out += alphabet[(h[i] ?? 0) & 31];
  return out;
}

/** Prefix of every host-side veth of a lab interface: cleanup knows its own by it. */
export const HOST_PORT_PREFIX = "vh";
/** Prefix of host-side veths of Docker plugin endpoints. */
export const PLUGIN_PORT_PREFIX = "vp";

/**
 * The host-side name of a lab interface: deterministic (a restarted agent finds it again),
 * 13 characters (the kernel allows 15), and distinct across labs with the same node names.
 */
export function hostPortName(lab: string, node: string, iface: string): string {
  return HOST_PORT_PREFIX + digest([lab, node, iface], 11);
}

/**
 * The MAC address of a lab interface inside its node: deterministic, so an interface the agent
 * makes again (its veth deleted by hand, the lab put again after a reboot, the node on another
 * host) keeps the address its neighbours know, as a NIC keeps its own when the cable is re-plugged.
 * Locally administered unicast (02:...), 40 bits of digest.
 */
export function nodeMac(lab: string, node: string, iface: string): string {
  const h = createHash("sha256").update(["mac", lab, node, iface].join("\0")).digest();
  return ["02", ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, "0"))].join(":");
}

/** Host-side names of a Docker plugin endpoint: the port that stays, and the end Docker moves. */
export function pluginPortNames(endpointId: string): { hostPort: string; peer: string } {
  const d = digest([endpointId], 11);
  return { hostPort: `${PLUGIN_PORT_PREFIX}${d}`, peer: `vc${d}` };
}

/** A readable default link id, or a digest when the readable one would not be a valid id. */
export function defaultLinkId(a: EndRef, b: EndRef): string {
  const [x, y] = [formatEnd(a), formatEnd(b)].sort() as [string, string];
  const readable = `${x.replace(":", "-")}--${y.replace(":", "-")}`;
  return isValidId(readable) ? readable : `link-${digest([x, y], 12)}`;
}

/** Kernel interface group of a lab's veths (bulk delete); 0 is the kernel default, avoided. */
export function labGroup(lab: string, taken: ReadonlySet<number>): number {
  let g = 0x10000 + (createHash("sha256").update(lab).digest().readUInt32BE(0) % 0x7fff0000);
  while (taken.has(g)) g++;
  return g;
}
