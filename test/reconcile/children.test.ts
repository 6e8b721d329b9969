import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { CHILD_MARK } from "../../src/common/orphaned-children.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { until } from "../labs/facts.js";

/**
 * Programs the agent runs die with it (kill -9 included), and what a dead agent still left
 * running is ended by the next agent on the same state dir before it converges anything.
 */
let t: TestAgent;
const started: ChildProcess[] = [];
/** Grandchildren a failing test could leave behind. */
const strays: number[] = [];

before(async () => {
  t = await startTestAgent();
});
after(async () => {
  for (const p of started) p.kill("SIGKILL");
  for (const pid of strays) if (running(pid)) process.kill(pid, "SIGKILL");
  await t?.close();
});

/** Running: /proc has it and it is not a zombie (a zombie does nothing any more). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

function identity(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return `${pid}.${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`;
}

function exited(p: ChildProcess): Promise<string | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.signalCode);
  return new Promise((r) => p.once("exit", (_code, signal) => r(signal)));
}

function keep(p: ChildProcess): ChildProcess {
  started.push(p);
  return p;
}

test("kill -9 of the agent process kills the program it is running", async () => {
  const script = `
    import { run } from "./src/common/exec.ts";
    void run("sleep", ["600"], { timeoutMs: 600_000 });
    setInterval(() => {}, 1000);
  `;
  const agent = keep(
    spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    }),
  );
  let pid = 0;
  await until(
    () => {
      const kids = readFileSync(`/proc/${agent.pid}/task/${agent.pid}/children`, "utf8").trim();
      pid = Number(kids.split(" ")[0] ?? 0);
      return pid > 0 && readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("sleep\0");
    },
    20_000,
    "the agent process runs sleep",
  );
  strays.push(pid);
  const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
  assert.ok(env.includes(`${CHILD_MARK}=${identity(agent.pid!)}`), "the child names its agent");
  const gone = exited(agent);
  agent.kill("SIGKILL");
  await gone;
  await until(() => !running(pid), 5000, "sleep died with the agent");
});

test("a new agent ends what its dead predecessor left running, and only that", async () => {
  await t.stopAgent();
  // A process that has ended stands for the dead agent: its identity cannot come back.
  const dead = keep(spawn("cat", [], { stdio: ["pipe", "ignore", "ignore"] }));
  const deadId = identity(dead.pid!);
  dead.stdin!.end();
  await exited(dead);
  // Its leftover, and a program of a live agent (this process's parent) that must stay.
  const leftover = keep(spawn("sleep", ["600"], { env: { ...process.env, [CHILD_MARK]: deadId } }));
  const liveId = identity(process.ppid);
  const other = keep(spawn("sleep", ["600"], { env: { ...process.env, [CHILD_MARK]: liveId } }));
  await until(() => running(leftover.pid!) && running(other.pid!), 5000, "both started");
  const record = join(t.config.stateDir, "agent-process");
  writeFileSync(record, deadId);

  const signal = exited(leftover);
  await t.startAgent();
  assert.equal(running(leftover.pid!), false, "the dead agent's program is gone once the agent started");
  assert.equal(await signal, "SIGKILL");
  assert.equal(running(other.pid!), true, "a live agent's program is left alone");
  assert.equal(readFileSync(record, "utf8"), identity(process.pid), "the state dir names this agent now");
});

test("a missing program is named in the error", async () => {
  const { run } = await import("../../src/common/exec.js");
  await assert.rejects(run("archnet-no-such-program", ["x"]), /archnet-no-such-program is not installed/);
});

// Keep readline imported only if used by future tests.
void createInterface;
