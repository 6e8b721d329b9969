import { randomBytes } from "node:crypto";
import { run } from "../../src/common/exec.js";
import { validateIfName } from "../../src/model/names.js";
import { parsePcap } from "./pcap.js";
import { startTcpdump } from "./traffic.js";

/**
 * Raw Ethernet frames for tests that prove a link "behaves like a cable": builders for the frames a
 * cable carries and a switch may not (802.1Q, QinQ, LLDP, LACP, STP), a sender (AF_PACKET from
 * inside a namespace) and a capture that returns the frames' bytes, so a test compares what
 * arrived with what was sent.
 *
 * Every builder takes a `marker`: ASCII bytes put in the payload, so a capture can tell the test's
 * frames from background noise (IPv6 router solicitations, ...) with `carries(marker)`. Frames are
 * padded with zeros to 60 bytes (the Ethernet minimum without FCS).
 */

/** Ethernet's minimum frame without FCS. */
export const MIN_FRAME = 60;
/** The largest frame sendFrames takes (a 9000-byte jumbo frame's size limit). */
export const MAX_FRAME = 9000;
export const BROADCAST = "ff:ff:ff:ff:ff:ff";

/** IEEE 802 local experimental ethertype: the payload type of the test's own frames. */
const ETH_EXPERIMENTAL = 0x88b5;

/** A fresh marker `archnet-LABEL-<8 hex>` (at most 50 bytes, what every builder takes). */
export function newMarker(label: string): string {
  return checkMarker(`archnet-${label}-${randomBytes(4).toString("hex")}`);
}

/** A `match` for captureFrames: the frame carries this marker. */
export function carries(...markers: string[]): (frame: Buffer) => boolean {
  const bufs = markers.map((m) => Buffer.from(checkMarker(m), "ascii"));
  return (f) => bufs.some((m) => f.includes(m));
}

/** An untagged frame of the local experimental ethertype 0x88b5 carrying `marker`. */
export function untagged(src: string, dst: string, marker: string): Buffer {
  return frame(mac(dst), mac(src), u16(ETH_EXPERIMENTAL), ascii(marker));
}

/** An 802.1Q-tagged frame (TPID 0x8100, priority 0) of ethertype 0x88b5 carrying `marker`. */
export function dot1q(src: string, dst: string, vid: number, marker: string): Buffer {
  return frame(mac(dst), mac(src), tag(0x8100, vid), u16(ETH_EXPERIMENTAL), ascii(marker));
}

/** A QinQ frame: outer 802.1ad tag (TPID 0x88a8), inner 802.1Q tag (0x8100), ethertype 0x88b5. */
export function qinq(src: string, dst: string, outerVid: number, innerVid: number, marker: string): Buffer {
  return frame(
    mac(dst),
    mac(src),
    tag(0x88a8, outerVid),
    tag(0x8100, innerVid),
    u16(ETH_EXPERIMENTAL),
    ascii(marker),
  );
}

/**
 * An LLDPDU to the nearest-bridge group address 01:80:c2:00:00:0e (ethertype 0x88cc): chassis ID
 * (the source MAC), port ID (locally assigned "1"), TTL 120, port description `marker`, end.
 */
export function lldp(src: string, marker: string): Buffer {
  const s = mac(src);
  const tlv = (type: number, value: Buffer) => Buffer.concat([u16((type << 9) | value.length), value]);
  return frame(
    mac("01:80:c2:00:00:0e"),
    s,
    u16(0x88cc),
    tlv(1, Buffer.concat([Buffer.from([4]), s])), // chassis ID, subtype 4: MAC address
    tlv(2, Buffer.concat([Buffer.from([7]), ascii("1")])), // port ID, subtype 7: locally assigned
    tlv(3, u16(120)), // TTL
    tlv(4, ascii(marker)), // port description
    u16(0), // end of LLDPDU
  );
}

/**
 * A LACPDU to the slow-protocols address 01:80:c2:00:00:02 (ethertype 0x8809, subtype 1,
 * version 1): an active actor (system = source MAC, key 1, port 1), a default partner, collector
 * max delay 0, terminator, and `marker` at the start of the 50 reserved bytes (110 bytes in all).
 */
