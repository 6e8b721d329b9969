import { OFP_VERSION_1_3 } from "./message.js";

/** HELLO element carrying the versions a side speaks (OpenFlow 1.3.1+, section 7.5.1). */
const OFPHET_VERSIONBITMAP = 1;

/** A HELLO body that offers exactly OpenFlow 1.3: the only version this client encodes. */
export function helloBody(): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(OFPHET_VERSIONBITMAP, 0);
  b.writeUInt16BE(8, 2);
  b.writeUInt32BE(1 << OFP_VERSION_1_3, 4);
  return b;
}

/**
 * The version both sides speak, given the peer's HELLO: with bitmaps, the highest common bit;
 * without, the lower of the two header versions (OpenFlow's original rule). Undefined: none.
 */
export function negotiate(peerVersion: number, peerBody: Buffer): number | undefined {
  const ours = 1 << OFP_VERSION_1_3;
  for (let off = 0; off + 4 <= peerBody.length; ) {
    const type = peerBody.readUInt16BE(off);
    const len = peerBody.readUInt16BE(off + 2);
    if (len < 4 || off + len > peerBody.length) break;
    if (type === OFPHET_VERSIONBITMAP && len >= 8) {
      const theirs = peerBody.readUInt32BE(off + 4);
      return (theirs & ours) !== 0 ? OFP_VERSION_1_3 : undefined;
    }
    off += (len + 7) & ~7;
  }
  return peerVersion >= OFP_VERSION_1_3 ? OFP_VERSION_1_3 : undefined;
}
