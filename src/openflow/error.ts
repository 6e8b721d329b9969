import { AgentError } from "../common/errors.js";

/** OpenFlow 1.3 error types (ofp_error_type), for messages a person can read. */
const ERROR_TYPES: Record<number, string> = {
  0: "HELLO_FAILED",
  1: "BAD_REQUEST",
  2: "BAD_ACTION",
  3: "BAD_INSTRUCTION",
  4: "BAD_MATCH",
  5: "FLOW_MOD_FAILED",
  6: "GROUP_MOD_FAILED",
  7: "PORT_MOD_FAILED",
  8: "TABLE_MOD_FAILED",
  9: "QUEUE_OP_FAILED",
  10: "SWITCH_CONFIG_FAILED",
  11: "ROLE_REQUEST_FAILED",
  12: "METER_MOD_FAILED",
  13: "TABLE_FEATURES_FAILED",
  65535: "EXPERIMENTER",
};

/** What the switch answered to one message: an ERROR with its type and code. */
export interface SwitchError {
  type: number;
  code: number;
  /** e.g. "BAD_MATCH/3". */
  name: string;
}

export function decodeError(body: Buffer): SwitchError {
  const type = body.length >= 2 ? body.readUInt16BE(0) : -1;
  const code = body.length >= 4 ? body.readUInt16BE(2) : -1;
  return { type, code, name: `${ERROR_TYPES[type] ?? `type ${type}`}/${code}` };
}

/** A batch the switch refused in part: which messages (by index in the batch) and why. */
export class OpenflowRequestError extends AgentError {
  readonly failures: readonly { index: number; error: SwitchError }[];
  constructor(target: string, failures: readonly { index: number; error: SwitchError }[]) {
    const first = failures[0];
    super(
      "OPENFLOW_ERROR",
      `the switch at ${target} refused ${failures.length} OpenFlow message(s); first: #${first?.index} ${first?.error.name}`,
      "this is a bug in archetype-network's flows: please report it with the agent's log",
    );
    this.failures = failures;
  }
}

export const unreachable = (target: string, why: string, cause?: unknown): AgentError =>
  new AgentError(
    "OPENFLOW_UNREACHABLE",
    `OpenFlow connection to ${target} is down: ${why}`,
    "is ovs-vswitchd running and the bridge there? the agent reconnects by itself; retry",
    { cause },
  );

export const timedOut = (target: string, what: string, ms: number): AgentError =>
  new AgentError(
    "OPENFLOW_TIMEOUT",
    `no answer from ${target} to ${what} within ${ms} ms`,
    "is ovs-vswitchd busy or stuck?",
  );
