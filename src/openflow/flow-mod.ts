import { AgentError } from "../common/errors.js";
import { encodeMatch, type Match } from "./match.js";
import { encodeMessage, MessageType } from "./message.js";
import { OFPG_ANY, OFPP_ANY, OFPTT_ALL } from "./ports.js";

/**
 * A flow change as plain data, encoded as an OpenFlow 1.3 FLOW_MOD. The agent's flows forward
 * a port's packets to one or more ports (`actions`), or drop them (no actions).
 */
export type FlowCommand = "add" | "delete" | "delete-strict";

export interface OutputAction {
  /** Port number, or a reserved port such as OFPP_NORMAL. */
  output: number;
}

export interface FlowMod {
  command: FlowCommand;
  /** Marks the agent's flows; `delete` matches `cookie & cookieMask`. */
  cookie: bigint;
  /** Only for deletes: which cookie bits must match (default: all). */
  cookieMask?: bigint;
  /** Default 0; `delete` defaults to every table. */
  tableId?: number;
  priority?: number;
  match?: Match;
  actions?: readonly OutputAction[];
  /** The switch reports the flow's removal (FLOW_REMOVED) to connections that asked for it. */
  sendFlowRemoved?: boolean;
}

const COMMAND = { add: 0, delete: 3, "delete-strict": 4 } as const;
const OFPFF_SEND_FLOW_REM = 1;
const OFP_NO_BUFFER = 0xffffffff;
const OFPCML_NO_BUFFER = 0xffff;
const OFPIT_APPLY_ACTIONS = 4;
const OFPAT_OUTPUT = 0;
const U64_MAX = (1n << 64n) - 1n;

export function encodeFlowMod(m: FlowMod, xid: number): Buffer {
  checkU64(m.cookie, "cookie");
  const fixed = Buffer.alloc(40);
  fixed.writeBigUInt64BE(m.cookie, 0);
  // Deletes match the cookie too (all bits unless told), so a delete never hits a foreign flow.
  fixed.writeBigUInt64BE(m.command === "add" ? 0n : (m.cookieMask ?? U64_MAX), 8);
  fixed.writeUInt8(m.tableId ?? (m.command === "delete" ? OFPTT_ALL : 0), 16);
  fixed.writeUInt8(COMMAND[m.command], 17);
  fixed.writeUInt16BE(m.priority ?? 0x8000, 22);
  fixed.writeUInt32BE(OFP_NO_BUFFER, 24);
  fixed.writeUInt32BE(OFPP_ANY, 28);
  fixed.writeUInt32BE(OFPG_ANY, 32);
  fixed.writeUInt16BE(m.sendFlowRemoved ? OFPFF_SEND_FLOW_REM : 0, 36);
  const parts = [fixed, encodeMatch(m.match ?? {})];
  const actions = m.actions ?? [];
  if (m.command === "add" && actions.length > 0) {
    const ins = Buffer.alloc(8 + 16 * actions.length);
    ins.writeUInt16BE(OFPIT_APPLY_ACTIONS, 0);
    ins.writeUInt16BE(ins.length, 2);
    actions.forEach((a, i) => {
      const off = 8 + 16 * i;
      ins.writeUInt16BE(OFPAT_OUTPUT, off);
      ins.writeUInt16BE(16, off + 2);
      ins.writeUInt32BE(a.output >>> 0, off + 4);
      ins.writeUInt16BE(OFPCML_NO_BUFFER, off + 8);
    });
    parts.push(ins);
  }
  return encodeMessage(MessageType.FLOW_MOD, xid, Buffer.concat(parts));
}

export function checkU64(v: bigint, what: string): void {
  if (typeof v !== "bigint" || v < 0n || v > U64_MAX) {
    throw new AgentError("BAD_REQUEST", `OpenFlow ${what} ${String(v)} is not a 64-bit unsigned integer`);
  }
}
