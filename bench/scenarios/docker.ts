import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../src/common/exec.js";
import { startNullDriver } from "../floor/null-driver.js";
import { onCleanup, scoped } from "../lib/cleanup.js";
import { startEnv } from "../lib/env.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { percentile, timed } from "../lib/stats.js";

const IMAGE = "busybox:local";
const TARGET_MS = 300;

const docker = (args: string[]) => run("docker", args, { timeoutMs: 60_000 });

/** For cleanup: waits out a dockerd restart (another run's test may restart it) for up to 60 s. */
async function dockerUndo(args: string[]): Promise<unknown> {
  for (let i = 0; ; i++) {
    try {
      return await docker(args);
    } catch (e) {
      if (i >= 30 || !/Cannot connect to the Docker daemon/.test(String((e as Error).message))) throw e;
      await sleep(2000);
    }
  }
}

function skipped(reason: string, ifaces: number): ScenarioResult {
  return {
    id: 5,
    name: `Docker: container start with ${ifaces} plugin interfaces`,
    status: "skipped",
    reason,
    figures: [],
  };
}

const ok = (p: Promise<unknown>) =>
  p.then(
    () => true,
    () => false,
  );

/**
 * Scenario 5: `docker start` of a container with N plugin interfaces vs one with `--network none`,
 * with two references from the same run: the floor (the same N networks on a remote driver that
 * does no work, bench/floor/null-driver.ts: what Docker itself costs) and Docker's own bridge
 * driver. Every container runs on Docker's default runtime, named explicitly.
 */
