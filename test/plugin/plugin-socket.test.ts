/**
 * The Docker plugin's socket: root-only (0600) from the moment it exists, and never taken from
 * another agent that still serves it. Real agents on private OVS instances; the socket lives in a
 * temporary directory (not Docker's discovery directory: no dockerd involved).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { run } from "../../src/common/exec.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { pluginCall } from "../harness/docker.js";

const dir = mkdtempSync(join(tmpdir(), "archnet-plugsock-"));
const hasStrace = await run("strace", ["-V"]).then(
  () => true,
  () => false,
);

/** The driver answers Plugin.Activate on this socket. */
async function assertServes(socket: string): Promise<void> {
  const res = await pluginCall(socket, "Plugin.Activate", "");
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, { Implements: ["NetworkDriver"] });
}

/**
 * Traces this process's (main thread's) file and socket syscalls while `fn` runs: strace is
 * attached when it says so, and has written everything once it exits.
 */
async function traced(fn: () => Promise<void>): Promise<string> {
  const out = join(dir, `strace-${process.hrtime.bigint()}.txt`);
  const trace = "trace=bind,mkdir,mkdirat,chmod,fchmodat,rename,renameat,renameat2,unlink,unlinkat";
  const st = spawn("strace", ["-p", String(process.pid), "-e", trace, "-o", out], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<void>((resolve) => st.on("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let err = "";
    st.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      if (/attached/.test(err)) resolve();
    });
    st.on("exit", (code) => reject(new Error(`strace exited ${code}: ${err}`)));
  });
  try {
    await fn();
  } finally {
    st.kill("SIGINT");
    await exited;
  }
  return readFileSync(out, "utf8");
}

describe("the Docker plugin's socket", () => {
  const agents: TestAgent[] = [];
  after(async () => {
    for (const a of agents) await a.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is 0600 from its first moment: bound in a private 0700 directory, chmod-ed, renamed into place", {
    skip: !hasStrace && "needs strace (scripts/host-setup.sh installs it)",
  }, async () => {
    const socket = join(dir, "first.sock");
    const calls = await traced(async () => {
      agents.push(await startTestAgent({ pluginSocket: socket }));
    });
    const mode = lstatSync(socket).mode;
    assert.ok(lstatSync(socket).isSocket());
    assert.equal((mode & 0o777).toString(8), "600");
    await assertServes(socket);

    const lines = calls.split("\n").filter((l) => l.includes(dir));
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const bind = lines.find((l) => l.startsWith("bind("));
    assert.ok(bind, `no bind() seen:\n${lines.join("\n")}`);
    const inside = new RegExp(`sun_path="(${esc(dir)}/\\.archnet-[^/"]+)/s"`).exec(bind)?.[1];
    assert.ok(inside, `bound outside a private directory: ${bind}`);
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const made = at(new RegExp(`^mkdir(at)?\\(.*"${esc(inside)}", 0700\\) = 0`));
    const bound = lines.indexOf(bind);
    const chmod = at(new RegExp(`^(f)?chmod(at)?\\(.*"${esc(inside)}/s", 0600\\) = 0`));
    const moved = at(new RegExp(`^rename(at2?)?\\(.*"${esc(inside)}/s", .*"${esc(socket)}".*\\) = 0`));
    assert.ok(made !== -1 && made < bound, `the directory is made 0700 before bind:\n${lines.join("\n")}`);
    assert.ok(bound < chmod && chmod < moved, `bind, chmod 0600, then rename:\n${lines.join("\n")}`);
    assert.equal(
      lines.filter((l) => l.includes(`"${socket}"`) && !l.startsWith("rename")).length,
      0,
      `nothing else touches the socket's path:\n${lines.join("\n")}`,
    );
  });

  it("a second agent on a socket another agent serves is refused; the first keeps serving", async () => {
    const socket = join(dir, "shared.sock");
    const first = await startTestAgent({ pluginSocket: socket });
    agents.push(first);
    const before = lstatSync(socket).ino;
    await assertServes(socket);
    await assert.rejects(
      async () => {
        agents.push(await startTestAgent({ pluginSocket: socket }));
      },
      (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, "CONFLICT");
        assert.match(e.message, new RegExp(`serves the plugin socket ${socket}$`));
        assert.match(e.hint ?? "", /ARCHETYPE_AGENT_PLUGIN_SOCKET/);
        return true;
      },
    );
    assert.equal(lstatSync(socket).ino, before, "the first agent's socket is still in place");
    await assertServes(socket);
  });

  it("a stale socket (its process died) is replaced; a file that is not a socket is refused", async () => {
    const socket = join(dir, "stale.sock");
    // a process that exits without closing its server leaves the socket file behind
    const child = spawn(process.execPath, [
      "-e",
      "require('node:net').createServer().listen(process.argv[1], () => process.exit(0))",
      socket,
    ]);
    await new Promise((resolve) => child.on("exit", resolve));
    assert.ok(lstatSync(socket).isSocket(), "a stale socket is left");
    const stale = lstatSync(socket).ino;
    const t = await startTestAgent({ pluginSocket: socket });
    agents.push(t);
    assert.notEqual(lstatSync(socket).ino, stale);
    await assertServes(socket);

    const notSocket = join(dir, "file.sock");
    writeFileSync(notSocket, "keep me");
    await assert.rejects(startTestAgent({ pluginSocket: notSocket }), /exists and is not a socket/);
    assert.equal(readFileSync(notSocket, "utf8"), "keep me");
  });
});
