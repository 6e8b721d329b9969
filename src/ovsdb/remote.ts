import type { NetConnectOpts } from "node:net";
import { AgentError } from "../common/errors.js";

/** The longest path a unix socket address can hold on Linux (sun_path is 108 bytes with NUL). */
const MAX_UNIX_PATH_BYTES = 107;

/** Parses an OVSDB remote in ovs-vsctl's syntax: `unix:/path` or `tcp:host:port` (`tcp:[::1]:6640`). */
export function parseRemote(remote: string): NetConnectOpts {
  if (remote.startsWith("unix:")) {
    const path = remote.slice("unix:".length);
    if (path === "") throw invalid(remote, "the socket path is empty");
    if (Buffer.byteLength(path) > MAX_UNIX_PATH_BYTES) {
      throw invalid(remote, `the socket path is longer than ${MAX_UNIX_PATH_BYTES} bytes`);
    }
    return { path };
  }
  if (remote.startsWith("tcp:")) {
    const rest = remote.slice("tcp:".length);
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(rest) ?? /^([^:]+):(\d+)$/.exec(rest);
    const port = m ? Number(m[2]) : Number.NaN;
    if (!m || port < 1 || port > 65535) throw invalid(remote, "expected tcp:HOST:PORT");
    return { host: m[1]!, port };
  }
  throw invalid(remote, "expected unix:/path or tcp:host:port");
}

function invalid(remote: string, reason: string): AgentError {
  return new AgentError(
    "INVALID_CONFIG",
    `invalid OVSDB remote "${remote}": ${reason}`,
    "use unix:/var/run/openvswitch/db.sock or tcp:HOST:6640",
  );
}
