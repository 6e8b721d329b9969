import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { listLinks } from "../../src/link/index.js";
import { OvsdbClient } from "../../src/ovsdb/index.js";
import { onCleanup, scoped } from "../lib/cleanup.js";
import { startEnv } from "../lib/env.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { timed } from "../lib/stats.js";
import { makeTopology } from "../lib/topology.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));

async function statusKb(pid: number, key: string): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(new RegExp(`${key}:\\s+(\\d+)`).exec(text)?.[1] ?? Number.NaN);
}

/** Starts the agent in a child process on `config`; resolves its ready line and pid. */
async function childAgent(
  config: unknown,
): Promise<{ pid: number; ready: Record<string, number>; via: string; stop(): Promise<void> }> {
  const dist = existsSync(`${repo}dist/agent.js`);
  const via = dist ? "dist/ (compiled, no tsx)" : "src/ under tsx (dist/ not built)";
  const root = pathToFileURL(`${repo}${dist ? "dist" : "src"}`).href;
  const args = [
    ...(dist ? [] : ["--import", "tsx"]),
    `${repo}bench/agent-child.mjs`,
    root,
    JSON.stringify(config),
  ];
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"], cwd: repo });
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin.write("exit\n");
    const t = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  };
  const unregister = onCleanup(`agent child ${child.pid}`, stop);
  const ready = await new Promise<Record<string, number>>((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
    });
    child.on("exit", (code) => reject(new Error(`agent child exited (${code}) before ready`)));
  });
  return { pid: child.pid!, ready, via, stop: unregister };
}

/** Scenarios 4 (start-up and reconcile with existing ports) and 7 (memory at that size). */
export async function startupMemory(links: number): Promise<ScenarioResult[]> {
  return scoped(async () => {
    const { t, switchNetns } = await startEnv();
    const topo = await makeTopology(links, "bsu");
    const ports = 2 * links;
    const put = await timed(() => t.agent.labs.putLab("big", topo.spec));
    await t.stopAgent();

    const start = await timed(() => t.startAgent());
    const repairs = await t.agent.reconcile();
    await t.stopAgent();
    // Floor: what start-up cannot avoid, loading the OVSDB cache and listing the kernel's links.
    const floor = await timed(async () => {
      const c = await OvsdbClient.connect({ remote: t.ovs.remote });
      await listLinks({ name: switchNetns });
      await c.close();
    });

    const child = await childAgent(t.config);
    await sleep(500);
    const rssKb = await statusKb(child.pid, "VmRSS");
    const hwmKb = await statusKb(child.pid, "VmHWM");
    await child.stop();

    await t.startAgent();
    const del = await timed(() => t.agent.labs.deleteLab("big"));
    const mb = (kb: number) => kb / 1024;
    return [
      {
        id: 4,
        name: `agent start-up and reconcile with ${ports} existing ports`,
        status: "ran",
        params: { links, ports, repairs_at_start: repairs.length },
        figures: [
          figure(
            {
              name: "createAgent until ready",
              unit: "ms",
              agent: start.ms,
              floor: floor.ms,
              target: "< 1000 ms",
              note: "floor: OVSDB connect+cache load and one ip link list",
            },
            (f) => f.agent < 1000,
          ),
          figure({
            name: "child process: createAgent until ready",
            unit: "ms",
            agent: child.ready.startMs ?? Number.NaN,
          }),
          figure({ name: `putLab ${links} links (set-up)`, unit: "ms", agent: put.ms }),
          figure({ name: `deleteLab ${links} links`, unit: "ms", agent: del.ms }),
        ],
      },
      {
        id: 7,
        name: `agent memory with ${ports} ports`,
        status: "ran",
        params: { ports, measured_via: child.via },
        figures: [
          figure(
            {
              name: "agent process VmRSS",
              unit: "MB",
              agent: mb(rssKb),
              target: "< 100 MB",
              note: `${child.via}`,
            },
            (f) => f.agent < 100,
          ),
          figure({
            name: "VmRSS before createAgent (modules loaded)",
            unit: "MB",
            agent: mb(child.ready.beforeKb ?? Number.NaN),
          }),
          figure({ name: "VmHWM (peak)", unit: "MB", agent: mb(hwmKb) }),
        ],
      },
    ];
  });
}
