/**
 * `make bench`: the agent on real OVS and kernel, each figure against a baseline (one process per
 * operation) and a floor (one ip -batch + one OVSDB transaction) measured in the same run.
 * Flags: --smoke, --only 1,2,..., --links N, --ops N, --ports N, --docker-ifaces N, --overlays N,
 * --iperf-seconds N, --scale-links N,N,..., --out FILE. See bench/README.md.
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { cleanupAll, installExitHandlers } from "./lib/cleanup.js";
import { machine, type ScenarioResult, table, writeJson } from "./lib/report.js";
import { carrierFollow } from "./scenarios/carrier-follow.js";
import { dockerParallelStart, dockerStart } from "./scenarios/docker.js";
import { hotLinks } from "./scenarios/hot-links.js";
import { labLifecycle } from "./scenarios/lab-lifecycle.js";
import { livePage } from "./scenarios/live-page.js";
import { overlayThroughput } from "./scenarios/overlay-throughput.js";
import { ovnRewire } from "./scenarios/ovn-rewire.js";
import { ovnScale } from "./scenarios/ovn-scale.js";
import { startupMemory } from "./scenarios/startup-memory.js";
import { stateWrite } from "./scenarios/state-write.js";
import { captureStart, impairmentSetClear } from "./scenarios/traffic.js";
import { hotWireLinks, wireLabLifecycle } from "./scenarios/wire-links.js";
import { wireScale } from "./scenarios/wire-scale.js";

const { values } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    only: { type: "string" },
    links: { type: "string" },
    ops: { type: "string" },
    ports: { type: "string" },
    "docker-ifaces": { type: "string" },
    overlays: { type: "string" },
    "iperf-seconds": { type: "string" },
    "scale-links": { type: "string" },
    out: { type: "string" },
  },
});
const smoke = values.smoke ?? false;
const num = (v: string | undefined, full: number, small: number): number => {
  if (v === undefined) return smoke ? small : full;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bad number ${v}`);
  return n;
};
const p = {
  links: num(values.links, 200, 10),
  ops: num(values.ops, 1000, 20),
  ports: num(values.ports, 1000, 40),
  dockerIfaces: num(values["docker-ifaces"], 8, 2),
  overlays: num(values.overlays, 100, 4),
  iperfSeconds: num(values["iperf-seconds"], 3, 1),
};
/** Scenario 17's lab sizes: 5000 takes minutes of ovs-vswitchd's time, so it is asked for. */
const scaleLinks = (values["scale-links"] ?? (smoke ? "10" : "400,2000")).split(",").map((v) => num(v, 0, 0));
const only = values.only ? new Set(values.only.split(",").map(Number)) : undefined;
const out =
  values.out ?? fileURLToPath(new URL(`results/${smoke ? "smoke" : "latest"}.json`, import.meta.url));

type Step = { ids: number[]; name: string; run: () => Promise<ScenarioResult | ScenarioResult[]> };
const steps: Step[] = [
  { ids: [1, 3], name: "provision and teardown", run: () => labLifecycle(p.links) },
  {
    ids: [2],
    name: "hot connect/disconnect",
    run: () =>
      hotLinks({
        ops: p.ops,
        pairs: smoke ? 10 : 100,
        baselineOps: Math.min(p.ops, smoke ? 10 : 100),
        trafficSample: smoke ? 3 : 20,
      }),
  },
  { ids: [4, 7], name: "start-up and memory", run: () => startupMemory(Math.ceil(p.ports / 2)) },
  { ids: [5], name: "Docker", run: () => dockerStart(p.dockerIfaces, smoke ? 1 : 3) },
  {
    ids: [8],
    name: "Docker, containers started at once",
    run: () =>
      dockerParallelStart(smoke ? 2 : 10, smoke ? 2 : 4, smoke ? 1 : Number(process.env.BENCH_REPS ?? 3)),
  },
  {
    ids: [6],
    name: "overlay and throughput",
    run: () => overlayThroughput({ overlays: p.overlays, iperfSeconds: p.iperfSeconds }),
  },
  { ids: [9], name: "state write durability", run: () => stateWrite(smoke ? 20 : 500) },
  { ids: [10], name: "live page", run: () => livePage(smoke ? 10 : 500) },
  { ids: [11], name: "carrier follows across a link", run: () => carrierFollow(smoke ? 10 : 100) },
  {
    ids: [12],
    name: "hot wire links",
    run: () =>
      hotWireLinks({
        ops: values.ops === undefined ? (smoke ? 20 : 200) : p.ops,
        pairs: smoke ? 10 : 100,
        baselineOps: smoke ? 10 : 100,
        trafficSample: smoke ? 3 : 20,
      }),
  },
  { ids: [13], name: "wire lab bring-up and teardown", run: () => wireLabLifecycle(p.links, smoke ? 2 : 4) },
  {
    ids: [14],
    name: "impairment set/clear per link",
    run: () => impairmentSetClear(smoke ? 2 : 20, smoke ? 2 : 5),
  },
  { ids: [15], name: "capture start to first packet", run: () => captureStart(smoke ? 3 : 30) },
  { ids: [16], name: "ovn: cross-host hot rewire", run: () => ovnRewire(smoke ? 10 : 100) },
  { ids: [17], name: "wire links at scale", run: () => wireScale(scaleLinks, smoke ? 5 : 50) },
  { ids: [18], name: "ovn: a lab across three hosts", run: () => ovnScale(smoke ? 10 : 200) },
];

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write("bench: needs root (namespaces, OVS)\n");
    return 1;
  }
  installExitHandlers();
  const started = performance.now();
  const results: ScenarioResult[] = [];
  try {
    for (const s of steps) {
      if (only && !s.ids.some((id) => only.has(id))) continue;
      const t0 = performance.now();
      process.stderr.write(`bench: ${s.name}...\n`);
      try {
        const r = await s.run();
        const list = Array.isArray(r) ? r : [r];
        for (const x of list) x.seconds = Math.round((performance.now() - t0) / 100) / 10;
        results.push(...list);
      } catch (e) {
        process.stderr.write(`bench: ${s.name} failed: ${(e as Error).stack ?? e}\n`);
        for (const id of s.ids)
          results.push({ id, name: s.name, status: "failed", reason: (e as Error).message, figures: [] });
      } finally {
        await cleanupAll();
      }
    }
  } finally {
    await cleanupAll();
  }
  results.sort((a, b) => a.id - b.id);
  const total = (performance.now() - started) / 1000;
  const doc = {
    when: new Date().toISOString(),
    smoke,
    params: p,
    seconds: Math.round(total),
    machine: await machine(),
    results,
  };
  await writeJson(out, doc);
  process.stdout.write(`\n${table(results)}\n\nmachine: ${JSON.stringify(doc.machine)}\n`);
  const missed = results.flatMap((r) =>
    r.figures.filter((f) => f.met === false).map((f) => `${r.id} ${f.name}`),
  );
  process.stdout.write(
    `${missed.length > 0 ? `MISSED: ${missed.join("; ")}` : results.some((r) => r.status === "failed") ? "targets of the scenarios that ran: met" : "every target met"}; ${total.toFixed(0)} s; results in ${out}\n`,
  );
  const failed = results.filter((r) => r.status === "failed");
  if (failed.length > 0) {
    process.stdout.write(`FAILED scenarios: ${failed.map((r) => r.id).join(", ")}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  async (e) => {
    process.stderr.write(`bench crashed: ${(e as Error).stack ?? e}\n`);
    await cleanupAll();
    process.exit(1);
  },
);
