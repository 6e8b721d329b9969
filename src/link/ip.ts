import { AgentError } from "../common/errors.js";
import { CommandError, DEFAULT_EXEC_TIMEOUT_MS, type ExecResult, run } from "../common/exec.js";
import { describeNetns, type NetnsRef, netnsNotFound, netnsPath } from "./netns.js";

/** One line of `ip -batch` that failed: 0-based index and what ip said about it. */
export interface BatchFailure {
  line: number;
  message: string;
}

/** `ip -batch` stopped: lines before `failedLine` ran, the rest did not (unless `force`). */
export class IpBatchError extends AgentError {
  /** 0-based index of the first failing line; undefined when ip did not say (it exited while parsing). */
  readonly failedLine: number | undefined;
  /** Lines that succeeded before the failure (with force: lines minus failures); undefined when unknown. */
  readonly completed: number | undefined;
  readonly failures: BatchFailure[];
  readonly stderr: string;
  constructor(message: string, failures: BatchFailure[], completed: number | undefined, stderr: string) {
    super("COMMAND_FAILED", message);
    this.name = "IpBatchError";
    this.failures = failures;
    this.failedLine = failures[0]?.line;
    this.completed = completed;
    this.stderr = stderr;
  }
}

export interface IpBatchOptions {
  netns?: NetnsRef;
  timeoutMs?: number;
  /** `ip -force`: keep going after failing lines; every failure is reported. */
  force?: boolean;
  /** With force: failures whose message matches are not errors (e.g. deleting what is already gone). */
  ignore?: RegExp;
}

// `ip -batch` splits on whitespace, honours quotes and `\`, and treats `#` as a comment.
const UNSAFE_ARG = /[\s"'\\]/;

function checkArg(arg: string, line: number): string {
  if (typeof arg !== "string" || arg === "" || UNSAFE_ARG.test(arg) || arg.startsWith("#")) {
    throw new AgentError(
      "BAD_REQUEST",
      `argument ${JSON.stringify(arg)} (batch line ${line + 1}) cannot be passed to ip -batch`,
      "names, aliases and values must be non-empty and contain no whitespace, quotes or backslashes",
    );
  }
  return arg;
}

/** The program and arguments that run `ip ARGS`, inside `netns` when given (nsenter takes paths and pids too). */
export function ipCommand(args: readonly string[], netns?: NetnsRef): [string, string[]] {
  if (!netns) return ["ip", [...args]];
  return ["nsenter", [`--net=${netnsPath(netns)}`, "ip", ...args]];
}

/** Runs `ip ARGS` (inside `netns` when given); a missing namespace becomes NETNS_NOT_FOUND. */
export async function runIp(
  args: readonly string[],
  opts: { netns?: NetnsRef; timeoutMs?: number; input?: string; okCodes?: number[] } = {},
): Promise<ExecResult> {
  const [file, argv] = ipCommand(args, opts.netns);
  try {
    return await run(file, argv, opts);
  } catch (e) {
    throw opts.netns ? nsenterError(e, opts.netns) : e;
  }
}

function nsenterError(e: unknown, netns: NetnsRef): unknown {
  if (!(e instanceof CommandError)) return e;
  if (/^nsenter: cannot open .*No such file or directory/m.test(e.stderr)) return netnsNotFound(netns);
  if (/^nsenter: reassociate to namespace/m.test(e.stderr)) {
    return new AgentError(
      "BAD_REQUEST",
      `${describeNetns(netns)} is not a network namespace: ${e.stderr.trim()}`,
    );
  }
  return e;
}

/** Reads ip's stderr: each failure's messages come before its `Command failed -:N`. */
export function parseBatchFailures(stderr: string): BatchFailure[] {
  const failures: BatchFailure[] = [];
  let pending: string[] = [];
  for (const raw of stderr.split("\n")) {
    const line = raw.trim();
    const m = /^Command failed -:(\d+)$/.exec(line);
    if (m) {
      failures.push({ line: Number(m[1]) - 1, message: pending.join("; ") || "failed" });
      pending = [];
    } else if (line !== "") {
      pending.push(line);
    }
  }
  return failures;
}

/**
 * A batch's deadline grows with its lines: it guards against a hung `ip`, and a batch of
 * hundreds of veths on a busy (or emulated) machine takes longer than one command.
 */
export function batchTimeoutMs(lines: number): number {
  return 2 * DEFAULT_EXEC_TIMEOUT_MS + 500 * lines;
}

/**
 * Runs many `ip` commands in one process (`ip -batch -`, 15-35 ms saved per line).
 * Without `force` ip stops at the first failing line: IpBatchError says which and how many ran.
 */
export async function ipBatch(
  lines: readonly (readonly string[])[],
  opts: IpBatchOptions = {},
): Promise<void> {
  if (lines.length === 0) return;
  const input = `${lines.map((args, i) => args.map((a) => checkArg(a, i)).join(" ")).join("\n")}\n`;
  const flags = opts.force ? ["-force", "-batch", "-"] : ["-batch", "-"];
  try {
    await runIp(flags, {
      netns: opts.netns,
      timeoutMs: opts.timeoutMs ?? batchTimeoutMs(lines.length),
      input,
    });
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    let failures = parseBatchFailures(e.stderr);
    if (failures.length === 0) {
      // ip exits without a line number when it cannot parse a line (e.g. `netns X` it cannot open).
      const arg = /argument "([^"]*)" is wrong/.exec(e.stderr)?.[1];
      const line = arg === undefined ? -1 : lines.findIndex((l) => l.includes(arg));
      if (line >= 0) failures = [{ line, message: e.stderr.trim() }];
    }
    const real = opts.ignore ? failures.filter((f) => !opts.ignore!.test(f.message)) : failures;
    if (failures.length > 0 && real.length === 0) return;
    const where = opts.netns ? ` in ${describeNetns(opts.netns)}` : "";
    const first = real[0];
    const message = first
      ? `ip -batch${where} failed at line ${first.line + 1} (${lines[first.line]?.join(" ")}): ${first.message}`
      : `ip -batch${where} failed: ${e.stderr.trim() || e.message}`;
    const completed =
      first === undefined ? undefined : opts.force ? lines.length - failures.length : first.line;
    throw new IpBatchError(message, real, completed, e.stderr);
  }
}

/** Runs `ip -json ARGS` and parses the output (ip prints nothing for an empty list). */
export async function ipJson<T = unknown>(args: readonly string[], netns?: NetnsRef): Promise<T> {
  const { stdout } = await runIp(["-json", ...args], { netns });
  const text = stdout.trim();
  return (text === "" ? [] : JSON.parse(text)) as T;
}
