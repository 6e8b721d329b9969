import { spawn } from "node:child_process";
import { request } from "node:http";
import { type RunningApi, startApi } from "../../src/api/server.js";
import { run, spawnStreaming } from "../../src/common/exec.js";
import { silentLogger } from "../../src/common/log.js";
import { netnsPath } from "../../src/link/netns.js";
import { netemMissing, qdiscLine, tcBatch } from "../../src/link/tc.js";
import type { ImpairmentDirection } from "../../src/model/records.js";
import { addAddress } from "../../test/harness/netns.js";
import { onCleanup, scoped } from "../lib/cleanup.js";
import { startEnv } from "../lib/env.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { now, summary } from "../lib/stats.js";
import { makeTopology } from "../lib/topology.js";

/**
 * Scenario 14: impairment set and clear of one link (a rate, which is tbf; netem where the kernel
 * has it), through the agent (validation, the lab record written durably, one tc batch), vs one
 * `tc` process per direction (baseline) and the same batch alone (floor).
 */
export async function impairmentSetClear(links: number, rounds: number): Promise<ScenarioResult> {
  return scoped(async () => {
    const { t, switchNetns } = await startEnv();
    const topo = await makeTopology(links, "bim");
    await t.agent.labs.putLab("im", topo.spec);
    const lab = t.agent.store.lab("im")!;
    const ids = Object.keys(lab.links);
    const netem = netemMissing() === undefined;
    const shapes: [string, ImpairmentDirection][] = [["rate (tbf)", { rate_kbit: 10_000 }]];
    if (netem) shapes.push(["delay+loss (netem)", { delay_ms: 10, loss_pct: 1 }]);
    const hostOf = (end: string) => {
      const [n, i] = end.split(":") as [string, string];
      return lab.nodes[n]!.interfaces[i]!;
    };
    const figures = [];
    for (const [label, dir] of shapes) {
      const set: number[] = [];
      const clear: number[] = [];
      const base: number[] = [];
      const floor: number[] = [];
      for (let r = 0; r < rounds; r++) {
        for (const id of ids) {
          let t0 = now();
          await t.agent.services.impairments.set("im", id, { a_to_b: dir, b_to_a: dir });
          set.push(now() - t0);
          t0 = now();
          await t.agent.services.impairments.set("im", id, undefined);
          clear.push(now() - t0);
        }
      }
      // The same work without the agent: per direction one process, or both in one batch.
      for (const id of ids.slice(0, Math.min(ids.length, 20))) {
        const l = lab.links[id]!;
        const ends = [hostOf(l.b), hostOf(l.a)];
        let t0 = now();
        for (const e of ends) {
          await run("ip", ["netns", "exec", switchNetns, "tc", ...qdiscLine(e.hostPort, dir, e.mtu)]);
        }
        for (const e of ends) {
          await run("ip", ["netns", "exec", switchNetns, "tc", ...qdiscLine(e.hostPort, undefined, e.mtu)]);
        }
        base.push((now() - t0) / 2);
        t0 = now();
        await tcBatch(
          ends.map((e) => qdiscLine(e.hostPort, dir, e.mtu)),
          { name: switchNetns },
        );
        await tcBatch(
          ends.map((e) => qdiscLine(e.hostPort, undefined, e.mtu)),
          { name: switchNetns },
        );
        floor.push((now() - t0) / 2);
      }
      const s = summary(set);
      const c = summary(clear);
      const b = summary(base);
      const f = summary(floor);
      figures.push(
        figure(
          {
            name: `impairment set, both directions, ${label}, p50`,
            unit: "ms",
            agent: s.p50,
            baseline: b.p50,
            floor: f.p50,
            target: "<= 50 ms per link",
          },
          (x) => x.agent <= 50,
        ),
        figure({ name: `impairment set, ${label}, p99`, unit: "ms", agent: s.p99 }),
        figure(
          {
            name: `impairment clear, ${label}, p50`,
            unit: "ms",
            agent: c.p50,
            baseline: b.p50,
            floor: f.p50,
            target: "<= 50 ms per link",
          },
          (x) => x.agent <= 50,
        ),
        figure({ name: `impairment clear, ${label}, p99`, unit: "ms", agent: c.p99 }),
      );
    }
    return {
      id: 14,
      name: "impairment set/clear per link",
      status: "ran",
      params: { links, rounds, netem, note: netem ? undefined : "this kernel has no netem: tbf only" },
      figures,
    };
  });
}

