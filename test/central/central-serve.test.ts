/**
 * `archnet central serve` end to end: the real CLI runs OVN's NB and SB databases and ovn-northd
 * in a private directory; a logical switch written to NB shows up in SB (northd at work); the
 * databases outlive a restart; the daemons end with the CLI, on SIGTERM and on SIGKILL; bad
 * listeners are refused before anything starts.
 */
import assert from "node:assert/strict";
import { type ChildProcessByStdio, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { cliEntry, runCli } from "../cli/target.js";

const WAIT_MS = 60_000;
const DAEMONS = ["nb", "sb", "northd"] as const;

type Cli = ChildProcessByStdio<null, Readable, Readable>;

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\S+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await sleep(50);
  }
}

describe("archnet central serve", () => {
  const dir = mkdtempSync(join(tmpdir(), "archnet-central-"));
  const nbX = `unix:${dir}/nb-x.sock`;
  const sbX = `unix:${dir}/sb-x.sock`;
  const started: Cli[] = [];

  const pids = () =>
    DAEMONS.map((d) => Number(readFileSync(join(dir, `${d}.pid`), "utf8").trim())).filter((p) => p > 1);

  /** Starts the CLI and waits for its "running" line (or its exit). */
  async function serve(): Promise<{ cli: Cli; out: () => string; exited: Promise<number | null> }> {
    const cli = spawn(
      process.execPath,
      [...cliEntry(), "central", "serve", "--dir", dir, "--nb-listen", `p${nbX}`, "--sb-listen", `p${sbX}`],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    started.push(cli);
    let out = "";
    cli.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    cli.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => cli.on("exit", (code) => resolve(code)));
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    await until("the central's running line", () => /archnet: OVN central running: .*\n/.test(out) || gone);
    assert.ok(!gone, `the central exited while starting:\n${out}`);
    return { cli, out: () => out, exited };
  }

  const nbctl = (...args: string[]) =>
    execFileSync("ovn-nbctl", [`--db=${nbX}`, "--timeout=20", ...args], {
      timeout: 30_000,
      encoding: "utf8",
    });
  const sbSwitches = () =>
    execFileSync(
      "ovn-sbctl",
      [`--db=${sbX}`, "--timeout=20", "--bare", "--columns=external_ids", "list", "Datapath_Binding"],
      { timeout: 30_000, encoding: "utf8" },
    );

  after(() => {
    for (const c of started) if (c.exitCode === null) c.kill("SIGKILL");
    for (const d of DAEMONS) {
      const f = join(dir, `${d}.pid`);
      const pid = existsSync(f) ? Number(readFileSync(f, "utf8").trim()) : 0;
      if (pid > 1 && alive(pid)) process.kill(pid, "SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs NB, SB and northd; a logical switch in NB reaches SB; SIGTERM stops them all", async () => {
    const { cli, out, exited } = await serve();
    assert.match(out(), new RegExp(`NB unix:${dir}/nb.sock, p${nbX}`));
    nbctl("ls-add", "central-ls1");
    await until("northd's datapath for central-ls1 in SB", () => sbSwitches().includes("name=central-ls1"));
    const running = pids();
    assert.equal(running.length, 3);
    assert.ok(running.every(alive), "the three daemons run");
    cli.kill("SIGTERM");
    assert.equal(await exited, 0, out());
    assert.match(out(), /OVN central stopped/);
    await until("the daemons gone after SIGTERM", () => !running.some(alive));
  });

  it("keeps its databases across a restart, and its daemons die when it is killed", async () => {
    const { cli, exited } = await serve();
    assert.match(nbctl("ls-list"), /central-ls1/, "NB kept the switch");
    const running = pids();
    assert.ok(running.every(alive));
    cli.kill("SIGKILL");
    await exited;
    await until("the daemons gone after SIGKILL", () => !running.some(alive));
  });

  it("refuses a bad listener before it starts anything", async () => {
    const fresh = join(dir, "never");
    for (const bad of ["tcp:6641", "ptcp:70000:127.0.0.1", "punix:relative.sock", "ptcp:6641:1.2.3.4;rm"]) {
      const r = await runCli(["central", "serve", "--dir", fresh, "--nb-listen", bad]);
      assert.notEqual(r.code, 0, bad);
      assert.match(r.stderr, /is not a listener/, bad);
    }
    assert.equal(existsSync(fresh), false, "nothing was made");
  });
});
