import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../src/common/exec.js";
import { onCleanup, scoped } from "../lib/cleanup.js";
import { startEnv } from "../lib/env.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { percentile, timed } from "../lib/stats.js";

const IMAGE = "busybox:local";

const docker = (args: string[]) => run("docker", args, { timeoutMs: 60_000 });

function skipped(reason: string, ifaces: number): ScenarioResult {
  return {
    id: 5,
    name: `Docker: container start with ${ifaces} plugin interfaces`,
    status: "skipped",
    reason,
    figures: [],
  };
}

/** Scenario 5: `docker start` of a container with N plugin interfaces vs one with `--network none`. */
export async function dockerStart(ifaces: number, reps: number): Promise<ScenarioResult> {
  if (
    !(await docker(["info"]).then(
      () => true,
      () => false,
    ))
  )
    return skipped("no Docker daemon answers", ifaces);
  if (
    !(await docker(["image", "inspect", IMAGE]).then(
      () => true,
      () => false,
    ))
  )
    return skipped(`image ${IMAGE} missing (make setup-test imports it)`, ifaces);
  return scoped(async () => {
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

    const names: string[] = [];
    for (let k = 1; k <= ifaces; k++) {
      const net = `${driver}-${k}`;
      await docker([
        "network",
        "create",
        "-d",
        driver,
        "-o",
        "lab_id=benchdock",
        "-o",
        `interface_name=eth${k}`,
        net,
      ]);
      names.push(net);
      onCleanup(`docker network ${net}`, () => docker(["network", "rm", net]));
    }
    // Reference: Docker's own bridge driver with as many networks (what Docker itself costs per
    // network on this machine), on benchmark-range subnets.
    const bridges: string[] = [];
    for (let k = 1; k <= ifaces; k++) {
      const net = `${driver}-br${k}`;
      await docker(["network", "create", "-d", "bridge", "--subnet", `198.19.${200 + k}.0/24`, net]);
      bridges.push(net);
      onCleanup(`docker network ${net}`, () => docker(["network", "rm", net]));
    }
    const startNone: number[] = [];
    const startPlugin: number[] = [];
    const startBridge: number[] = [];
    const setup: number[] = [];
    for (let r = 0; r < reps; r++) {
      const plain = `${driver}-none-${r}`;
      onCleanup(`container ${plain}`, () => docker(["rm", "-f", plain]));
      await docker(["create", "--name", plain, "--network", "none", IMAGE, "sleep", "600"]);
      startNone.push((await timed(() => docker(["start", plain]))).ms);
      await docker(["rm", "-f", plain]);

      const br = `${driver}-bridge-${r}`;
      onCleanup(`container ${br}`, () => docker(["rm", "-f", br]));
      await docker(["create", "--name", br, "--network", bridges[0]!, IMAGE, "sleep", "600"]);
      for (const n of bridges.slice(1)) await docker(["network", "connect", n, br]);
      startBridge.push((await timed(() => docker(["start", br]))).ms);
      await docker(["rm", "-f", br]);

      const c = `${driver}-c${r}`;
      onCleanup(`container ${c}`, () => docker(["rm", "-f", c]));
      const s = await timed(async () => {
        await docker(["create", "--name", c, "--network", names[0]!, IMAGE, "sleep", "600"]);
        for (const n of names.slice(1)) await docker(["network", "connect", n, c]);
      });
      setup.push(s.ms);
      startPlugin.push((await timed(() => docker(["start", c]))).ms);
      const seen = (await docker(["exec", c, "ls", "/sys/class/net"])).stdout
        .split(/\s+/)
        .filter((x) => /^eth\d+$/.test(x));
      if (seen.length < ifaces)
        throw new Error(`container ${c} has ${seen.length} of ${ifaces} interfaces: ${seen.join(" ")}`);
      await docker(["rm", "-f", c]);
    }
    const none = percentile(startNone, 50);
    const plug = percentile(startPlugin, 50);
    return {
      id: 5,
      name: `Docker: container start with ${ifaces} plugin interfaces`,
      status: "ran",
      params: { interfaces: ifaces, repetitions: reps },
      figures: [
        figure(
          {
            name: "docker start overhead vs --network none (median)",
            unit: "ms",
            agent: plug - none,
            target: "<= 300 ms",
          },
          (f) => f.agent <= 300,
        ),
        figure({
          name: "docker start with plugin interfaces",
          unit: "ms",
          agent: plug,
          baseline: none,
          note: "baseline: --network none",
        }),
        figure({
          name: `reference: docker start with ${ifaces} of Docker's own bridge networks`,
          unit: "ms",
          agent: percentile(startBridge, 50),
          note: "Docker's built-in driver: what Docker itself costs per network here",
        }),
        figure({
          name: "docker start overhead vs the same container on Docker's bridge networks",
          unit: "ms",
          agent: plug - percentile(startBridge, 50),
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