/** The ms from sending the request until the response's headers and until its first frame. */
function captureOnce(api: RunningApi, path: string): Promise<{ headers: number; frame: number }> {
  const { port } = new URL(api.address);
  return new Promise((resolve, reject) => {
    const t0 = now();
    let headers = 0;
    const req = request({ host: "127.0.0.1", port: Number(port), path }, (res) => {
      headers = now() - t0;
      if (res.statusCode !== 200) {
        reject(new Error(`capture answered ${res.statusCode}`));
        return;
      }
      let got = 0;
      res.on("data", (d: Buffer) => {
        got += d.length;
        // 24 bytes of pcap header, then a frame's 16-byte record header and data.
        if (got > 24 + 16) {
          const frame = now() - t0;
          req.destroy();
          resolve({ headers, frame });
        }
      });
    });
    req.on("error", (e) => {
      if (headers === 0) reject(e);
    });
    req.end();
  });
}

/**
 * Scenario 15: capture start, from the HTTP request to the first frame of the pcap stream, on a
 * link carrying a ping every 2 ms (so a frame follows start within ~2 ms); and the floor, the same
 * tcpdump started directly until it says it listens.
 */
export async function captureStart(samples: number): Promise<ScenarioResult> {
  return scoped(async () => {
    const { t, switchNetns } = await startEnv();
    const topo = await makeTopology(1, "bcp");
    await t.agent.labs.putLab("cp", topo.spec);
    const [a, b] = [topo.ifaces[0]!, topo.ifaces[1]!];
    await addAddress(a.netns, a.name, "198.18.61.1/24");
    await addAddress(b.netns, b.name, "198.18.61.2/24");
    const pinger = spawn("ip", ["netns", "exec", a.netns, "ping", "-q", "-i", "0.002", "198.18.61.2"], {
      stdio: "ignore",
    });
    onCleanup("pinger", async () => {
      pinger.kill();
    });
    const api = await startApi(t.agent.services, { logger: silentLogger() });
    onCleanup("capture bench API", () => api.close());
    const path = "/labs/cp/links/l0/capture";
    const heads: number[] = [];
    const frames: number[] = [];
    await captureOnce(api, path); // warm-up
    for (let i = 0; i < samples; i++) {
      // One capture at a time: the previous one's tcpdump is gone first.
      while (t.agent.services.captures.active() > 0) await new Promise((r) => setTimeout(r, 5));
      const r = await captureOnce(api, path);
      heads.push(r.headers);
      frames.push(r.frame);
    }
    const hostPort = t.agent.store.lab("cp")!.nodes[a.node]!.interfaces[a.name]!.hostPort;
    const floor: number[] = [];
    for (let i = 0; i < Math.min(samples, 10); i++) {
      const t0 = now();
      const p = spawnStreaming("nsenter", [
        `--net=${netnsPath({ name: switchNetns })}`,
        "tcpdump",
        "-Z",
        "root",
        "--immediate-mode",
        "-U",
        "-w",
        "-",
        "-i",
        hostPort,
      ]);
      await new Promise<void>((resolve) => {
        let text = "";
        p.child.stderr.on("data", (d: Buffer) => {
          text += String(d);
          if (text.includes("listening on")) resolve();
        });
        void p.exited.then(() => resolve());
      });
      floor.push(now() - t0);
      await p.stop();
    }
    const h = summary(heads);
    const f = summary(frames);
    const fl = summary(floor);
    return {
      id: 15,
      name: "capture start to first packet",
      status: "ran",
      params: { samples, traffic: "ping every 2 ms" },
      figures: [
        figure({
          name: "capture request -> stream open (tcpdump listens), p50",
          unit: "ms",
          agent: h.p50,
          floor: fl.p50,
        }),
        figure(
          {
            name: "capture request -> first frame, p50",
            unit: "ms",
            agent: f.p50,
            floor: fl.p50,
            target: "<= 100 ms",
          },
          (x) => x.agent <= 100,
        ),
        figure({ name: "capture request -> first frame, p99", unit: "ms", agent: f.p99 }),
      ],
    };
  });
}
