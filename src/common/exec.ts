import { type ChildProcessByStdio, execFile, spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { AgentError } from "./errors.js";
import { CHILD_MARK, selfIdentity } from "./orphaned-children.js";

/**
 * The one door through which the agent runs external programs: never a shell, always an
 * argument array and a timeout, and the program's stderr in the error.
 */
export interface ExecOptions {
  timeoutMs?: number;
  /** Written to the program's stdin (e.g. `ip -batch -`). */
  input?: string;
  /** Accept these exit codes as success besides 0. */
  okCodes?: number[];
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export const DEFAULT_EXEC_TIMEOUT_MS = 15_000;

/**
 * Every program dies with the agent: util-linux's setpriv (essential in Debian, like nsenter)
 * sets PR_SET_PDEATHSIG=SIGKILL and execs it, ~1 ms more per spawn. The signal follows the
 * thread that forked, and libuv forks on the thread calling spawn: the main thread, which
 * lives as long as the process (run() is not for worker threads).
 */
const DIE_WITH_AGENT = ["--pdeathsig", "KILL", "--"];
/** What setpriv says (exit 127) when the program itself is missing. */
const NOT_FOUND = /^setpriv: failed to execute .*: No such file or directory$/m;

export function run(file: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeout = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = execFile(
      "setpriv",
      [...DIE_WITH_AGENT, file, ...args],
      {
        timeout,
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
        killSignal: "SIGKILL",
        // Which process started it: a successor ends what a dead agent left (orphaned-children.ts).
        env: { ...process.env, [CHILD_MARK]: selfIdentity() },
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr, code: 0 });
        const e = err as { code?: unknown; killed?: boolean; signal?: string };
        const cmd = [file, ...args].join(" ");
        if (e.code === "ENOENT") {
          return reject(
            new AgentError(
              "COMMAND_FAILED",
              "setpriv is not installed (every program the agent runs goes through it)",
              "install util-linux",
            ),
          );
        }
        const code = typeof e.code === "number" ? e.code : -1;
        if (code === 127 && NOT_FOUND.test(stderr)) {
          return reject(
            new AgentError(
              "COMMAND_FAILED",
              `${file} is not installed`,
              "run `make run` or `archnet host check`",
            ),
          );
        }
        if (e.killed || e.signal === "SIGKILL") {
          return reject(
            new AgentError("COMMAND_TIMEOUT", `${cmd} did not finish within ${timeout} ms`, undefined, {
              cause: err,
            }),
          );
        }
        if (opts.okCodes?.includes(code)) return resolve({ stdout, stderr, code });
        reject(new CommandError(cmd, code, stdout, stderr));
      },
    );
    if (opts.input !== undefined) {
      child.stdin?.on("error", () => {}); // the program may exit before reading everything
      child.stdin?.end(opts.input);
    }
  });
}

/** A program started by spawnStreaming: its output as streams, and how to end it. */
export interface StreamingChild {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  /** Resolves with the exit code (or the signal's name) once the program has exited. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs` if it is still running; resolves once it has exited. */
  stop(graceMs?: number): Promise<number | string>;
}

/**
 * The door for a program that runs until told to stop and streams its output (tcpdump, the OVN
 * central daemons): the same rules as run() (no shell, an argument array, marked, dies with the
 * agent), but the caller reads stdout and stderr as they come and ends it with stop().
 */
export function spawnStreaming(
  file: string,
  args: readonly string[],
  opts: { env?: Readonly<Record<string, string>> } = {},
): StreamingChild {
  const child = spawn("setpriv", [...DIE_WITH_AGENT, file, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...opts.env, [CHILD_MARK]: selfIdentity() },
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on("error", () => resolve(-1));
    child.on("exit", (code, signal) => resolve(code ?? signal ?? -1));
  });
  let stopping: Promise<number | string> | undefined;
  return {
    child,
    exited,
    stop(graceMs = 2000) {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        try {
          return await exited;
        } finally {
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
}

export class CommandError extends AgentError {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  constructor(cmd: string, exitCode: number, stdout: string, stderr: string) {
    super("COMMAND_FAILED", `${cmd} failed (exit ${exitCode}): ${stderr.trim() || stdout.trim()}`);
    this.exitCode = exitCode;
    this.stdout = stdout;
    this.stderr = stderr;
  }
}
