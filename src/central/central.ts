import { existsSync, mkdirSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { AgentError } from "../common/errors.js";
import { run, type StreamingChild, spawnStreaming } from "../common/exec.js";
import type { Logger } from "../common/log.js";
import {
  CENTRAL_SCHEMA,
  centralDbFile,
  centralEnv,
  centralRemote,
  dbServerArgs,
  northdArgs,
} from "./daemons.js";

/**
 * OVN's central part for labs that span hosts, on the one host that holds it: the northbound
 * and southbound databases (an ovsdb-server each) and ovn-northd, as the agent's children in
 * the foreground (they die with it). Everything lives in one directory: the databases (made on
 * the first start, converted when the installed schema is newer), a unix socket per database,
 * logs, pid files and control sockets, so it never touches a packaged OVN's files.
 */
export interface CentralOptions {
  dir: string;
  /** Extra listeners of the NB database (`ptcp:PORT[:IP]` or `punix:PATH`), for the hosts' agents. */
  nbListen: readonly string[];
  sbListen: readonly string[];
  logger: Logger;
}

export interface Central {
  /** `unix:DIR/nb.sock` and `unix:DIR/sb.sock`. */
  nb: string;
  sb: string;
  /** Resolves with what happened when a daemon ends on its own (the others keep running). */
  exited: Promise<string>;
  /** Stops northd, then the databases. Safe to call twice. */
  close(): Promise<void>;
}

const LISTENER = /^(ptcp:\d{1,5}(:[0-9.]+|:\[[0-9a-fA-F:]+\])?|punix:\/[^\s]+)$/;
/** How long a database may take to accept its first connection. */
const READY_MS = 30_000;

/** A listener as ovsdb-server takes it, or INVALID_CONFIG saying what is wrong. */
export function validateListener(what: string, l: string): string {
  const port = /^ptcp:(\d+)/.exec(l)?.[1];
  if (!LISTENER.test(l) || (port !== undefined && Number(port) > 65535))
    throw new AgentError(
      "INVALID_CONFIG",
      `${what}: "${l}" is not a listener`,
      "use ptcp:PORT:IP (e.g. ptcp:6641:198.18.0.1, the address the hosts reach) or punix:/absolute/path",
    );
  return l;
}

export async function startCentral(opts: CentralOptions): Promise<Central> {
  const { dir, logger } = opts;
  if (!isAbsolute(dir))
    throw new AgentError("INVALID_CONFIG", `central directory "${dir}" must be an absolute path`);
  const nbListen = opts.nbListen.map((l) => validateListener("--nb-listen", l));
  const sbListen = opts.sbListen.map((l) => validateListener("--sb-listen", l));
  for (const [tool, pkg] of [
    ["ovsdb-server", "openvswitch-switch"],
    ["ovn-northd", "ovn-central"],
  ] as const) {
    await run(tool, ["--version"]).catch((e: unknown) => {
      throw new AgentError(
        "COMMAND_FAILED",
        `${tool} is not installed (${pkg}): ${(e as Error).message}`,
        "run `make run-central` (or `bash scripts/host-setup.sh --ovn`)",
      );
    });
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (name: string) => join(dir, name);
  // Packaged defaults (/var/run/ovn, /etc/ovn) are never used: every path is in `dir`.
  const env = centralEnv(dir);
  const daemons: { name: string; proc: StreamingChild }[] = [];
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      for (const d of daemons.splice(0).reverse()) await d.proc.stop(5_000);
    })();
    return closing;
  };
  let ended: (what: string) => void = () => undefined;
  const exited = new Promise<string>((resolve) => {
    ended = resolve;
  });
  const start = (name: string, file: string, args: readonly string[]) => {
    const proc = spawnStreaming(
      file,
      [...args, `--pidfile=${f(`${name}.pid`)}`, `--log-file=${f(`${name}.log`)}`, "-vconsole:off"],
      { env },
    );
    let stderr = "";
    proc.child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    proc.child.stdout.resume();
    daemons.push({ name, proc });
    void proc.exited.then((code) => {
      if (closing) return;
      const why = `${name} (${file}) exited (${code})${stderr ? `: ${stderr.trim()}` : ""}; its log: ${f(`${name}.log`)}`;
      logger.error({ daemon: name, code }, why);
      ended(why);
    });
  };
  try {
    for (const db of ["nb", "sb"] as const) {
      const file = centralDbFile(dir, db);
      const schema = CENTRAL_SCHEMA[db];
      if (!existsSync(file)) await run("ovsdb-tool", ["create", file, schema]);
      else if ((await run("ovsdb-tool", ["needs-conversion", file, schema])).stdout.trim() === "yes")
        await run("ovsdb-tool", ["convert", file, schema]);
      start(db, "ovsdb-server", dbServerArgs(dir, db, db === "nb" ? nbListen : sbListen));
    }
    const nb = centralRemote(dir, "nb");
    const sb = centralRemote(dir, "sb");
    // A daemon that ends while starting (a port or the directory in use) fails the start at once.
    const died = exited.then((why) => {
      throw new AgentError("COMMAND_FAILED", why, "is another OVN central using this directory or port?");
    });
    const ready = (tool: string, db: string, args: readonly string[]) =>
      Promise.race([
        run(tool, [`--db=${db}`, `--timeout=${READY_MS / 1000}`, ...args], { timeoutMs: READY_MS + 5_000 }),
        died,
      ]);
    // Waits for each database to accept connections, and gives an empty NB its NB_Global row.
    await ready("ovn-nbctl", nb, ["--no-wait", "init"]);
    await ready("ovn-sbctl", sb, ["show"]);
    start("northd", "ovn-northd", northdArgs(dir));
    logger.info({ dir, nb, sb, nbListen, sbListen }, "OVN central running");
    return { nb, sb, exited, close };
  } catch (e) {
    await close();
    throw e;
  }
}
