import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeAtomic } from "../../src/common/atomic-file.js";
import { run } from "../../src/common/exec.js";
import type { LabRecord, OverlayRecord } from "../../src/model/records.js";
import { onCleanup, scoped } from "../lib/cleanup.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { mean, now, percentile } from "../lib/stats.js";

/** A lab record as the agent stores it: `links` links between two-interface nodes. */
function labRecord(links: number): LabRecord {
  const rec: LabRecord = { lab: "bench", group: 4242, createdAt: Date.now(), nodes: {}, links: {} };
  for (let i = 0; i < links * 2; i++) {
    const name = `n${i}`;
    rec.nodes[name] = {
      name,
      netns: { name: `bench-ns-${i}` },
      origin: "api",
      interfaces: {
        eth1: {
          name: "eth1",
          hostPort: `ar${i.toString(16).padStart(10, "0")}`,
          mtu: 9000,
          carrier: "up",
          createdAt: 1,
        },
      },
    };
  }
  for (let i = 0; i < links; i++) {
    rec.links[`l${i}`] = {
      id: `l${i}`,
      a: `n${2 * i}:eth1`,
      b: `n${2 * i + 1}:eth1`,
      carrier: "up",
      createdAt: 1,
    };
  }
  return rec;
}

const overlay: OverlayRecord = {
  lab: "bench",
  link: "o1",
  node: "n1",
  interface: "eth2",
  vni: 5001,
  localIp: "198.18.0.1",
  remoteIp: "198.18.0.2",
  mtu: 1450,
  createdAt: 1,
};

/** What the store did before writes were flushed: temporary file and rename, no fsync. */
function plainWrite(path: string, content: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, path);
}

/**
 * Scenario 9: the cost of a durable state write (the store's writeAtomic: write, fsync the file,
 * rename, fsync the directory) against the same write without flushing, in the same run, in a
 * directory on the same filesystem as the default state dir. Rounds alternate the two so that
 * disk noise hits both alike. A figure, not a target.
 */
export async function stateWrite(writes: number): Promise<ScenarioResult> {
  return scoped(async () => {
    const dir = mkdtempSync(join(tmpdir(), "archnet-bench-state-"));
    onCleanup(`state dir ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
    const fs = (await run("findmnt", ["-n", "-o", "FSTYPE,SOURCE", "-T", dir])).stdout.trim();
    const docs = [
      { what: "overlay item", content: JSON.stringify(overlay) },
      { what: "lab of 200 links", content: JSON.stringify(labRecord(200)) },
    ];
    const figures = [];
    for (const { what, content } of docs) {
      const path = join(dir, "doc.json");
      const durable: number[] = [];
      const plain: number[] = [];
      const round = Math.max(1, Math.floor(writes / 10));
      for (let done = 0; done < writes; done += round) {
        for (let i = 0; i < round; i++) {
          const t0 = now();
          await writeAtomic(path, content);
          durable.push(now() - t0);
        }
        for (let i = 0; i < round; i++) {
          const t0 = now();
          plainWrite(path, content);
          plain.push(now() - t0);
        }
      }
      const bytes = Buffer.byteLength(content);
      figures.push(
        figure({
          name: `state write, ${what} (${bytes} B): flushed (file + dir fsync) vs not flushed, mean`,
          unit: "ms",
          agent: mean(durable),
          floor: mean(plain),
        }),
        figure({
          name: `state write, ${what}: writes per second, one after the other`,
          unit: "writes/s",
          agent: 1000 / mean(durable),
          floor: 1000 / mean(plain),
        }),
        figure({
          name: `state write, ${what}: p99`,
          unit: "ms",
          agent: percentile(durable, 99),
          floor: percentile(plain, 99),
        }),
      );
    }
    return {
      id: 9,
      name: "state write durability",
      status: "ran",
      params: { writes, filesystem: fs },
      figures,
    };
  });
}
