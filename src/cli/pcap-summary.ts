/** A one-line summary per frame of a pcap stream, for `archnet capture` in a terminal. */

/** Reads a classic pcap stream chunk by chunk and hands out whole frames. */
export class PcapReader {
  private buf = Buffer.alloc(0);
  private header: { le: boolean; nano: boolean } | undefined;

  /** The frames completed by this chunk. */
  push(chunk: Uint8Array): { ts: number; data: Buffer; length: number }[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (!this.header) {
      if (this.buf.length < 24) return [];
      const magic = this.buf.readUInt32LE(0);
      const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
      const m = le ? magic : this.buf.readUInt32BE(0);
      this.header = { le, nano: m === 0xa1b23c4d };
      this.buf = this.buf.subarray(24);
    }
    const { le, nano } = this.header;
    const u32 = (o: number) => (le ? this.buf.readUInt32LE(o) : this.buf.readUInt32BE(o));
    const out: { ts: number; data: Buffer; length: number }[] = [];
    while (this.buf.length >= 16) {
      const incl = u32(8);
      if (this.buf.length < 16 + incl) break;
      out.push({
        ts: u32(0) + u32(4) / (nano ? 1e9 : 1e6),
        length: u32(12),
        data: Buffer.from(this.buf.subarray(16, 16 + incl)),
      });
      this.buf = this.buf.subarray(16 + incl);
    }
    return out;
  }
}

const mac = (b: Buffer, o: number) =>
  [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, "0")).join(":");
const ipv4 = (b: Buffer, o: number) => [...b.subarray(o, o + 4)].join(".");
function ipv6(b: Buffer, o: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(o + i).toString(16));
  return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}

const ICMP: Record<number, string> = {
  0: "echo reply",
  3: "unreachable",
  8: "echo request",
  11: "time exceeded",
};
const ICMP6: Record<number, string> = {
  128: "echo request",
  129: "echo reply",
  133: "router solicitation",
  134: "router advertisement",
  135: "neighbor solicitation",
  136: "neighbor advertisement",
};

function transport(proto: number, b: Buffer, o: number): string {
  if (o > b.length) return "";
  if (proto === 6 && o + 14 <= b.length) {
    const flags = b[o + 13]!;
    const f = [
      [0x02, "S"],
      [0x10, "."],
      [0x01, "F"],
      [0x04, "R"],
      [0x08, "P"],
    ]
      .filter(([bit]) => flags & (bit as number))
      .map(([, s]) => s)
      .join("");
    return `TCP ${b.readUInt16BE(o)} > ${b.readUInt16BE(o + 2)} [${f}]`;
  }
  if (proto === 17 && o + 4 <= b.length) return `UDP ${b.readUInt16BE(o)} > ${b.readUInt16BE(o + 2)}`;
  if (proto === 1 && o + 8 <= b.length) {
    const t = b[o]!;
    const echo = t === 0 || t === 8 ? ` id ${b.readUInt16BE(o + 4)} seq ${b.readUInt16BE(o + 6)}` : "";
    return `ICMP ${ICMP[t] ?? `type ${t}`}${echo}`;
  }
  if (proto === 58 && o + 1 <= b.length) return `ICMPv6 ${ICMP6[b[o]!] ?? `type ${b[o]}`}`;
  return `proto ${proto}`;
}

/** `12:00:01.123456 02:aa:..:01 > 02:aa:..:02 198.18.0.1 > 198.18.0.2 ICMP echo request id 7 seq 1, 98 bytes` */
export function summarize(frame: { ts: number; data: Buffer; length: number }): string {
  const b = frame.data;
  const d = new Date(frame.ts * 1000);
  const time = `${d.toTimeString().slice(0, 8)}.${String(Math.round((frame.ts % 1) * 1e6) % 1e6).padStart(6, "0")}`;
  if (b.length < 14) return `${time} (short frame), ${frame.length} bytes`;
  let type = b.readUInt16BE(12);
  let o = 14;
  let vlan = "";
  while ((type === 0x8100 || type === 0x88a8) && b.length >= o + 4) {
    vlan += `vlan ${b.readUInt16BE(o) & 0x0fff} `;
    type = b.readUInt16BE(o + 2);
    o += 4;
  }
  let what: string;
  if (type === 0x0800 && b.length >= o + 20) {
    const ihl = (b[o]! & 0x0f) * 4;
    what = `${ipv4(b, o + 12)} > ${ipv4(b, o + 16)} ${transport(b[o + 9]!, b, o + ihl)}`;
  } else if (type === 0x86dd && b.length >= o + 40) {
    what = `${ipv6(b, o + 8)} > ${ipv6(b, o + 24)} ${transport(b[o + 6]!, b, o + 40)}`;
  } else if (type === 0x0806 && b.length >= o + 28) {
    const op = b.readUInt16BE(o + 6);
    what =
      op === 1
        ? `ARP who-has ${ipv4(b, o + 24)} tell ${ipv4(b, o + 14)}`
        : `ARP ${ipv4(b, o + 14)} is-at ${mac(b, o + 8)}`;
  } else if (type === 0x88cc) what = "LLDP";
  else if (type < 0x0600) what = "802.3 (LLC)";
  else what = `ethertype 0x${type.toString(16).padStart(4, "0")}`;
  return `${time} ${mac(b, 6)} > ${mac(b, 0)} ${vlan}${what}, ${frame.length} bytes`;
}
