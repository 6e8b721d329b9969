import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { writeAtomic } from "./atomic-file.js";
import type { Logger } from "./log.js";

/**
 * Children of an agent that died. Every program the agent runs dies with it (PR_SET_PDEATHSIG,
 * see exec.ts), but not at once: the signal can find one in the middle of a kernel call, and a
 * child still between fork and prctl misses it. Such a leftover `ip -batch` goes on changing
 * links behind the next agent's back. So every child carries the identity of the process that
 * started it, the state dir remembers which process last ran an agent on it, and a new agent
 * ends what its dead predecessor left running before it converges anything.
 */

/** Environment variable every child carries: `PID.STARTTIME` of the agent process. */
export const CHILD_MARK = "ARCHNET_CHILD_OF";
/** In the state dir: the identity of the process that last ran an agent on it. */
const RECORD = "agent-process";
/** How long a killed leftover may take to be gone before the agent starts anyway. */
const GONE_DEADLINE_MS = 5000;
const POLL_MS = 10;

/** `PID.STARTTIME` (clock ticks since boot): a pid reused later does not match it. */
function identityOf(pid: number | "self"): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return `${pid === "self" ? process.pid : pid}.${fields[19]}`;
  } catch {
    return undefined;
  }
}

let self: string | undefined;
/** This process's identity, the value of CHILD_MARK in its children. */
export function selfIdentity(): string {
  self ??= identityOf("self") ?? String(process.pid);
  return self;
}

/** Running: it exists and is not a zombie (a zombie has finished everything it did). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Pids of processes whose environment says `owner` started them. */
async function childrenOf(owner: string): Promise<number[]> {
  const mark = Buffer.from(`${CHILD_MARK}=${owner}\0`);
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const env = await readFile(`/proc/${entry}/environ`).catch(() => undefined);
    if (!env) continue;
    const at = env.indexOf(mark);
    if (at === 0 || (at > 0 && env[at - 1] === 0)) found.push(Number(entry));
  }
  return found;
}

/**
 * Before an agent starts on `stateDir`: if the process that ran the last agent on it is gone,
 * SIGKILLs every program it left running and waits (with a deadline) until they are gone. Then
 * records this process as the one running the agent.
 */
export async function endPredecessorChildren(stateDir: string, logger: Logger): Promise<void> {
  const record = join(stateDir, RECORD);
  const before = await readFile(record, "utf8").then(
    (s) => s.trim(),
    () => undefined,
  );
  const me = selfIdentity();
  if (before && before !== me && identityOf(Number(before.split(".")[0])) !== before) {
    const t0 = performance.now();
    const pids = await childrenOf(before);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    const deadline = Date.now() + GONE_DEADLINE_MS;
    let left = pids.filter(running);
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(POLL_MS);
      left = left.filter(running);
    }
    if (pids.length > 0) {
      const ms = Math.round(performance.now() - t0);
      if (left.length > 0)
        logger.warn({ predecessor: before, pids: left, ms }, "programs of the dead agent are still running");
      else logger.info({ predecessor: before, killed: pids.length, ms }, "ended programs of the dead agent");
    }
  }
  try {
    await writeAtomic(record, me);
  } catch (e) {
    // A full state disk must not keep the agent from serving what it has: only the next start
    // loses the means to end this agent's leftovers.
    logger.warn(
      { err: e, record },
      "cannot record this agent's process; a successor will not end its leftovers",
    );
  }
}
