import type { NetConnectOpts } from "node:net";
import { AgentError } from "./errors.js";

/** The longest path a unix socket address can hold on Linux (sun_path is 108 bytes with NUL). */
const MAX_UNIX_PATH_BYTES = 107;

/** What a remote is for, and an example of each form, for error messages. */
export interface RemoteKind {
  what: string;
  examples: string;
}

export const OVSDB_REMOTE: RemoteKind = {
  what: "OVSDB remote",
  examples: "unix:/var/run/openvswitch/db.sock or tcp:HOST:6640",
};

/**
 * Parses a stream remote in Open vSwitch's syntax (OVSDB remotes, OpenFlow targets):
 * `unix:/path` or `tcp:host:port` (`tcp:[::1]:6640`).
 */
export function parseRemote(remote: string, kind: RemoteKind = OVSDB_REMOTE): NetConnectOpts {
  if (remote.startsWith("unix:")) {
    const path = remote.slice("unix:".length);
    if (path === "") throw invalid(kind, remote, "the socket path is empty");
    if (Buffer.byteLength(path) > MAX_UNIX_PATH_BYTES) {
      throw invalid(kind, remote, `the socket path is longer than ${MAX_UNIX_PATH_BYTES} bytes`);
    }
    return { path };
  }
  if (remote.startsWith("tcp:")) {
    const rest = remote.slice("tcp:".length);
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(rest) ?? /^([^:]+):(\d+)$/.exec(rest);
    const port = m ? Number(m[2]) : Number.NaN;
    if (!m || port < 1 || port > 65535) throw invalid(kind, remote, "expected tcp:HOST:PORT");
    return { host: m[1]!, port };
  }
  throw invalid(kind, remote, "expected unix:/path or tcp:host:port");
}

function invalid(kind: RemoteKind, remote: string, reason: string): AgentError {
  return new AgentError(
    "INVALID_CONFIG",
    `invalid ${kind.what} "${remote}": ${reason}`,
    `use ${kind.examples}`,
  );
}
