import { checkU64, type OutputAction } from "./flow-mod.js";
import { decodeMatch, encodeMatch, type Match } from "./match.js";
import { encodeMessage, MessageType } from "./message.js";
import { OFPG_ANY, OFPP_ANY, OFPTT_ALL } from "./ports.js";

/** Multipart flow statistics (OFPMP_FLOW): the flows of a switch with their counters. */
export interface FlowFilter {
  cookie?: bigint;
  /** Which cookie bits must match; default all when `cookie` is given, none otherwise. */
  cookieMask?: bigint;
  tableId?: number;
}

export interface FlowStats {
  tableId: number;
  priority: number;
  cookie: bigint;
  packets: bigint;
  bytes: bigint;
  match: Match;
  /** Output actions of the flow's apply-actions instruction (other actions are not decoded). */
  actions: OutputAction[];
}

const OFPMP_FLOW = 1;
export const OFPMPF_REPLY_MORE = 1;
const OFPIT_APPLY_ACTIONS = 4;
const OFPAT_OUTPUT = 0;

export function encodeFlowStatsRequest(f: FlowFilter, xid: number): Buffer {
  const cookie = f.cookie ?? 0n;
  const mask = f.cookieMask ?? (f.cookie === undefined ? 0n : (1n << 64n) - 1n);
  checkU64(cookie, "cookie");
  checkU64(mask, "cookie mask");
  const body = Buffer.alloc(8 + 32);
  body.writeUInt16BE(OFPMP_FLOW, 0);
  body.writeUInt8(f.tableId ?? OFPTT_ALL, 8);
  body.writeUInt32BE(OFPP_ANY, 12);
  body.writeUInt32BE(OFPG_ANY, 16);
  body.writeBigUInt64BE(cookie, 24);
  body.writeBigUInt64BE(mask, 32);
  return encodeMessage(MessageType.MULTIPART_REQUEST, xid, Buffer.concat([body, encodeMatch({})]));
}

/** The multipart reply's flags (REPLY_MORE: more parts follow) and its flow entries. */
export function decodeFlowStatsReply(body: Buffer): { more: boolean; flows: FlowStats[] } {
  const flags = body.readUInt16BE(2);
  const flows: FlowStats[] = [];
  for (let off = 8; off + 48 <= body.length; ) {
    const len = body.readUInt16BE(off);
    if (len < 48 || off + len > body.length) break;
    const { match, bytes } = decodeMatch(body, off + 48);
    flows.push({
      tableId: body.readUInt8(off + 2),
      priority: body.readUInt16BE(off + 12),
      cookie: body.readBigUInt64BE(off + 24),
      packets: body.readBigUInt64BE(off + 32),
      bytes: body.readBigUInt64BE(off + 40),
      match,
      actions: decodeOutputs(body.subarray(off + 48 + bytes, off + len)),
    });
    off += len;
  }
  return { more: (flags & OFPMPF_REPLY_MORE) !== 0, flows };
}

function decodeOutputs(ins: Buffer): OutputAction[] {
  const out: OutputAction[] = [];
  for (let off = 0; off + 4 <= ins.length; ) {
    const type = ins.readUInt16BE(off);
    const len = ins.readUInt16BE(off + 2);
    if (len < 8 || off + len > ins.length) break;
    if (type === OFPIT_APPLY_ACTIONS) {
      for (let a = off + 8; a + 8 <= off + len; ) {
        const at = ins.readUInt16BE(a);
        const al = ins.readUInt16BE(a + 2);
        if (al < 8) break;
        if (at === OFPAT_OUTPUT && al >= 16) out.push({ output: ins.readUInt32BE(a + 4) });
        a += al;
      }
    }
    off += len;
  }
  return out;
}
