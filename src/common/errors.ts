/**
 * Typed errors: a stable code, an HTTP status, a message naming what was involved,
 * and a hint saying what to do. Every failure a user can see is one of these.
 */
export type ErrorCode =
  | "BAD_REQUEST"
  | "INVALID_NAME"
  | "INVALID_VLAN"
  | "INVALID_VNI"
  | "INVALID_IP"
  | "INVALID_CONFIG"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "MISDIRECTED_REQUEST"
  | "LAB_NOT_FOUND"
  | "NODE_NOT_FOUND"
  | "INTERFACE_NOT_FOUND"
  | "LINK_NOT_FOUND"
  | "OVERLAY_NOT_FOUND"
  | "NETNS_NOT_FOUND"
  | "HOST_NOT_FOUND"
  | "NOT_FOUND"
  | "ALREADY_LINKED"
  | "CONFLICT"
  | "VLAN_EXHAUSTED"
  | "TOO_MANY_REQUESTS"
  | "NOT_SUPPORTED"
  | "OVS_UNREACHABLE"
  | "OVSDB_ERROR"
  | "OVSDB_TIMEOUT"
  | "OVSDB_PROTOCOL"
  | "COMMAND_FAILED"
  | "COMMAND_TIMEOUT"
  | "STATE_WRITE_FAILED"
  | "INTERNAL"
  | "METHOD_NOT_ALLOWED"
  | "PAYLOAD_TOO_LARGE"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "OPENFLOW_ERROR"
  | "OPENFLOW_UNREACHABLE"
  | "OPENFLOW_TIMEOUT"
  | "OPENFLOW_PROTOCOL";

const STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  INVALID_NAME: 400,
  INVALID_VLAN: 400,
  INVALID_VNI: 400,
  INVALID_IP: 400,
  INVALID_CONFIG: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  MISDIRECTED_REQUEST: 421,
  LAB_NOT_FOUND: 404,
  NODE_NOT_FOUND: 404,
  INTERFACE_NOT_FOUND: 404,
  LINK_NOT_FOUND: 404,
  OVERLAY_NOT_FOUND: 404,
  NETNS_NOT_FOUND: 404,
  HOST_NOT_FOUND: 404,
  NOT_FOUND: 404,
  ALREADY_LINKED: 409,
  CONFLICT: 409,
  VLAN_EXHAUSTED: 409,
  TOO_MANY_REQUESTS: 429,
  NOT_SUPPORTED: 501,
  OVS_UNREACHABLE: 503,
  OVSDB_ERROR: 500,
  OVSDB_TIMEOUT: 503,
  OVSDB_PROTOCOL: 502,
  COMMAND_FAILED: 500,
  COMMAND_TIMEOUT: 504,
  STATE_WRITE_FAILED: 507,
  INTERNAL: 500,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  OPENFLOW_ERROR: 500,
  OPENFLOW_UNREACHABLE: 503,
  OPENFLOW_TIMEOUT: 503,
  OPENFLOW_PROTOCOL: 502,
};

export class AgentError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AgentError";
    this.code = code;
    this.status = STATUS[code];
    this.hint = hint;
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string } {
    return this.hint === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, hint: this.hint };
  }
}

/** Whether a string (an error's code carried in a store) is one of the agent's codes. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(STATUS, code);
}

export function isAgentError(e: unknown, code?: ErrorCode): e is AgentError {
  return e instanceof AgentError && (code === undefined || e.code === code);
}

/** Wraps anything thrown into an AgentError, keeping typed ones as they are. */
export function toAgentError(e: unknown): AgentError {
  if (e instanceof AgentError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new AgentError("INTERNAL", message, "this is a bug in archetype-network: please report it", {
    cause: e,
  });
}