export async function dockerStart(ifaces: number, reps: number): Promise<ScenarioResult> {
  if (!(await ok(docker(["info"])))) return skipped("no Docker daemon answers", ifaces);
  if (!(await ok(docker(["image", "inspect", IMAGE]))))
    return skipped(`image ${IMAGE} missing (make setup-test imports it)`, ifaces);
  return scoped(async () => {
    const runtime = (await docker(["info", "--format", "{{.DefaultRuntime}}"])).stdout.trim() || "runc";
    const id = randomBytes(3).toString("hex");
    const driver = `archbench${id}`;
    const socket = `/run/docker/plugins/${driver}.sock`;
    await startEnv({ pluginSocket: socket });
    for (let i = 0; i < 20 && !existsSync(socket); i++) await sleep(50);
    if (!existsSync(socket))
      return skipped(
        `the agent created no plugin socket at ${socket} (src/plugin/plugin-server.ts is a placeholder)`,
        ifaces,
      );
    const nul = await startNullDriver(`archnull${id}`);

    /** Creates N networks; returns their names, each registered for removal. */
    const networks = async (tag: string, args: (k: number) => string[]) => {
      const out: string[] = [];
      for (let k = 1; k <= ifaces; k++) {
        const net = `${driver}-${tag}${k}`;
        await docker(["network", "create", ...args(k), net]);
        out.push(net);
        onCleanup(`docker network ${net}`, () => dockerUndo(["network", "rm", net]));
      }
      return out;
    };
    const plugin = await networks("", (k) => [
      "-d",
      driver,
      "--ipam-driver",
      "null",
      "-o",
      "lab_id=benchdock",
      "-o",
      `interface_name=eth${k}`,
    ]);
    const nulls = await networks("null", () => ["-d", nul.name, "--ipam-driver", "null"]);
    // Reference: Docker's own bridge driver with as many networks, on benchmark-range subnets.
    const bridges = await networks("br", (k) => ["-d", "bridge", "--subnet", `198.19.${200 + k}.0/24`]);

    /** Creates a container on `nets` (none: `--network none`), outside the timing. */
    const create = async (name: string, nets: readonly string[]) => {
      const remove = onCleanup(`container ${name}`, () => dockerUndo(["rm", "-f", name]));
      const first = nets[0] ?? "none";
      await docker([
        "create",
        "--name",
        name,
        "--runtime",
        runtime,
        "--network",
        first,
        IMAGE,
        "sleep",
        "600",
      ]);
      for (const n of nets.slice(1)) await docker(["network", "connect", n, name]);
      return remove;
    };
    const interfaces = async (c: string) => {
      const seen = (await docker(["exec", c, "ls", "/sys/class/net"])).stdout
        .split(/\s+/)
        .filter((x) => /^eth\d+$/.test(x));
      if (seen.length < ifaces)
        throw new Error(`container ${c} has ${seen.length} of ${ifaces} interfaces: ${seen.join(" ")}`);
    };

    const startNone: number[] = [];
    const startNull: number[] = [];
    const startBridge: number[] = [];
    const startPlugin: number[] = [];
    const setup: number[] = [];
    for (let r = 0; r < reps; r++) {
      const plain = `${driver}-none-${r}`;
      const rmplain = await create(plain, []);
      startNone.push((await timed(() => docker(["start", plain]))).ms);
      await rmplain();

      const fl = `${driver}-null-${r}`;
      await nul.prepare(ifaces - nul.spare());
      const rmfl = await create(fl, nulls);
      startNull.push((await timed(() => docker(["start", fl]))).ms);
      await interfaces(fl);
      await rmfl();

      const br = `${driver}-bridge-${r}`;
      const rmbr = await create(br, bridges);
      startBridge.push((await timed(() => docker(["start", br]))).ms);
      await rmbr();

      const c = `${driver}-c${r}`;
      let rmc = async () => {};
      setup.push(
        (
          await timed(async () => {
            rmc = await create(c, plugin);
          })
        ).ms,
      );
      startPlugin.push((await timed(() => docker(["start", c]))).ms);
      await interfaces(c);
      await rmc();
    }
    const none = percentile(startNone, 50);
    const nullStart = percentile(startNull, 50);
    const bridge = percentile(startBridge, 50);
    const plug = percentile(startPlugin, 50);
    const floor = nullStart - none;
    const overhead = plug - none;
    const floorNote =
      floor > TARGET_MS
        ? `the floor (a remote driver that does nothing) is itself ${Math.round(floor)} ms, above the ` +
          `${TARGET_MS} ms target: that much is Docker's own cost here; the plugin adds ` +
          `${Math.round(overhead - floor)} ms on top`
        : `floor (a remote driver that does nothing): ${Math.round(floor)} ms; the plugin adds ` +
          `${Math.round(overhead - floor)} ms on top`;
    return {
      id: 5,
      name: `Docker: container start with ${ifaces} plugin interfaces`,
      status: "ran",
      params: { interfaces: ifaces, repetitions: reps, runtime },
      figures: [
        figure(
          {
            name: "docker start overhead vs --network none (median)",
            unit: "ms",
            agent: overhead,
            floor,
            target: `<= ${TARGET_MS} ms`,
            note: floorNote,
          },
          (f) => f.agent <= TARGET_MS,
        ),
        figure({
          name: "docker start with plugin interfaces",
          unit: "ms",
          agent: plug,
          baseline: none,
          floor: nullStart,
          note: `baseline: --network none; floor: ${ifaces} null-driver networks; runtime ${runtime}`,
        }),
        figure({
          name: "docker start overhead vs the null-driver floor",
          unit: "ms",
          agent: plug - nullStart,
          note: "what the plugin itself adds to a container start",
        }),
        figure({
          name: `reference: docker start with ${ifaces} of Docker's own bridge networks`,
          unit: "ms",
          agent: bridge,
          note: `Docker's built-in driver; its overhead vs --network none: ${Math.round(bridge - none)} ms`,
        }),
        figure({
          name: "docker start overhead vs the same container on Docker's bridge networks",
          unit: "ms",
          agent: plug - bridge,
        }),
        figure({
          name: `docker create + ${ifaces - 1} network connect`,
          unit: "ms",
          agent: percentile(setup, 50),
        }),
      ],
    };
  });
}

const PARALLEL_TARGET = 1.2;

/**
 * Scenario 8: a lab's containers started at once. A network is one interface slot of a lab, so
 * a lab of `containers` containers with `ifaces` interfaces each is `ifaces` networks with every
 * container on all of them; all containers are started by parallel `docker start`s. The agent's
 * overhead (wall time of the parallel starts minus the same containers on `--network none`) is
 * compared with the floor's: the same containers on as many null-driver networks.
 */
