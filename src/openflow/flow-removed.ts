import { decodeMatch, type Match } from "./match.js";
import { encodeMessage, MessageType } from "./message.js";

/** A flow the switch removed (OFPT_FLOW_REMOVED), as far as the agent reads it. */
export interface FlowRemoved {
  cookie: bigint;
  priority: number;
  /** 0 idle timeout, 1 hard timeout, 2 deleted by a FLOW_MOD (anyone's), 3 group, 4 meter. */
  reason: number;
  tableId: number;
  match: Match;
}

export const OFPRR_DELETE = 2;

/** cookie u64, priority u16, reason u8, table u8, durations, timeouts, counters, then the match. */
export function decodeFlowRemoved(body: Buffer): FlowRemoved {
  return {
    cookie: body.readBigUInt64BE(0),
    priority: body.readUInt16BE(8),
    reason: body.readUInt8(10),
    tableId: body.readUInt8(11),
    match: decodeMatch(body, 40).match,
  };
}

/**
 * What a service connection (a client of `<bridge>.mgmt`) must send to be told of removed flows:
 * OVS sends it no asynchronous message until it sets a nonzero miss_send_len (SET_CONFIG), and
 * SET_ASYNC then narrows them to flows deleted by a FLOW_MOD (no packet-ins, no port status).
 */
export function encodeFlowRemovedSubscription(): ((xid: number) => Buffer)[] {
  const config = Buffer.alloc(4);
  config.writeUInt16BE(0, 0); // flags: normal fragment handling
  config.writeUInt16BE(0xffff, 2); // miss_send_len (no packet-in is enabled below)
  const async = Buffer.alloc(24); // packet_in[2], port_status[2], flow_removed[2] masks
  async.writeUInt32BE(1 << OFPRR_DELETE, 16);
  async.writeUInt32BE(1 << OFPRR_DELETE, 20);
  return [
    (xid) => encodeMessage(MessageType.SET_CONFIG, xid, config),
    (xid) => encodeMessage(MessageType.SET_ASYNC, xid, async),
  ];
}
