import { AgentError } from "../common/errors.js";

/** One failed operation of a transaction. `index` equal to the op count means the commit failed. */
export interface OperationError {
  index: number;
  error: string;
  details?: string;
}

/**
 * A transaction that ovsdb-server rejected. ovsdb-server puts an operation's error at that
 * operation's index; when the commit itself fails (constraint or referential integrity violation)
 * it appends one more element after the results of all operations.
 */
export class OvsdbTransactError extends AgentError {
  readonly errors: OperationError[];

  constructor(errors: OperationError[], opCount: number) {
    const first = errors[0];
    const where =
      first === undefined ? "" : first.index >= opCount ? " (at commit)" : ` (operation ${first.index})`;
    const what =
      first === undefined ? "unknown error" : `${first.error}${first.details ? `: ${first.details}` : ""}`;
    super(
      "OVSDB_ERROR",
      `OVSDB transaction failed${where}: ${what}`,
      "the transaction was not applied; check the operation against the Open_vSwitch schema",
    );
    this.name = "OvsdbTransactError";
    this.errors = errors;
  }
}

export function unreachable(remote: string, reason: string, cause?: unknown): AgentError {
  return new AgentError(
    "OVS_UNREACHABLE",
    `cannot reach ovsdb-server at ${remote}: ${reason}`,
    `is ovsdb-server running and listening on ${remote}? (e.g. \`ovs-appctl -t ovsdb-server ovsdb-server/list-remotes\`)`,
    cause === undefined ? undefined : { cause },
  );
}

export function timeout(what: string, ms: number, hint?: string): AgentError {
  return new AgentError("OVSDB_TIMEOUT", `${what} did not complete within ${ms} ms`, hint);
}

export function protocolError(message: string): AgentError {
  return new AgentError("OVSDB_PROTOCOL", message, "the peer does not speak OVSDB (RFC 7047) as expected");
}