export async function dockerParallelStart(
  containers: number,
  ifaces: number,
  reps: number,
): Promise<ScenarioResult> {
  const name = `Docker: ${containers} containers x ${ifaces} plugin interfaces started at once`;
  const skip = (reason: string): ScenarioResult => ({ id: 8, name, status: "skipped", reason, figures: [] });
  if (!(await ok(docker(["info"])))) return skip("no Docker daemon answers");
  if (!(await ok(docker(["image", "inspect", IMAGE])))) return skip(`image ${IMAGE} missing`);
  return scoped(async () => {
    const runtime = (await docker(["info", "--format", "{{.DefaultRuntime}}"])).stdout.trim() || "runc";
    const id = randomBytes(3).toString("hex");
    const driver = `archbench${id}`;
    const socket = `/run/docker/plugins/${driver}.sock`;
    await startEnv({ pluginSocket: socket });
    for (let i = 0; i < 20 && !existsSync(socket); i++) await sleep(50);
    if (!existsSync(socket)) return skip(`the agent created no plugin socket at ${socket}`);
    const nul = await startNullDriver(`archnull${id}`);

    const networks = async (tag: string, args: (k: number) => string[]) => {
      const out: string[] = [];
      for (let k = 1; k <= ifaces; k++) {
        const net = `${driver}-${tag}${k}`;
        await docker(["network", "create", ...args(k), net]);
        out.push(net);
        onCleanup(`docker network ${net}`, () => dockerUndo(["network", "rm", net]));
      }
      return out;
    };
    const lab = `benchpar${id}`;
    const plugin = await networks("", (k) => [
      "-d",
      driver,
      "--ipam-driver",
      "null",
      "-o",
      `lab_id=${lab}`,
      "-o",
      `interface_name=eth${k}`,
    ]);
    const nulls = await networks("null", () => ["-d", nul.name, "--ipam-driver", "null"]);

    /** Creates the containers on `nets` (none: `--network none`), outside the timing. */
    const createAll = async (tag: string, nets: readonly string[]) => {
      const names = Array.from({ length: containers }, (_, i) => `${driver}-${tag}-${i}`);
      // One at a time: Docker's endpoint count of a network can go stale when its containers
      // are removed in parallel (moby/moby#42119), and the network cannot be removed then.
      const remove = onCleanup(`containers ${names.join(" ")}`, async () => {
        for (const c of names) await dockerUndo(["rm", "-f", c]);
      });
      for (const c of names) {
        await docker(
          ["create", "--name", c, "--runtime", runtime, "--network", nets[0] ?? "none", IMAGE].concat([
            "sleep",
            "600",
          ]),
        );
        for (const n of nets.slice(1)) await docker(["network", "connect", n, c]);
      }
      return { names, remove };
    };
    const startAll = (names: readonly string[]) =>
      timed(() => Promise.all(names.map((c) => docker(["start", c]))));
    const check = async (names: readonly string[]) => {
      for (const c of names) {
        const seen = (await docker(["exec", c, "ls", "/sys/class/net"])).stdout
          .split(/\s+/)
          .filter((x) => /^eth\d+$/.test(x));
        if (seen.length < ifaces) throw new Error(`container ${c} has ${seen.length} of ${ifaces}: ${seen}`);
      }
    };

    const none: number[] = [];
    const floor: number[] = [];
    const agent: number[] = [];
    for (let r = 0; r < reps; r++) {
      const plain = await createAll(`none${r}`, []);
      none.push((await startAll(plain.names)).ms);
      await plain.remove();

      const onFloor = async () => {
        await nul.prepare(containers * ifaces - nul.spare());
        const fl = await createAll(`null${r}`, nulls);
        floor.push((await startAll(fl.names)).ms);
        await check(fl.names);
        await fl.remove();
      };
      const onAgent = async () => {
        const ours = await createAll(`c${r}`, plugin);
        agent.push((await startAll(ours.names)).ms);
        await check(ours.names);
        await ours.remove();
      };
      // Alternating order: what one leaves behind (Docker removing containers) slows the next.
      for (const step of r % 2 === 0 ? [onFloor, onAgent] : [onAgent, onFloor]) await step();
    }
    const base = percentile(none, 50);
    const floorOverhead = percentile(floor, 50) - base;
    const overhead = percentile(agent, 50) - base;
    return {
      id: 8,
      name,
      status: "ran",
      params: { containers, interfaces: ifaces, repetitions: reps, runtime },
      figures: [
        figure(
          {
            name: `${containers} parallel docker starts: overhead vs --network none (median)`,
            unit: "ms",
            agent: overhead,
            floor: floorOverhead,
            target: `<= ${PARALLEL_TARGET}x floor`,
            note: `floor: the same containers on ${ifaces} null-driver networks; all: agent ${agent.map(Math.round)}, floor ${floor.map(Math.round)}, none ${none.map(Math.round)} ms`,
          },
          (f) => f.agent <= PARALLEL_TARGET * (f.floor ?? 0),
        ),
        figure({
          name: `${containers} parallel docker starts with ${ifaces} plugin interfaces each (wall)`,
          unit: "ms",
          agent: percentile(agent, 50),
          baseline: base,
          floor: percentile(floor, 50),
          note: "baseline: the same containers on --network none",
        }),
      ],
    };
  });
}
