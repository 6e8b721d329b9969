import { pad8 } from "./message.js";

/**
 * `ofp_match` of type OXM (OpenFlow 1.3 section 7.2.2). The agent's flows match on the ingress
 * port only, so this is the one field encoded; other fields of a switch's match are skipped.
 */
export interface Match {
  /** OpenFlow port number of the ingress port; absent matches every packet. */
  inPort?: number;
}

const OFPMT_OXM = 1;
const OFPXMC_OPENFLOW_BASIC = 0x8000;
const OFPXMT_OFB_IN_PORT = 0;

/** The encoded match, padded to 8 bytes. */
export function encodeMatch(m: Match): Buffer {
  const fields = m.inPort === undefined ? 0 : 8;
  const len = 4 + fields;
  const out = Buffer.alloc(pad8(len));
  out.writeUInt16BE(OFPMT_OXM, 0);
  out.writeUInt16BE(len, 2);
  if (m.inPort !== undefined) {
    out.writeUInt32BE(((OFPXMC_OPENFLOW_BASIC << 16) | (OFPXMT_OFB_IN_PORT << 9) | 4) >>> 0, 4);
    out.writeUInt32BE(m.inPort >>> 0, 8);
  }
  return out;
}

/** Decodes a match at `off`; returns it (in_port only) and the padded bytes it took. */
export function decodeMatch(buf: Buffer, off: number): { match: Match; bytes: number } {
  const len = buf.readUInt16BE(off + 2);
  const match: Match = {};
  for (let p = off + 4; p + 4 <= off + len; ) {
    const header = buf.readUInt32BE(p);
    const cls = header >>> 16;
    const field = (header >>> 9) & 0x7f;
    const size = header & 0xff;
    if (cls === OFPXMC_OPENFLOW_BASIC && field === OFPXMT_OFB_IN_PORT && size === 4)
      match.inPort = buf.readUInt32BE(p + 4);
    p += 4 + size;
  }
  return { match, bytes: pad8(len) };
}
