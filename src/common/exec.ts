import { execFile } from "node:child_process";
import { AgentError } from "./errors.js";

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

export function run(file: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeout = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args as string[],
      { timeout, maxBuffer: 64 * 1024 * 1024, encoding: "utf8", killSignal: "SIGKILL" },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr, code: 0 });
        const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: string };
        const cmd = [file, ...args].join(" ");
        if (e.code === "ENOENT") {
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
        const code = typeof e.code === "number" ? e.code : -1;
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
