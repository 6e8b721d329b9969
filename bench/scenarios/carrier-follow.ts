import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { OvsBackend } from "../../src/backends/ovs/ovs-backend.js";
import { ipBatch } from "../../src/link/index.js";
import { onCleanup, scoped } from "../lib/cleanup.js";
import { startEnv } from "../lib/env.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { now, summary } from "../lib/stats.js";
import { makeTopology } from "../lib/topology.js";

const NAME = "carrier follows across a link";

/** A long-lived process in `ns` (no process start inside the measured time). */
function inNetns(ns: string, args: string[]) {
  const child = spawn("ip", ["netns", "exec", ns, ...args], { stdio: ["pipe", "pipe", "inherit"] });
  onCleanup(`${args[0]} in ${ns}`, async () => {
    child.kill();
  });
  return child;
}

/**
 * Scenario 11: from `ip link set eth1 down` in one node to NO-CARRIER on the peer node's eth1
 * (seen by `ip monitor link` inside the peer), and the work a flap storm costs the agent.
 */
export async function carrierFollow(samples: number): Promise<ScenarioResult> {
  return scoped(async () => {
    const { t } = await startEnv();
    const topo = await makeTopology(1, "bcf");
    await t.agent.labs.putLab("cf", topo.spec);
    const [a, b] = [topo.ifaces[0]!, topo.ifaces[1]!];
    const backend = t.agent.services.backend as OvsBackend;
    const follow = backend.follow;
    const hostA = t.agent.store.labs()[0]!.nodes[a.node]!.interfaces[a.name]!.hostPort;
    // When the agent hears of it: ovs-vswitchd's and ovsdb-server's part of the time.
    let seenDown = 0;
    backend.ovsdb.on("change", (c: { table: string; new?: { name?: unknown; link_state?: unknown } }) => {
      if (c.table === "Interface" && c.new?.name === hostA && c.new.link_state === "down" && seenDown === 0)
        seenDown = now();
    });

    // The peer's link events, one line each (`ip monitor` flushes every message).
    const monitor = inNetns(b.netns, ["ip", "-o", "monitor", "link", "dev", b.name]);
    const waiters: { want: (line: string) => boolean; resolve: () => void }[] = [];
    createInterface({ input: monitor.stdout }).on("line", (line) => {
      for (const [i, w] of waiters.entries()) {
        if (w.want(line)) {
          waiters.splice(i, 1);
          w.resolve();
          break;
        }
      }
    });
    const next = (want: (line: string) => boolean) =>
      new Promise<void>((resolve) => waiters.push({ want, resolve }));
    const noCarrier = (l: string) => l.includes("NO-CARRIER");
    const carrier = (l: string) => l.includes("LOWER_UP") && !l.includes("NO-CARRIER");
    // The node's own commands go through one `ip -batch -` reading its stdin.
    const node = inNetns(a.netns, ["ip", "-batch", "-"]);
    const say = (state: "up" | "down") => node.stdin.write(`link set dev ${a.name} ${state}\n`);
    // ip monitor is listening once it reports a change: flaps until it does.
    for (let seen = false; !seen; ) {
      const w = next(noCarrier);
      say("down");
      seen = await Promise.race([
        w.then(() => true),
        new Promise<boolean>((r) => setTimeout(r, 1000, false)),
      ]);
      waiters.length = 0;
      say("up");
    }
    let up = next(carrier);
    say("up");
    await up;

    const ms: number[] = [];
    const ovs: number[] = [];
    for (let i = 0; i < samples; i++) {
      const down = next(noCarrier);
      seenDown = 0;
      const t0 = now();
      say("down");
      await down;
      ms.push(now() - t0);
      if (seenDown > 0) ovs.push(seenDown - t0);
      up = next(carrier);
      say("up");
      await up;
    }
    await follow.idle();

    // Flap storm: 50 toggles in one burst, ending up; the agent's peer changes it cost.
    const before = { changes: follow.changes, rounds: follow.rounds };
    const storm: string[][] = [];
    for (let i = 0; i < 50; i++) storm.push(["link", "set", "dev", a.name, i % 2 === 0 ? "down" : "up"]);
    await ipBatch(storm, { netns: { name: a.netns } });
    await follow.idle();
    const changes = follow.changes - before.changes;
    const rounds = follow.rounds - before.rounds;
    const s = summary(ms);
    const o = summary(ovs);
    return {
      id: 11,
      name: NAME,
      status: "ran",
      params: { samples },
      figures: [
        figure({ name: "node down -> peer NO-CARRIER, p50", unit: "ms", agent: s.p50 }),
        figure(
          { name: "node down -> peer NO-CARRIER, p99", unit: "ms", agent: s.p99, target: "< 100 ms" },
          (f) => f.agent < 100,
        ),
        figure({ name: "of which: until the agent hears of it (OVSDB), p50", unit: "ms", agent: o.p50 }),
        figure({ name: "of which: until the agent hears of it (OVSDB), p99", unit: "ms", agent: o.p99 }),
        figure(
          {
            name: "flap storm (50 toggles): peer carrier changes",
            unit: "changes",
            agent: changes,
            target: "<= 100 (two per flap at most)",
            note: `${rounds} evaluation rounds; propagation max ${s.max.toFixed(1)} ms`,
          },
          (f) => f.agent <= 100,
        ),
      ],
    };
  });
}
