/**
 * OpenFlow 1.3 (wire version 0x04) message header and types: every message starts with
 * `version u8, type u8, length u16, xid u32`, big-endian. Only what the agent uses is named.
 */
export const OFP_VERSION_1_3 = 0x04;
export const HEADER_BYTES = 8;

export const MessageType = {
  HELLO: 0,
  ERROR: 1,
  ECHO_REQUEST: 2,
  ECHO_REPLY: 3,
  FEATURES_REQUEST: 5,
  FEATURES_REPLY: 6,
  SET_CONFIG: 9,
  FLOW_REMOVED: 11,
  FLOW_MOD: 14,
  PORT_MOD: 16,
  MULTIPART_REQUEST: 18,
  MULTIPART_REPLY: 19,
  BARRIER_REQUEST: 20,
  BARRIER_REPLY: 21,
  SET_ASYNC: 28,
} as const;

export interface Message {
  version: number;
  type: number;
  xid: number;
  /** The bytes after the header. */
  body: Buffer;
}

/** A whole message: header (with its length) followed by `body`. */
export function encodeMessage(type: number, xid: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(HEADER_BYTES + body.length);
  out.writeUInt8(OFP_VERSION_1_3, 0);
  out.writeUInt8(type, 1);
  out.writeUInt16BE(out.length, 2);
  out.writeUInt32BE(xid >>> 0, 4);
  body.copy(out, HEADER_BYTES);
  return out;
}

/** Pads a length up to the next multiple of 8 (matches and actions are 8-byte aligned). */
export function pad8(n: number): number {
  return (n + 7) & ~7;
}
