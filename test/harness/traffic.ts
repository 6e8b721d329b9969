import assert from "node:assert/strict";
import { spawn } from "node:child_process";
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

export interface CaptureOptions {
  /** Packets to wait for (`tcpdump -c`). */
  count: number;
  /** Give up this long after `fn` has finished and resolve with whatever was captured. */
  timeoutMs: number;
}

/**
 * Runs `fn` while tcpdump listens on `dev` in `ns` (started only once it reports listening), and
 * resolves tcpdump's lines (`-nn -e`: numeric, with MAC addresses) when `count` packets arrived or at timeout.
 */
export function capture(
  ns: string,
  dev: string,
  filter: string | string[],
  fn: () => Promise<unknown>,
  opts: CaptureOptions,
): Promise<string[]> {
  const expr = typeof filter === "string" ? (filter === "" ? [] : [filter]) : filter;
  const args = [
    "netns",
    "exec",
    ns,
    "tcpdump",
    "-i",
    dev,
    "-nn",
    "-e",
    "-c",
    String(opts.count),
    "-l",
    ...expr,
  ];
  return new Promise((resolve, reject) => {
    // spawn, not run(): we must act while tcpdump is still running.
    const child = spawn("ip", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let started = false;
    let fnDone: Promise<unknown> = Promise.resolve();
    let closed = false;
    const stop = () => child.kill("SIGTERM");
    // The wait for packets starts once the traffic was sent: a slow machine (or an emulated VM)
    // may take seconds to start the sender. Until then only tcpdump's own start is bounded.
    let timer = setTimeout(stop, TCPDUMP_START_MS);
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      if (!started && /listening on/.test(stderr)) {
        started = true;
        clearTimeout(timer);
        fnDone = fn().then(
          (v) => {
            if (!closed) timer = setTimeout(stop, opts.timeoutMs);
            return v;
          },
          (e: unknown) => {
            stop();
            throw e;
          },
        );
        fnDone.catch(() => {}); // handled at close; avoids an unhandled-rejection warning meanwhile
      }
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      closed = true;
      clearTimeout(timer);
      if (!started)
        return reject(new Error(`tcpdump in ${ns} on ${dev} did not start (${code ?? signal}): ${stderr}`));
      // Resolve only once fn has finished too, so callers never race their own traffic.
      fnDone.then(() => resolve(stdout.split("\n").filter((l) => l.trim() !== "")), reject);
    });
  });
}

/**
 * TCP throughput from `clientNs` to an iperf3 server started in `serverNs` on `serverIp` for one
 * test (bits/s received). `iperf3 -D` returns before the server listens: the client retries a
 * refused connection until a deadline instead of the caller sleeping.
 */
export async function iperfThroughput(clientNs: string, serverNs: string, serverIp: string): Promise<number> {
  assertTestAddress(serverIp);
  await nsExec(serverNs, ["iperf3", "-s", "-1", "-D", "-B", serverIp]);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await nsExec(clientNs, ["iperf3", "-c", serverIp, "-t", "1", "-J"], {
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
