import { capability, type NetworkBackend } from "../backends/network-backend.js";
import { AgentError } from "../common/errors.js";
import { spawnStreaming } from "../common/exec.js";
import type { Logger } from "../common/log.js";
import { netnsPath } from "../link/netns.js";
import type { LinkEnd } from "../model/ends.js";
import { parseEnd } from "../model/names.js";
import type { CaptureHandle, CaptureOperations, CaptureOptions, CaptureTarget } from "../model/operations.js";
import type { LabRecord } from "../model/records.js";
import { mustOverlay } from "../overlay/overlay-service.js";
import type { StateStore } from "../state/state-store.js";
import { interfaceNotFound, mustLab, mustLink } from "./lookups.js";

/** The interface a capture target names: its host port, and how errors name it. */
export interface CaptureEnd {
  lab: string;
  node: string;
  iface: string;
  hostPort: string;
  /** e.g. `link l1`, `interface a:eth1` */
  what: string;
}

export interface CaptureServiceDeps {
  /** Finds the interface a target names (the labs' own records: recordEnds, or NB's). */
  resolve: (target: CaptureTarget) => CaptureEnd;
  backend: NetworkBackend;
  logger: Logger;
  /** Captures running at once; more are TOO_MANY_REQUESTS. */
  max: number;
}

/** How long tcpdump may take to open the interface and compile the filter. */
const START_TIMEOUT_MS = 10_000;
export const FILTER_MAX = 1024;
export const COUNT_MAX = 10_000_000;
export const SECONDS_MAX = 86_400;

/**
 * Packet captures as pcap streams: one tcpdump per capture on the interface's host end (both
 * directions cross it; nothing about forwarding changes), started through the agent's process
 * door (dies with the agent), ended when the client leaves, a count or a time is reached.
 * The filter goes to tcpdump as one argument after `--`: tcpdump compiles it before it listens
 * (as `tcpdump -d` would), and one that does not compile is a 400 before any byte is sent.
 */
export class CaptureService implements CaptureOperations {
  private readonly running = new Set<CaptureHandle>();
  /** Slots taken, including captures still starting. */
  private taken = 0;

  constructor(private readonly d: CaptureServiceDeps) {}

  active(): number {
    return this.taken;
  }

  async start(target: CaptureTarget, opts: CaptureOptions): Promise<CaptureHandle> {
    const capture = capability(this.d.backend, "capture"); // 501 before anything is looked up
    validateOptions(opts);
    const end = this.d.resolve(target);
    const point = capture.point(end.hostPort);
    if (!point) {
      throw new AgentError(
        "CONFLICT",
        `${end.what} of lab ${end.lab} has no interface on the host now (pending, or its node is gone)`,
        `see \`archnet lab show ${end.lab}\``,
      );
    }
    if (this.taken >= this.d.max) {
      throw new AgentError(
        "TOO_MANY_REQUESTS",
        `${this.taken} packet captures are running, the agent's limit (ARCHETYPE_AGENT_MAX_CAPTURES=${this.d.max})`,
        "end one, or retry later",
      );
    }
    this.taken++;
    let released = false;
    const release = () => {
      if (!released) this.taken--;
      released = true;
    };
    // --immediate-mode: each frame as it comes (libpcap's default holds them up to 1 s).
    const args = ["-Z", "root", "--immediate-mode", "-U", "-w", "-", "-n", "-s", "262144", "-i", point.dev];
    if (opts.count !== undefined) args.push("-c", String(opts.count));
    args.push("--");
    if (opts.filter !== undefined && opts.filter.trim() !== "") args.push(opts.filter);
    const [file, argv] = point.netns
      ? ["nsenter", [`--net=${netnsPath(point.netns)}`, "tcpdump", ...args]]
      : ["tcpdump", args];
    const proc = spawnStreaming(file, argv);
    void proc.exited.then(release);
    try {
      await listening(proc.child.stderr, proc.exited, opts.filter);
    } catch (e) {
      await proc.stop(200);
      throw e;
    }
    let timer: NodeJS.Timeout | undefined;
    const handle: CaptureHandle = {
      stream: proc.child.stdout,
      name: `${end.lab}-${end.node}-${end.iface}`,
      stop: async () => {
        clearTimeout(timer);
        await proc.stop();
      },
    };
    this.running.add(handle);
    void proc.exited.then(() => {
      clearTimeout(timer);
      this.running.delete(handle);
    });
    if (opts.seconds !== undefined) timer = setTimeout(() => void proc.stop(), opts.seconds * 1000);
    this.d.logger.debug({ lab: end.lab, target: end.what, dev: point.dev, ...opts }, "capture started");
    return handle;
  }

  /** Ends every capture (the agent stops). */
  async close(): Promise<void> {
    await Promise.all([...this.running].map((h) => h.stop()));
  }
}

