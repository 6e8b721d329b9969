import { AgentError } from "../common/errors.js";

/** Kernel limit: IFNAMSIZ is 16 including the terminating NUL. */
export const IFNAME_MAX = 15;
export const NETNS_NAME_MAX = 64;

const PRINTABLE = /^[\x21-\x7e]+$/;
// `%` makes the kernel pick a name ("eth%d" -> eth0); quotes and `\` cannot travel through `ip -batch`.
const IFNAME_FORBIDDEN = /[/:%"'\\]/;
const NETNS_NAME = /^[A-Za-z0-9_.-]+$/;

function invalid(what: string, name: unknown, rule: string): AgentError {
  return new AgentError(
    "INVALID_NAME",
    `${what} ${JSON.stringify(name)} is not valid: ${rule}`,
    "use 1-15 characters from letters, digits, `-`, `_` and `.`, e.g. eth1 or veth-a1b2",
  );
}

/** Returns the name when the kernel (and `ip -batch`) can take it as an interface name. */
export function validateIfName(name: string, what = "interface name"): string {
  if (typeof name !== "string" || name.length === 0) throw invalid(what, name, "it must not be empty");
  if (name.length > IFNAME_MAX) throw invalid(what, name, `it must be at most ${IFNAME_MAX} characters`);
  if (name === "." || name === "..") throw invalid(what, name, "`.` and `..` are reserved");
  if (!PRINTABLE.test(name)) throw invalid(what, name, "only printable ASCII without whitespace is allowed");
  if (IFNAME_FORBIDDEN.test(name)) throw invalid(what, name, "it must not contain / : % \" ' or \\");
  return name;
}

/** Returns the name when `ip netns add NAME` accepts it and it is a plain file under /var/run/netns. */
export function validateNetnsName(name: string, what = "netns name"): string {
  const rule = `use 1-${NETNS_NAME_MAX} characters from A-Z a-z 0-9 _ . -`;
  if (typeof name !== "string" || name.length === 0) throw invalid(what, name, "it must not be empty");
  if (name.length > NETNS_NAME_MAX)
    throw invalid(what, name, `it must be at most ${NETNS_NAME_MAX} characters`);
  if (name === "." || name === "..") throw invalid(what, name, "`.` and `..` are reserved");
  if (!NETNS_NAME.test(name)) throw invalid(what, name, rule);
  return name;
}
