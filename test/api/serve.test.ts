/**
 * `archnet serve` end to end, as a child process configured only through the environment: it
 * says where it listens, answers /health without a token and everything else only with one,
 * stops promptly on SIGTERM, and refuses bad settings with exit code 2 naming the setting.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { cliEntry } from "../cli/target.js";
import { type OvsInstance, startOvs } from "../harness/ovs-instance.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (typeof addr !== "object" || addr === null) throw new Error("no port");
  return addr.port;
}

interface Serve {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `archnet serve ARGS` with exactly these ARCHETYPE_* settings (none inherited). */
function serve(settings: Record<string, string>, args: string[] = []): Serve {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("ARCHETYPE_")) env[k] = v;
  }
  Object.assign(env, { NO_COLOR: "1", ARCHETYPE_LOG_LEVEL: "warn" }, settings);
  const child = spawn(process.execPath, [...cliEntry(), "serve", ...args], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  // never outlive the test
  const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
  void exited.then(() => clearTimeout(guard));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor<T>(what: string, ms: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** For settings that must be refused: even if they were not, nothing could start (no OVSDB). */
const UNREACHABLE_OVSDB = "unix:/nonexistent/archnet-test/db.sock";

describe("archnet serve (child process)", () => {
  let ovs: OvsInstance;
  let stateDir: string;
  let s: Serve | undefined;

  before(async () => {
    [ovs, stateDir] = await Promise.all([
      startOvs({ isolatedNetns: true }),
      mkdtemp(join(tmpdir(), "archnet-serve-")),
    ]);
  });
  after(async () => {
    if (s && s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill("SIGKILL");
      await s.exited;
    }
    await ovs?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("listens where it says; /health without a token, /labs only with it; SIGTERM exits 0", async (t) => {
    const port = await freePort();
    const secret = "s3cret";
    s = serve({
      ARCHETYPE_AGENT_OVSDB: ovs.remote,
      ARCHETYPE_AGENT_SWITCH_NETNS: ovs.netns as string,
      ARCHETYPE_AGENT_STATE_DIR: stateDir,
      ARCHETYPE_AGENT_PLUGIN_SOCKET: "",
      ARCHETYPE_AGENT_LISTEN: `127.0.0.1:${port}`,
      ARCHETYPE_AGENT_SECRET: secret,
    });
    const running = s;
    const started = Date.now();
    const url = await waitFor("the listening line", 30_000, () => {
      if (running.child.exitCode !== null) {
        throw new Error(`serve exited ${running.child.exitCode}: ${running.stderr()}${running.stdout()}`);
      }
      return /agent listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(running.stdout())?.[1];
    });
    assert.equal(url, `http://127.0.0.1:${port}`);
    const startMs = Date.now() - started;

    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    const body = (await health.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ["backend", "datapath", "status", "version"]);
    assert.equal(body.status, "ok");
    assert.match(String(body.version), /^\d+\.\d+\.\d+/);
    assert.equal(body.backend, "ovs");
    assert.equal(body.datapath, "netdev");

    const anon = await fetch(`${url}/labs`);
    assert.equal(anon.status, 401);
    assert.equal(((await anon.json()) as { error: { code: string } }).error.code, "UNAUTHORIZED");
    const authed = await fetch(`${url}/labs`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(authed.status, 200);
    assert.deepEqual(await authed.json(), []);

    const stopAt = Date.now();
    running.child.kill("SIGTERM");
    const { code, signal } = await running.exited;
    const stopMs = Date.now() - stopAt;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, running.stderr());
    assert.ok(stopMs < 5000, `SIGTERM took ${stopMs} ms`);
    assert.match(running.stdout(), /archnet: stopped/);
    await assert.rejects(fetch(`${url}/health`), "nothing listens any more");
    t.diagnostic(`listening ${startMs} ms after spawn, exited ${stopMs} ms after SIGTERM`);
  });

  it("--secret-file: the secret from a 0600 file guards every route but /health; argv holds no secret", async () => {
    const port = await freePort();
    const secret = "file-s3cret";
    const file = join(stateDir, "secret");
    await writeFile(file, `${secret}\n`, { mode: 0o600 });
    s = serve(
      {
        ARCHETYPE_AGENT_OVSDB: ovs.remote,
        ARCHETYPE_AGENT_SWITCH_NETNS: ovs.netns as string,
        ARCHETYPE_AGENT_STATE_DIR: stateDir,
        ARCHETYPE_AGENT_PLUGIN_SOCKET: "",
        ARCHETYPE_AGENT_LISTEN: `127.0.0.1:${port}`,
      },
      ["--secret-file", file],
    );
    const running = s;
    const url = await waitFor("the listening line", 30_000, () => {
      if (running.child.exitCode !== null) {
        throw new Error(`serve exited ${running.child.exitCode}: ${running.stderr()}${running.stdout()}`);
      }
      return /agent listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(running.stdout())?.[1];
    });
    // what `ps` shows of the agent
    const argv = readFileSync(`/proc/${running.child.pid}/cmdline`, "utf8").split("\0");
    assert.ok(argv.includes(file), argv.join(" "));
    assert.ok(!argv.some((a) => a.includes(secret)), argv.join(" "));

    assert.equal((await fetch(`${url}/health`)).status, 200);
    for (const path of ["/labs", "/openapi.json", "/docs"]) {
      assert.equal((await fetch(`${url}${path}`)).status, 401, path);
      const authed = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${secret}` } });
      assert.equal(authed.status, 200, path);
    }
    running.child.kill("SIGTERM");
    assert.deepEqual(await running.exited, { code: 0, signal: null }, running.stderr());
  });

  it("a plugin socket another process serves stops start-up with exit code 1, naming it", async () => {
    const port = await freePort();
    const socket = join(stateDir, "live.sock");
    const live = createServer((c) => c.end());
    await new Promise<void>((resolve) => live.listen(socket, resolve));
    try {
      const r = serve({
        ARCHETYPE_AGENT_OVSDB: ovs.remote,
        ARCHETYPE_AGENT_SWITCH_NETNS: ovs.netns as string,
        ARCHETYPE_AGENT_STATE_DIR: stateDir,
        ARCHETYPE_AGENT_PLUGIN_SOCKET: socket,
        ARCHETYPE_AGENT_LISTEN: `127.0.0.1:${port}`,
      });
      const { code } = await r.exited;
      assert.equal(code, 1, r.stderr());
      assert.match(
        r.stderr(),
        new RegExp(`^error: another process \\(an agent\\?\\) serves the plugin socket ${socket}\nhint: `),
      );
      assert.doesNotMatch(r.stdout(), /listening/);
      // the other process still has its socket
      await new Promise<void>((resolve, reject) => {
        const c = createConnection(socket, () => {
          c.destroy();
          resolve();
        });
        c.on("error", reject);
      });
    } finally {
      await new Promise<void>((resolve) => live.close(() => resolve()));
    }
  });

  it("an invalid setting stops start-up with exit code 2 and names the setting", async () => {
    const port = await freePort();
    const base = {
      ARCHETYPE_AGENT_OVSDB: UNREACHABLE_OVSDB,
      ARCHETYPE_AGENT_STATE_DIR: stateDir,
      ARCHETYPE_AGENT_PLUGIN_SOCKET: "",
    };
    const cases: [Record<string, string>, RegExp][] = [
      [
        { ...base, ARCHETYPE_AGENT_LISTEN: `127.0.0.1:${port}`, ARCHETYPE_AGENT_VLAN_RANGE: "5-2" },
        /^error: ARCHETYPE_AGENT_VLAN_RANGE: "5-2" is not a VLAN range\nhint: /,
      ],
      [
        { ...base, ARCHETYPE_AGENT_LISTEN: `0.0.0.0:${port}` },
        /^error: ARCHETYPE_AGENT_LISTEN: refusing to serve on 0\.0\.0\.0 without a secret\nhint: .*ARCHETYPE_AGENT_SECRET/,
      ],
      [
        { ...base, ARCHETYPE_AGENT_LISTEN: `127.0.0.1:${port}`, ARCHETYPE_AGENT_OVSDB: "db.sock" },
        /^error: ARCHETYPE_AGENT_OVSDB: /,
      ],
    ];
    const openFile = join(stateDir, "secret-644");
    await writeFile(openFile, "s3cret");
    await chmod(openFile, 0o644);
    cases.push([
      { ...base, ARCHETYPE_AGENT_LISTEN: `127.0.0.1:${port}`, ARCHETYPE_AGENT_SECRET_FILE: openFile },
      new RegExp(
        `^error: ARCHETYPE_AGENT_SECRET_FILE: ${openFile} is open to every user \\(mode 0644\\)\nhint: chmod 600`,
      ),
    ]);
    // the secret has no flag: `ps` would show it
    const flag = serve({ ...base, ARCHETYPE_AGENT_LISTEN: `127.0.0.1:${port}` }, ["--secret", "s3cret"]);
    assert.equal((await flag.exited).code, 2, flag.stderr());
    assert.match(flag.stderr(), /unknown option '--secret'/);
    await Promise.all(
      cases.map(async ([settings, message]) => {
        const r = serve(settings);
        const { code } = await r.exited;
        assert.equal(code, 2, `${JSON.stringify(settings)}: ${r.stderr()}`);
        assert.match(r.stderr(), message);
        assert.doesNotMatch(r.stdout(), /listening/);
      }),
    );
  });
});
