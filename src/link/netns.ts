import { stat } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { AgentError } from "../common/errors.js";
import { ipBatch } from "./ip.js";
import { validateNetnsName } from "./names.js";

/** A network namespace: named (`ip netns add`), a bind-mount/proc path, or a process's. */
export type NetnsRef = { name: string } | { path: string } | { pid: number };

export const NETNS_RUN_DIR = "/var/run/netns";

/** The file that holds the namespace; validates the reference. */
export function netnsPath(ref: NetnsRef): string {
  if ("name" in ref) return `${NETNS_RUN_DIR}/${validateNetnsName(ref.name)}`;
  if ("pid" in ref) {
    if (!Number.isSafeInteger(ref.pid) || ref.pid <= 0) {
      throw new AgentError("BAD_REQUEST", `pid ${JSON.stringify(ref.pid)} is not a positive integer`);
    }
    return `/proc/${ref.pid}/ns/net`;
  }
  const p = ref.path;
  if (typeof p !== "string" || !isAbsolute(p) || p.split("/").includes("..")) {
    throw new AgentError(
      "BAD_REQUEST",
      `netns path ${JSON.stringify(p)} must be absolute and must not contain ".."`,
      "give e.g. /var/run/netns/NAME or /proc/PID/ns/net",
    );
  }
  return p;
}

/**
 * What `ip link ... netns X` is given: always the file. ip tries X as a name under
 * /var/run/netns first and as a pid second, so `123` could mean either; a path cannot.
 */
export function netnsArg(ref: NetnsRef): string {
  return netnsPath(ref);
}

export function describeNetns(ref: NetnsRef): string {
  if ("name" in ref) return `netns "${ref.name}"`;
  if ("pid" in ref) return `netns of pid ${ref.pid}`;
  return `netns at ${ref.path}`;
}

/** Checks the namespace file is there, without a subprocess. */
export async function netnsExists(ref: NetnsRef): Promise<boolean> {
  try {
    await stat(netnsPath(ref));
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "ESRCH") return false;
    throw e;
  }
}

export function netnsNotFound(ref: NetnsRef): AgentError {
  return new AgentError(
    "NETNS_NOT_FOUND",
    `${describeNetns(ref)} does not exist`,
    "pid" in ref
      ? "the process has exited: is the container running?"
      : "create it first (ip netns add NAME) or check the container is running",
  );
}

/** API input `{netns: "name" | "/path", pid}` to a reference; exactly one must be given. */
export function parseNetnsRef(input: { netns?: string; pid?: number }): NetnsRef {
  const hasNetns = input.netns !== undefined && input.netns !== "";
  const hasPid = input.pid !== undefined;
  if (hasNetns === hasPid) {
    throw new AgentError(
      "BAD_REQUEST",
      "give exactly one of netns (a name or an absolute path) and pid",
      'e.g. {"netns": "lab1-r1"} or {"netns": "/proc/1234/ns/net"} or {"pid": 1234}',
    );
  }
  const ref: NetnsRef = hasPid
    ? { pid: input.pid as number }
    : input.netns!.startsWith("/")
      ? { path: input.netns! }
      : { name: input.netns! };
  netnsPath(ref);
  return ref;
}

/** Creates named namespaces in one `ip -batch` (tests and benches; the agent uses the node's). */
export async function addNetns(names: string[]): Promise<void> {
  await ipBatch(names.map((n) => ["netns", "add", validateNetnsName(n)]));
}

/** Deletes named namespaces in one `ip -batch`; missing ones are skipped when asked. */
export async function deleteNetns(names: string[], opts: { ignoreMissing?: boolean } = {}): Promise<void> {
  const lines = names.map((n) => ["netns", "delete", validateNetnsName(n)]);
  if (!opts.ignoreMissing) return ipBatch(lines);
  await ipBatch(lines, { force: true, ignore: /No such file or directory|Cannot remove namespace file/ });
}
