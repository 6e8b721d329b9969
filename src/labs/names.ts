import { createHash } from "node:crypto";
import { AgentError } from "../common/errors.js";
import { validateIfName } from "../link/names.js";

/** Lab, node and link ids: safe in file names, OVSDB external_ids and URLs. */
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function validateId(value: unknown, what: "lab" | "node" | "link"): string {
  if (typeof value === "string" && ID.test(value)) return value;
  throw new AgentError(
    "INVALID_NAME",
    `${what} id ${JSON.stringify(value)} is not valid`,
    "use 1-63 characters from A-Z a-z 0-9 _ . - starting with a letter or digit",
  );
}

export interface EndRef {
  node: string;
  iface: string;
}

/** `r1:eth1` -> {node:"r1", iface:"eth1"}. */
export function parseEnd(text: unknown): EndRef {
  const [node, iface, ...rest] = typeof text === "string" ? text.split(":") : [];
  if (node === undefined || iface === undefined || rest.length > 0) {
    throw new AgentError("INVALID_NAME", `link end ${JSON.stringify(text)} is not NODE:IF`, "e.g. r1:eth1");
  }
  return { node: validateId(node, "node"), iface: validateIfName(iface) };
}

export function formatEnd(e: EndRef): string {
  return `${e.node}:${e.iface}`;
}

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

/** Host-side names of a Docker plugin endpoint: the port that stays, and the end Docker moves. */
export function pluginPortNames(endpointId: string): { hostPort: string; peer: string } {
  const d = digest([endpointId], 11);
  return { hostPort: `${PLUGIN_PORT_PREFIX}${d}`, peer: `vc${d}` };
}

/** A readable default link id, or a digest when the readable one would not be a valid id. */
export function defaultLinkId(a: EndRef, b: EndRef): string {
  const [x, y] = [formatEnd(a), formatEnd(b)].sort() as [string, string];
  const readable = `${x.replace(":", "-")}--${y.replace(":", "-")}`;
  return ID.test(readable) ? readable : `link-${digest([x, y], 12)}`;
}

/** Kernel interface group of a lab's veths (bulk delete); 0 is the kernel default, avoided. */
export function labGroup(lab: string, taken: ReadonlySet<number>): number {
  let g = 0x10000 + (createHash("sha256").update(lab).digest().readUInt32BE(0) % 0x7fff0000);
  while (taken.has(g)) g++;
  return g;
}
