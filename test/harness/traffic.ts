import assert from "node:assert/strict";
import { spawnStreaming } from "../../src/common/exec.js";
import { assertTestAddress, nsExec } from "./netns.js";

export interface PingOptions {
  count?: number;
  timeoutS?: number;
  /** ICMP payload bytes (`-s`): 8972 fills a 9000-byte MTU. */
  size?: number;
  /** `-M do`: forbid fragmentation, so an MTU too small fails instead of fragmenting. */
  dontFragment?: boolean;
}

/** True iff `ip` answers from inside `ns`; never throws for unreachable or timeouts. */
export async function ping(ns: string, ip: string, opts: PingOptions = {}): Promise<boolean> {
  assertTestAddress(ip);
  const count = opts.count ?? 1;
  const timeoutS = opts.timeoutS ?? 1;
  const args = ["ping", "-n", "-q", "-c", String(count), "-W", String(timeoutS)];
  if (opts.size !== undefined) args.push("-s", String(opts.size));
  if (opts.dontFragment) args.push("-M", "do");
  args.push(ip);
  // ping: 1 = no reply, 2 = other error (e.g. network unreachable).
  const res = await nsExec(ns, args, { okCodes: [1, 2], timeoutMs: (count * timeoutS + 5) * 1000 });
  return res.code === 0;
}

export async function expectPing(ns: string, ip: string, opts: PingOptions = {}): Promise<void> {
  assert.ok(
    await ping(ns, ip, opts),
    `expected ping from netns ${ns} to ${ip} to succeed (${JSON.stringify(opts)})`,
  );
}

export async function expectNoPing(ns: string, ip: string, opts: PingOptions = {}): Promise<void> {
  assert.ok(
    !(await ping(ns, ip, opts)),
    `expected ping from netns ${ns} to ${ip} to fail, but it got replies`,
  );
}

/** How long tcpdump may take to start listening (a loaded machine, an emulated VM). */
const TCPDUMP_START_MS = 60_000;

/** A tcpdump that is listening: what it has written so far, and how to end it. */
export interface Tcpdump {
  /** Everything tcpdump wrote to stdout so far. */
  output(): Buffer;
  /** Resolves once tcpdump has exited by itself (e.g. `-c` reached) and its output is complete. */
  readonly done: Promise<void>;
  /** Ends tcpdump (SIGTERM, then SIGKILL) and resolves its complete output. Safe to call twice. */
  stop(): Promise<Buffer>;
}

/**
 * Starts `tcpdump -i DEV ARGS...` inside `ns` through the project's process door (dies with the
 * test process) and resolves once it reports "listening on", so nothing sent after that is
 * missed. Throws with tcpdump's stderr when it exits or stays silent for `startMs` instead.
 */
export async function startTcpdump(
  ns: string,
  dev: string,
  args: readonly string[],
  startMs = TCPDUMP_START_MS,
): Promise<Tcpdump> {
  const proc = spawnStreaming("ip", ["netns", "exec", ns, "tcpdump", "-i", dev, ...args]);
  const chunks: Buffer[] = [];
  proc.child.stdout.on("data", (d: Buffer) => chunks.push(d));
  // The output is complete once tcpdump exited and its pipe is drained.
  const stdoutClosed = new Promise<void>((r) => proc.child.stdout.on("close", () => r()));
  const done = Promise.all([proc.exited, stdoutClosed]).then(() => {});
  let stderr = "";
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`tcpdump in ${ns} on ${dev} did not start within ${startMs} ms: ${stderr}`)),
      startMs,
    );
    proc.child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d; // read on after it started too: a full pipe must not stop tcpdump
      if (/listening on /.test(stderr)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void proc.exited.then((code) =>
      // What it said before exiting is read first (stderr ends around the exit).
      setImmediate(() => {
        clearTimeout(timer);
        reject(new Error(`tcpdump in ${ns} on ${dev} did not start (${code}): ${stderr.trim()}`));
      }),
    );
  });
  try {
    await listening;
  } catch (e) {
    await proc.stop(200);
    throw e;
  }
  return {
    output: () => Buffer.concat(chunks),
    done,
    stop: async () => {
      await proc.stop();
      await done;
      return Buffer.concat(chunks);
    },
  };
}

export interface CaptureOptions {
  /** Packets to wait for (`tcpdump -c`). */
  count: number;
  /** Give up this long after `fn` has finished and resolve with whatever was captured. */
  timeoutMs: number;
}

/**
 * Runs `fn` while tcpdump listens on `dev` in `ns` (started only once it reports listening), and
 * resolves tcpdump's lines (`-nn -e`: numeric, with MAC addresses) when `count` packets arrived or at timeout.
 * Resolves only once `fn` has finished too, so callers never race their own traffic.
 */
export async function capture(
  ns: string,
  dev: string,
  filter: string | string[],
  fn: () => Promise<unknown>,
  opts: CaptureOptions,
): Promise<string[]> {
  const expr = typeof filter === "string" ? (filter === "" ? [] : [filter]) : filter;
  const tcpdump = await startTcpdump(ns, dev, ["-nn", "-e", "-c", String(opts.count), "-l", ...expr]);
  let out: Buffer;
  try {
    await fn();
    // The wait for packets starts once the traffic was sent: a slow machine (or an emulated VM)
    // may take seconds to start the sender.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([tcpdump.done, new Promise((r) => (timer = setTimeout(r, opts.timeoutMs)))]);
    clearTimeout(timer);
  } finally {
    out = await tcpdump.stop();
  }
  return out
    .toString("utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
}

/**
 * TCP throughput from `clientNs` to an iperf3 server started in `serverNs` on `serverIp` for one
 * test (bits/s received). `iperf3 -D` returns before the server listens: the client retries a
 * refused connection until a deadline instead of the caller sleeping. The first second (slow
 * start, and a busy machine scheduling the sender late) is left out of the figure: a 1 s sample
 * that included it read 8.9 Mbit/s through a 10 Mbit/s shaper on a loaded CI machine.
 */
export async function iperfThroughput(clientNs: string, serverNs: string, serverIp: string): Promise<number> {
  assertTestAddress(serverIp);
  await nsExec(serverNs, ["iperf3", "-s", "-1", "-D", "-B", serverIp]);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await nsExec(clientNs, ["iperf3", "-c", serverIp, "-t", "3", "-O", "1", "-J"], {
      timeoutMs: 60_000,
      okCodes: [1],
    });
    const out = JSON.parse(r.stdout) as {
      error?: string;
      end?: { sum_received?: { bits_per_second: number } };
    };
    if (r.code === 0 && out.end?.sum_received) return out.end.sum_received.bits_per_second;
    if (Date.now() > deadline || !/refused/i.test(out.error ?? ""))
      assert.fail(`iperf3 to ${serverIp}: ${out.error}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}
