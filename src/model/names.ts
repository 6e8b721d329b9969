import { AgentError } from "../common/errors.js";

/**
 * The name rules: the one place that says which interface names, netns names, lab/node/link
 * ids and `NODE:IF` ends the agent takes. The validators below and the HTTP API's JSON Schema
 * `pattern`s are built from the same patterns, so the two cannot disagree.
 */

/** Kernel limit: IFNAMSIZ is 16 including the terminating NUL. */
export const IFNAME_MAX = 15;
export const NETNS_NAME_MAX = 64;
export const ID_MAX = 63;

// Interface names: printable ASCII without whitespace, and without what the kernel refuses
// (`/`, `:`), what makes it pick a name (`%`: "eth%d" -> eth0), or what `ip -batch` reads
// differently (`#` starts a comment there, quotes and `\` quote): \x22 " \x23 # \x25 % \x27 '
// \x2f / \x3a : \x5c \ are left out. `.` and `..` are refused by the kernel, `all` and
// `default` too (they are the net.*.conf sysctl directories).
const IFNAME_RESERVED = "\\.|\\.\\.|all|default";
const IFNAME_BODY = `(?!(?:${IFNAME_RESERVED})$)[\\x21\\x24\\x26\\x28-\\x2e\\x30-\\x39\\x3b-\\x5b\\x5d-\\x7e]{1,${IFNAME_MAX}}`;
const ID_BODY = `[A-Za-z0-9][A-Za-z0-9_.-]{0,${ID_MAX - 1}}`;

/** Anchored patterns (ECMAScript, valid with the `u` flag JSON Schema validators use). */
export const IFNAME_PATTERN = `^${IFNAME_BODY}$`;
/** Lab, node and link ids: safe in file names, OVSDB external_ids and URLs. */
export const ID_PATTERN = `^${ID_BODY}$`;
/** `NODE:IF` */
export const END_PATTERN = `^${ID_BODY}:${IFNAME_BODY}$`;
/** Names `ip netns add` takes that are a plain file under /var/run/netns. */
export const NETNS_NAME_PATTERN = `^(?!\\.\\.?$)[A-Za-z0-9_.-]{1,${NETNS_NAME_MAX}}$`;

const IFNAME_RULE = `1-${IFNAME_MAX} printable ASCII characters without whitespace or # % " ' \\ / :, not ".", "..", "all" or "default"`;
const ID_RULE = `1-${ID_MAX} characters from A-Z a-z 0-9 _ . - starting with a letter or digit`;

/** What each pattern asks for, in words: messages that quote a rule (the API's validation errors). */
export const PATTERN_RULES: Readonly<Record<string, string>> = {
  [IFNAME_PATTERN]: `an interface name: ${IFNAME_RULE}`,
  [ID_PATTERN]: ID_RULE,
  [END_PATTERN]: `NODE:IF, e.g. r1:eth1: a node id of ${ID_RULE}, and an interface name of ${IFNAME_RULE}`,
};

const IFNAME = new RegExp(IFNAME_PATTERN, "u");
const ID = new RegExp(ID_PATTERN, "u");
const NETNS_NAME = new RegExp(NETNS_NAME_PATTERN, "u");

function invalid(what: string, name: unknown, why: string, hint: string): AgentError {
  return new AgentError("INVALID_NAME", `${what} ${JSON.stringify(name)} is not valid: ${why}`, hint);
}

/** Which part of the interface name rule a refused name breaks (the pattern decided it is refused). */
function ifnameProblem(name: unknown): string {
  if (typeof name !== "string") return "it must be a string";
  if (name.length === 0) return "it must not be empty";
  if (name.length > IFNAME_MAX) return `it must be at most ${IFNAME_MAX} characters`;
  if (new RegExp(`^(?:${IFNAME_RESERVED})$`).test(name)) return `the kernel reserves "${name}"`;
  if (name.includes("#")) return "it must not contain # (ip -batch reads the rest of the line as a comment)";
  if (/[%"'\\/:]/.test(name)) return "it must not contain % \" ' \\ / or :";
  return "only printable ASCII without whitespace is allowed";
}

/** Returns the name when the kernel (and `ip -batch`) takes it as an interface name. */
export function validateIfName(name: string, what = "interface name"): string {
  if (typeof name === "string" && IFNAME.test(name)) return name;
  throw invalid(what, name, ifnameProblem(name), `use ${IFNAME_RULE}, e.g. eth1 or Ethernet1.10`);
}

/** Returns the name when `ip netns add NAME` accepts it and it is a plain file under /var/run/netns. */
export function validateNetnsName(name: string, what = "netns name"): string {
  if (typeof name === "string" && NETNS_NAME.test(name)) return name;
  const why =
    typeof name !== "string" || name.length === 0
      ? "it must not be empty"
      : name.length > NETNS_NAME_MAX
        ? `it must be at most ${NETNS_NAME_MAX} characters`
        : name === "." || name === ".."
          ? "`.` and `..` are reserved"
          : "only A-Z a-z 0-9 _ . - are allowed";
  throw invalid(what, name, why, `use 1-${NETNS_NAME_MAX} characters from A-Z a-z 0-9 _ . -, e.g. lab1-r1`);
}

export function isValidId(value: unknown): value is string {
  return typeof value === "string" && ID.test(value);
}

export function validateId(value: unknown, what: "lab" | "node" | "link"): string {
  if (isValidId(value)) return value;
  throw new AgentError("INVALID_NAME", `${what} id ${JSON.stringify(value)} is not valid`, `use ${ID_RULE}`);
}

export interface EndRef {
  node: string;
  iface: string;
}

/** `r1:eth1` -> {node:"r1", iface:"eth1"}. */
export function parseEnd(text: unknown): EndRef {
  const [node, iface, ...rest] = typeof text === "string" ? text.split(":") : [];
  if (node === undefined || iface === undefined || rest.length > 0) {
    throw new AgentError("INVALID_NAME", `${JSON.stringify(text)} is not NODE:IF`, "e.g. r1:eth1");
  }
  return { node: validateId(node, "node"), iface: validateIfName(iface) };
}

export function formatEnd(e: EndRef): string {
  return `${e.node}:${e.iface}`;
}
