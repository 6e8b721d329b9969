/** What the CLI tests talk to: an agent API at a URL. The stub target serves stub services. */
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startApi } from "../../src/api/server.js";
import { silentLogger } from "../../src/common/log.js";
import { type ApiFixture, stubFactory } from "../api/fixture.js";

export interface CliTarget {
  url: string;
  fixture: ApiFixture;
  close(): Promise<void>;
}

export type CliTargetFactory = (opts: { secret?: string }) => Promise<CliTarget>;

export const stubTarget: CliTargetFactory = async (opts) => {
  const fixture = await stubFactory(opts);
  const api = await startApi(fixture.services, { logger: silentLogger() });
  return {
    url: api.address,
    fixture,
    close: async () => {
      await api.close();
      await fixture.close();
    },
  };
};

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Newest modification time (ms) of a file under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * How to start `archnet`: the built dist/cli/main.js when it is at least as new as every source
 * (`make test` builds first; ~3x faster to start), else the sources through tsx.
 */
export function cliEntry(): string[] {
  const built = join(ROOT, "dist/cli/main.js");
  try {
    if (statSync(built).mtimeMs >= newestMtime(join(ROOT, "src"))) return [built];
  } catch {
    // no build
  }
  return ["--import", "tsx", join(ROOT, "src/cli/main.ts")];
}

let entry: string[] | undefined;

/** Runs `archnet ARGS` (see cliEntry), without the caller's ARCHETYPE_* env. */
export function runCli(
  args: readonly string[],
  opts: { input?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("ARCHETYPE_")) env[k] = v;
  }
  Object.assign(env, { NO_COLOR: "1" }, opts.env);
  return new Promise((resolve, reject) => {
    entry ??= cliEntry();
    const child = spawn(process.execPath, [...entry, ...args], {
      cwd: ROOT,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}
