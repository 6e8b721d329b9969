/** A reader of classic pcap files (what tcpdump -w writes): enough for tests to check frames. */
export interface PcapFrame {
  /** Seconds since the epoch, with microseconds. */
  ts: number;
  data: Buffer;
}

export interface Pcap {
  linkType: number;
  frames: PcapFrame[];
  /** Bytes after the last whole frame (a stream cut mid-frame). */
  rest: number;
}

export function parsePcap(buf: Buffer): Pcap {
  if (buf.length < 24) throw new Error(`a pcap needs a 24-byte header, got ${buf.length} bytes`);
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d)
    throw new Error(`not a pcap (magic ${magic.toString(16)})`);
  const nano = (le ? magic : buf.readUInt32BE(0)) === 0xa1b23c4d;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const frames: PcapFrame[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const len = u32(off + 8);
    if (off + 16 + len > buf.length) break;
    frames.push({
      ts: u32(off) + u32(off + 4) / (nano ? 1e9 : 1e6),
      data: buf.subarray(off + 16, off + 16 + len),
    });
    off += 16 + len;
  }
  return { linkType: u32(20), frames, rest: buf.length - off };
}

export interface IcmpEcho {
  src: string;
  dst: string;
  /** 8 request, 0 reply. */
  type: number;
  id: number;
  seq: number;
}

/** The ICMP echo in an Ethernet frame (IPv4, no VLAN tag), if it is one. */
export function icmpEcho(frame: Buffer): IcmpEcho | undefined {
  if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== 0x0800) return undefined;
  const ip = 14;
  if (frame[ip + 9] !== 1) return undefined;
  const ihl = (frame[ip]! & 0x0f) * 4;
  const icmp = ip + ihl;
  const type = frame[icmp]!;
  if (type !== 0 && type !== 8) return undefined;
  const addr = (o: number) => [...frame.subarray(o, o + 4)].join(".");
  return {
    src: addr(ip + 12),
    dst: addr(ip + 16),
    type,
    id: frame.readUInt16BE(icmp + 4),
    seq: frame.readUInt16BE(icmp + 6),
  };
}
