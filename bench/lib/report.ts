import { mkdir, writeFile } from "node:fs/promises";
import { cpus, release, totalmem } from "node:os";
import { dirname } from "node:path";
import { VERSION } from "../../src/agent.js";
import { run } from "../../src/common/exec.js";
import { round } from "./profile.js";

/** One measured figure: the agent's value, and the baseline's and floor's from the same run. */
export interface Figure {
  name: string;
  unit: string;
  agent: number;
  baseline?: number;
  floor?: number;
  /** agent / baseline (times: < 1 is faster). */
  ratio_to_baseline?: number;
  /** baseline / agent, for times: how many times faster than one process per operation. */
  speedup_vs_baseline?: number;
  /** agent / floor. */
  ratio_to_floor?: number;
  target?: string;
  /** undefined: no target for this figure. */
  met?: boolean;
  note?: string;
}

export interface ScenarioResult {
  id: number;
  name: string;
  status: "ran" | "skipped" | "failed";
  reason?: string;
  params?: Record<string, unknown>;
  figures: Figure[];
  /** Where the agent's time went (ms summed per wrapped call). */
  phases?: Record<string, unknown>;
  seconds?: number;
}

export function figure(
  f: Omit<Figure, "ratio_to_baseline" | "speedup_vs_baseline" | "ratio_to_floor" | "met">,
  check?: (f: Figure) => boolean,
): Figure {
  const out: Figure = { ...f, agent: round(f.agent, 3) };
  if (f.baseline !== undefined) {
    out.baseline = round(f.baseline, 3);
    out.ratio_to_baseline = round(f.agent / f.baseline, 4);
    if (f.unit === "ms") out.speedup_vs_baseline = round(f.baseline / f.agent, 1);
  }
  if (f.floor !== undefined) {
    out.floor = round(f.floor, 3);
    out.ratio_to_floor = round(f.agent / f.floor, 2);
  }
  if (check) out.met = check(out);
  return out;
}

export interface Machine {
  cpus: number;
  cpu_model: string;
  memory_gb: number;
  kernel: string;
  node: string;
  ovs: string;
  iperf3: string;
  docker: string;
  agent_version: string;
  git_commit: string;
}

async function firstLine(file: string, args: string[]): Promise<string> {
  try {
    const r = await run(file, args, { timeoutMs: 5000 });
    return (r.stdout || r.stderr).split("\n")[0]!.trim();
  } catch {
    return "unavailable";
  }
}

export async function machine(): Promise<Machine> {
  return {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? "unknown",
    memory_gb: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    node: process.version,
    ovs: await firstLine("ovs-vsctl", ["--version"]),
    iperf3: await firstLine("iperf3", ["--version"]),
    docker: await firstLine("docker", ["version", "--format", "{{.Server.Version}}"]),
    agent_version: VERSION,
    git_commit: await firstLine("git", ["rev-parse", "--short", "HEAD"]),
  };
}

function fmt(x: number | undefined, unit = ""): string {
  if (x === undefined || Number.isNaN(x)) return "-";
  const s = Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2);
  return unit ? `${s} ${unit}` : s;
}

/** The human table: one row per figure, MISSED where a target was not met. */
export function table(results: readonly ScenarioResult[]): string {
  const rows: string[][] = [
    ["#", "figure", "agent", "baseline", "floor", "vs baseline", "vs floor", "target", "verdict"],
  ];
  for (const s of results) {
    if (s.status !== "ran") {
      rows.push([
        String(s.id),
        `${s.name}: ${s.status}: ${s.reason ?? ""}`,
        "",
        "",
        "",
        "",
        "",
        "",
        s.status.toUpperCase(),
      ]);
      continue;
    }
    for (const f of s.figures) {
      const vsBase =
        f.speedup_vs_baseline !== undefined
          ? `${fmt(f.speedup_vs_baseline)}x faster`
          : f.ratio_to_baseline !== undefined
            ? `${fmt(f.ratio_to_baseline)}x`
            : "-";
      rows.push([
        String(s.id),
        f.name,
        fmt(f.agent, f.unit),
        fmt(f.baseline, f.unit),
        fmt(f.floor, f.unit),
        vsBase,
        f.ratio_to_floor !== undefined ? `${fmt(f.ratio_to_floor)}x` : "-",
        f.target ?? "",
        f.met === undefined ? "" : f.met ? "ok" : "MISSED",
      ]);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) => `| ${r.map((v, c) => v.padEnd(widths[c]!)).join(" | ")} |`;
  return [line(rows[0]!), line(widths.map((w) => "-".repeat(w))), ...rows.slice(1).map(line)].join("\n");
}

export async function writeJson(path: string, data: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(data, null, 2)}\n`);
}