function validateOptions(opts: CaptureOptions): void {
  const { count, seconds, filter } = opts;
  if (count !== undefined && (!Number.isInteger(count) || count < 1 || count > COUNT_MAX)) {
    throw new AgentError("BAD_REQUEST", `count must be a whole number from 1 to ${COUNT_MAX}, got ${count}`);
  }
  if (seconds !== undefined && (!Number.isFinite(seconds) || seconds <= 0 || seconds > SECONDS_MAX)) {
    throw new AgentError(
      "BAD_REQUEST",
      `seconds must be more than 0 and at most ${SECONDS_MAX}, got ${seconds}`,
    );
  }
  if (filter === undefined) return;
  // Printable ASCII only: what BPF expressions are made of; no option can hide in it (after --).
  if (filter.length > FILTER_MAX || !/^[\x20-\x7e]*$/.test(filter)) {
    throw new AgentError(
      "BAD_REQUEST",
      `filter must be a BPF expression of at most ${FILTER_MAX} printable ASCII characters`,
      "e.g. filter=icmp or filter=tcp port 179",
    );
  }
}

type LocalTarget = Exclude<CaptureTarget, { overlay: string }>;

/** Targets found in the agent's lab records (the ovs and local backends). */
export function recordEnds(store: StateStore): (target: CaptureTarget) => CaptureEnd {
  return (target) => {
    const { local, named } = localTarget(store, target);
    const rec = mustLab(store, target.lab);
    const { end, what } = resolveTarget(rec, local, named);
    return { lab: rec.lab, node: end.node.name, iface: end.iface.name, hostPort: end.iface.hostPort, what };
  };
}

/**
 * An overlay link is captured on its local end, the node interface its tunnel carries (both
 * directions cross its host port); an unknown one is OVERLAY_NOT_FOUND before anything else.
 */
function localTarget(store: StateStore, target: CaptureTarget): { local: LocalTarget; named?: string } {
  if (!("overlay" in target)) return { local: target };
  const o = mustOverlay(store, target.lab, target.overlay);
  return { local: { lab: o.lab, node: o.node, iface: o.interface }, named: `overlay link ${o.link}` };
}

/**
 * The interface a target names: a link's end a (b while a is absent), or NODE:IF (`what` names
 * it in errors: an overlay link's end is the interface its tunnel carries).
 */
function resolveTarget(rec: LabRecord, target: LocalTarget, named?: string): { end: LinkEnd; what: string } {
  const find = (node: string, iface: string): LinkEnd | undefined => {
    const n = Object.hasOwn(rec.nodes, node) ? rec.nodes[node] : undefined;
    const i = n && Object.hasOwn(n.interfaces, iface) ? n.interfaces[iface] : undefined;
    return n && i ? { node: n, iface: i } : undefined;
  };
  if ("link" in target) {
    const link = mustLink(rec, target.link);
    const ends = [link.a, link.b].map((t) => {
      const r = parseEnd(t);
      return find(r.node, r.iface);
    });
    const end = ends[0] ?? ends[1];
    if (!end) {
      throw new AgentError("CONFLICT", `link ${link.id} of lab ${rec.lab} has neither end yet (pending)`);
    }
    return { end, what: `link ${link.id}` };
  }
  const end = find(target.node, target.iface);
  if (!end)
    throw interfaceNotFound(rec.lab, target.node, target.iface, Object.hasOwn(rec.nodes, target.node));
  const what = `interface ${target.node}:${target.iface}`;
  return { end, what: named ? `${named} (${what})` : what };
}

/** Resolves once tcpdump listens (filter compiled, interface open); rejects with why it could not. */
function listening(
  stderr: NodeJS.ReadableStream,
  exited: Promise<number | string>,
  filter: string | undefined,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = "";
    let done = false;
    const finish = (err?: AgentError) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stderr.removeListener("data", onData);
      // Later diagnostics are read and dropped: a full pipe must not stop tcpdump.
      stderr.on("data", () => {});
      if (err) reject(err);
      else resolve();
    };
    const onData = (d: Buffer | string) => {
      text += String(d);
      if (/listening on /.test(text)) finish();
    };
    stderr.on("data", onData);
    const timer = setTimeout(
      () => finish(new AgentError("COMMAND_TIMEOUT", `tcpdump did not start within ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
    void exited.then((code) => {
      // What it said before exiting is read first (stderr ends around the exit).
      setImmediate(() => {
        const said = text
          .split("\n")
          .map((l) => l.replace(/^tcpdump: /, "").trim())
          .filter((l) => l !== "" && !/^listening on|packets? (captured|received|dropped)/.test(l))
          .join("; ");
        if (
          filter !== undefined &&
          /filter|expression|syntax|parse|unknown|illegal|invalid|not supported/i.test(said)
        ) {
          finish(
            new AgentError(
              "BAD_REQUEST",
              `filter ${JSON.stringify(filter)} is not a BPF expression tcpdump compiles: ${said}`,
              "see pcap-filter(7), e.g. filter=icmp or filter=tcp port 179",
            ),
          );
        }
        finish(
          new AgentError(
            "COMMAND_FAILED",
            `tcpdump exited (${code}) before it listened: ${said || "no message"}`,
          ),
        );
      });
    });
  });
}