export function lacp(src: string, marker: string): Buffer {
  const s = mac(src);
  const info = (type: number, system: Buffer, key: number, port: number, state: number) =>
    Buffer.concat([
      Buffer.from([type, 20]),
      u16(0x8000), // system priority
      system,
      u16(key),
      u16(0x00ff), // port priority
      u16(port),
      Buffer.from([state, 0, 0, 0]), // state, 3 reserved
    ]);
  const reserved = Buffer.alloc(50);
  ascii(marker).copy(reserved);
  return frame(
    mac("01:80:c2:00:00:02"),
    s,
    u16(0x8809),
    Buffer.from([1, 1]), // subtype LACP, version 1
    info(1, s, 1, 1, 0x45), // actor: activity, aggregation, defaulted
    info(2, Buffer.alloc(6), 0, 0, 0), // partner: unknown
    Buffer.concat([Buffer.from([3, 16]), u16(0), Buffer.alloc(12)]), // collector: max delay 0
    Buffer.from([0, 0]), // terminator
    reserved,
  );
}

/**
 * An STP configuration BPDU to 01:80:c2:00:00:00: an 802.3 length field, LLC 42 42 03, the
 * 35-byte BPDU (this bridge is root: priority 32768 + source MAC, hello 2 s, max age 20 s,
 * forward delay 15 s), then `marker` (counted in the length; the padding is not).
 */
export function stp(src: string, marker: string): Buffer {
  const s = mac(src);
  const bridgeId = Buffer.concat([u16(0x8000), s]);
  const seconds = (n: number) => u16(n * 256); // BPDU times are in 1/256 s
  const llcAndBpdu = Buffer.concat([
    Buffer.from([0x42, 0x42, 0x03]), // LLC: DSAP, SSAP, UI
    Buffer.from([0, 0, 0, 0, 0]), // protocol 0, version 0, type 0 (configuration), flags 0
    bridgeId, // root
    Buffer.alloc(4), // root path cost
    bridgeId, // bridge
    u16(0x8001), // port
    seconds(0), // message age
    seconds(20), // max age
    seconds(2), // hello time
    seconds(15), // forward delay
    ascii(marker),
  ]);
  return frame(mac("01:80:c2:00:00:00"), s, u16(llcAndBpdu.length), llcAndBpdu);
}

export interface FrameKind {
  name: "dot1q" | "qinq" | "lldp" | "lacp" | "stp";
  /** The marker inside `frame`: `carries(marker)` finds it in a capture. */
  marker: string;
  frame: Buffer;
}

/**
 * The five frames a cable carries and VLAN access ports or a bridge may not, from `src` with a
 * fresh marker each: 802.1Q (VID 100) and QinQ (outer 200, inner 201) to `dst`, LLDP, LACP and
 * STP to their reserved group addresses.
 */
export function frameKinds(src: string, dst = BROADCAST): FrameKind[] {
  const kind = (name: FrameKind["name"], build: (m: string) => Buffer): FrameKind => {
    const marker = newMarker(name);
    return { name, marker, frame: build(marker) };
  };
  return [
    kind("dot1q", (m) => dot1q(src, dst, 100, m)),
    kind("qinq", (m) => qinq(src, dst, 200, 201, m)),
    kind("lldp", (m) => lldp(src, m)),
    kind("lacp", (m) => lacp(src, m)),
    kind("stp", (m) => stp(src, m)),
  ];
}

/** Sends each frame once, in order, from one AF_PACKET socket bound to argv[1]; hex frames on stdin. */
const SEND_PY = [
  "import socket,sys",
  "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)",
  "s.bind((sys.argv[1],0))",
  "for line in sys.stdin.read().split():",
  "  f=bytes.fromhex(line)",
  "  n=s.send(f)",
  "  if n!=len(f): sys.exit('sent %d of %d bytes' % (n,len(f)))",
].join("\n");

/**
 * Sends `frames` raw (as they are: no padding, no tag handling) out of `dev` inside netns `ns`,
 * in order, through /usr/bin/python3's AF_PACKET socket. The frames go to python on stdin, not
 * as arguments, so many jumbo frames never hit the argument size limit. Throws for no frames, a
 * frame shorter than an Ethernet header or longer than 9000 bytes, a device name the kernel
 * would refuse, and when python fails (no such device, frame above the device's MTU).
 */
export async function sendFrames(ns: string, dev: string, frames: readonly Buffer[]): Promise<void> {
  validateIfName(dev, "device");
  if (ns === "" || ns.includes("/")) throw new Error(`bad netns name ${JSON.stringify(ns)}`);
  if (frames.length === 0) throw new Error("sendFrames needs at least one frame");
  for (const [i, f] of frames.entries()) {
    if (f.length < 14 || f.length > MAX_FRAME)
      throw new Error(`frame ${i} is ${f.length} bytes: frames are 14 to ${MAX_FRAME} bytes`);
  }
  await run("ip", ["netns", "exec", ns, "/usr/bin/python3", "-c", SEND_PY, dev], {
    input: frames.map((f) => f.toString("hex")).join("\n"),
    timeoutMs: 15_000 + 10 * frames.length,
  });
}

export interface CaptureFramesOptions {
  /** Matching frames to wait for; without it the capture lasts until the deadline. */
  count?: number;
  /** How long to wait for them after `fn` has finished. Default 5000 ms. */
  timeoutMs?: number;
  /** Which frames count and are returned, e.g. `carries(marker)`. Default: all. */
  match?: (frame: Buffer) => boolean;
}

/**
 * Captures frames on `dev` inside `ns` while `fn` runs: tcpdump (`-w -`, unbuffered, whole
 * frames) is listening before `fn` starts; then waits until `count` matching frames arrived or
 * `timeoutMs` passed, stops tcpdump and returns the matching frames' bytes in arrival order
 * (possibly more than `count`). tcpdump is stopped when `fn` throws too.
 *
 * On Linux a VLAN tag the receiving device moved into the packet's metadata (VLAN offload) is put
 * back in place by libpcap: the bytes are the frame as it was on the wire.
 */
export async function captureFrames(
  ns: string,
  dev: string,
  fn: () => Promise<unknown>,
  opts: CaptureFramesOptions = {},
): Promise<Buffer[]> {
  validateIfName(dev, "device");
  const { count, timeoutMs = 5000, match = () => true } = opts;
  if (count !== undefined && (!Number.isInteger(count) || count < 1))
    throw new Error(`count must be a whole number above 0, got ${count}`);
  const tcpdump = await startTcpdump(ns, dev, ["--immediate-mode", "-U", "-n", "-s", "262144", "-w", "-"]);
  const matching = (out: Buffer): Buffer[] => {
    if (out.length < 24) return []; // no pcap header yet
    const pcap = parsePcap(out);
    if (pcap.linkType !== 1)
      throw new Error(`${dev} in ${ns} is not Ethernet (pcap link type ${pcap.linkType})`);
    return pcap.frames.map((f) => Buffer.from(f.data)).filter(match);
  };
  let out: Buffer;
  try {
    await fn();
    let gone = false; // tcpdump ended early (its device went away): nothing more will come
    void tcpdump.done.then(() => (gone = true));
    const deadline = Date.now() + timeoutMs;
    while (
      !gone &&
      Date.now() < deadline &&
      (count === undefined || matching(tcpdump.output()).length < count)
    )
      await new Promise((r) => setTimeout(r, 10));
  } finally {
    out = await tcpdump.stop();
  }
  return matching(out);
}

function checkMarker(marker: string): string {
  if (!/^[\x21-\x7e]{1,50}$/.test(marker))
    throw new Error(`a marker is 1 to 50 printable ASCII characters, got ${JSON.stringify(marker)}`);
  return marker;
}

function ascii(marker: string): Buffer {
  return Buffer.from(checkMarker(marker), "ascii");
}

function mac(s: string): Buffer {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(s)) throw new Error(`bad MAC address ${JSON.stringify(s)}`);
  return Buffer.from(s.replaceAll(":", ""), "hex");
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function tag(tpid: number, vid: number): Buffer {
  if (!Number.isInteger(vid) || vid < 0 || vid > 4095) throw new Error(`bad VLAN id ${vid}`);
  return Buffer.concat([u16(tpid), u16(vid)]);
}

/** The parts in order, padded with zeros to MIN_FRAME. */
function frame(...parts: Buffer[]): Buffer {
  const f = Buffer.concat(parts);
  return f.length >= MIN_FRAME ? f : Buffer.concat([f, Buffer.alloc(MIN_FRAME - f.length)]);
}

/**
 * Sends the five kinds from `from`'s eth1, then an untagged fence frame that any link carries
 * (once it is in, the others had their chance), capturing on `to`'s eth1; returns the names of
 * the kinds that arrived byte-identical. Fails when the fence does not arrive (the link is down).
 */
export async function kindsCrossing(from: string, to: string, timeoutMs = 10_000): Promise<string[]> {
  const src = "02:00:00:00:0a:01";
  const kinds = frameKinds(src);
  const fence = newMarker("fence");
  const got = await captureFrames(
    to,
    "eth1",
    async () => {
      await sendFrames(
        from,
        "eth1",
        kinds.map((k) => k.frame),
      );
      await sendFrames(from, "eth1", [untagged(src, BROADCAST, fence)]);
    },
    { match: carries(fence, ...kinds.map((k) => k.marker)), count: kinds.length + 1, timeoutMs },
  );
  if (!got.some(carries(fence)))
    throw new Error(`the untagged fence frame did not reach ${to}: the link is not up`);
  return kinds.filter((k) => got.some((f) => f.equals(k.frame))).map((k) => k.name);
}
