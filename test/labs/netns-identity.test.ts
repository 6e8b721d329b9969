import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { BackendName } from "../../src/backends/network-backend.js";
import { AgentError, type ErrorCode } from "../../src/common/errors.js";
import { run } from "../../src/common/exec.js";
import { listLinks, type NetnsRef } from "../../src/link/index.js";
import type { LabSpec } from "../../src/model/views.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { NetnsPool } from "../harness/netns.js";
import { hostVeths, kernelLinks, ownedPorts } from "./facts.js";

/**
 * A node's namespace is checked before anything is made in it, and a node given by pid or path
 * is bound to the namespace it pointed to then: real namespaces, real processes, real OVS.
 */

const inode = (path: string): number | undefined => {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
};
const OWN = inode("/proc/self/ns/net");

/** Polls a condition of the kernel with a deadline (process start, namespace switch). */
async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function rejects(p: Promise<unknown>, code: ErrorCode, status: number, what: string) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AgentError, `${what}: expected an AgentError, got ${String(e)}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    assert.equal(e.status, status, what);
    return true;
  });
}

/** Processes of a test, each in a network namespace of its own; all killed at the end. */
class Sleepers {
  private readonly procs: ChildProcess[] = [];
  /** `unshare -n` + a shell that, on a line on stdin, unshares again: same pid, new namespace. */
  async start(): Promise<{ pid: number; ns: () => number | undefined; proc: ChildProcess }> {
    const proc = spawn("unshare", ["-n", "sh", "-c", "read x; exec unshare -n sleep 1000"], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    this.procs.push(proc);
    const pid = proc.pid!;
    const ns = () => inode(`/proc/${pid}/ns/net`);
    await until(`process ${pid} in its own namespace`, () => ns() !== undefined && ns() !== OWN);
    return { pid, ns, proc };
  }
  async killAll(): Promise<void> {
    await Promise.all(this.procs.map((p) => kill(p)));
  }
}

async function kill(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once("exit", r));
  p.kill("SIGKILL");
  await gone;
}

for (const backend of ["ovs", "local"] as BackendName[]) {
  describe(`node namespaces (${backend} backend)`, () => {
    let t: TestAgent;
    const pool = new NetnsPool("nsi");
    const sleepers = new Sleepers();
    let dir: string;
    before(async () => {
      t = await startTestAgent({ backend });
      dir = await mkdtemp(join(tmpdir(), "archnet-nsi-"));
    });
    after(async () => {
      await sleepers.killAll();
      await run("umount", [join(dir, "ns")], { okCodes: [32] }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      await pool.destroyAll();
      await t?.close();
    });

    test("files that are no node namespace are refused at once with a 400; nothing changes", async () => {
      const [ok] = (await pool.create(1)) as [string];
      const fifo = join(dir, "fifo");
      await run("mkfifo", [fifo]);
      const switchNs = t.ovs.netns;
      const refused: [string, { netns?: string; pid?: number }][] = [
        ["a plain file", { netns: "/etc/passwd" }],
        ["a FIFO (ip would block opening it)", { netns: fifo }],
        ["a device", { netns: "/dev/null" }],
        ["a directory", { netns: dir }],
        ["another namespace type", { netns: "/proc/self/ns/uts" }],
        ["the agent's own namespace, by path", { netns: "/proc/self/ns/net" }],
        ["the agent's own namespace, by pid", { pid: process.pid }],
        ...(switchNs === undefined
          ? []
          : ([
              ["the switch's namespace, by name", { netns: switchNs }],
              ["the switch's namespace, by path", { netns: `/var/run/netns/${switchNs}` }],
            ] as [string, { netns: string }][])),
      ];
      const lab = `bad-${backend}`;
      const before1 = {
        labs: JSON.stringify(t.agent.store.labs()),
        ports: await ownedPorts(t.ovs),
        veths: await hostVeths(t.ovs),
        ok: await kernelLinks(ok),
      };
      for (const [what, ref] of refused) {
        const spec: LabSpec = {
          nodes: [
            { name: "r1", netns: ok, interfaces: [{ name: "eth1" }] },
            { name: "r2", ...ref, interfaces: [{ name: "eth1" }] },
          ],
          links: [{ a: "r1:eth1", b: "r2:eth1" }],
        };
        await rejects(t.agent.labs.putLab(lab, spec), "BAD_REQUEST", 400, what);
        await rejects(
          t.agent.labs.addInterfaces(lab, "r9", { ...ref, interfaces: [{ name: "eth1" }] }),
          "BAD_REQUEST",
          400,
          what,
        );
      }
      assert.deepEqual(
        {
          labs: JSON.stringify(t.agent.store.labs()),
          ports: await ownedPorts(t.ovs),
          veths: await hostVeths(t.ovs),
          ok: await kernelLinks(ok),
        },
        before1,
      );
    });

    test("a pid that exits, or now points to another namespace, leaves its node lost: nothing is made there", async (c) => {
      const lab = `lost-${backend}`;
      c.after(() => t.agent.labs.deleteLab(lab).catch(() => undefined));
      const [named, other1, other2] = (await pool.create(3)) as [string, string, string];
      const moving = await sleepers.start(); // will switch to a new namespace under the same pid
      const dying = await sleepers.start(); // will be killed
      // A path whose bind mount is later replaced by another namespace.
      const mount = join(dir, "ns");
      await run("touch", [mount]);
      await run("mount", ["--bind", `/var/run/netns/${other1}`, mount]);

      const spec: LabSpec = {
        nodes: [
          { name: "hub", netns: named, interfaces: [{ name: "eth1" }, { name: "eth2" }, { name: "eth3" }] },
          { name: "mv", pid: moving.pid, interfaces: [{ name: "eth1" }] },
          { name: "dy", pid: dying.pid, interfaces: [{ name: "eth1" }] },
          { name: "pa", netns: mount, interfaces: [{ name: "eth1" }] },
        ],
        links: [
          { a: "hub:eth1", b: "mv:eth1" },
          { a: "hub:eth2", b: "dy:eth1" },
          { a: "hub:eth3", b: "pa:eth1" },
        ],
      };
      await t.agent.labs.putLab(lab, spec);
      const names = async (ref: NetnsRef) => (await listLinks(ref)).map((l) => l.name).sort();
      assert.deepEqual(await names({ pid: moving.pid }), ["eth1", "lo"]);
      assert.deepEqual(await names({ pid: dying.pid }), ["eth1", "lo"]);
      assert.deepEqual(await names({ name: other1 }), ["eth1", "lo"]);
      const rec = t.agent.store.lab(lab)!;
      assert.equal(rec.nodes.mv?.netnsId?.ino, moving.ns(), "the identity is recorded at creation");
      assert.equal(rec.nodes.hub?.netnsId, undefined, "a named namespace is known by its name");
      assert.ok(t.agent.labs.getLab(lab).nodes.every((n) => n.state === "ok"));

      // The moving process unshares again (same pid, new namespace; the old one dies with its
      // veth), the dying one is killed and another process starts, the path is mounted over
      // with another namespace (the old one deleted, its veth with it).
      const first = moving.ns();
      moving.proc.stdin!.end("go\n");
      await until("the moved process in a new namespace", () => {
        const now = moving.ns();
        return now !== undefined && now !== first && now !== OWN;
      });
      const dyingPid = dying.pid;
      await kill(dying.proc);
      const newcomer = await sleepers.start();
      await run("umount", [mount]);
      await run("ip", ["netns", "delete", other1]);
      await run("mount", ["--bind", `/var/run/netns/${other2}`, mount]);
      // Each lost node's veth is gone from the kernel (its namespace took it along).
      if (backend === "ovs") {
        const ports = new Set(["mv", "dy", "pa"].map((n) => rec.nodes[n]!.interfaces.eth1!.hostPort));
        await until("the lost nodes' host ends vanish", async () =>
          (await hostVeths(t.ovs)).every((v) => !ports.has(v)),
        );
      }

      await t.restart(); // reconciles at start
      await t.agent.reconcile();
      for (const [what, ref] of [
        ["the moved pid's new namespace", { pid: moving.pid }],
        ["the newcomer's namespace", { pid: newcomer.pid }],
        ["the namespace now at the path", { name: other2 }],
      ] as [string, NetnsRef][]) {
        assert.deepEqual(await names(ref), ["lo"], what);
      }
      const view = t.agent.labs.getLab(lab);
      const state = Object.fromEntries(view.nodes.map((n) => [n.name, [n.state, n.reason ?? ""]]));
      assert.deepEqual(state.hub, ["ok", ""]);
      assert.equal(state.mv?.[0], "lost");
      assert.match(state.mv?.[1] ?? "", new RegExp(`pid ${moving.pid} is in another network namespace`));
      assert.equal(state.dy?.[0], "lost");
      assert.match(state.dy?.[1] ?? "", new RegExp(`process ${dyingPid} has exited`));
      assert.equal(state.pa?.[0], "lost");
      assert.match(state.pa?.[1] ?? "", /holds another network namespace now/);

      // Adding interfaces to a lost node is refused; re-declaring it with its new pid works.
      await rejects(
        t.agent.labs.addInterfaces(lab, "mv", { pid: moving.pid, interfaces: [{ name: "eth2" }] }),
        "NETNS_NOT_FOUND",
        404,
        "adding to a lost node",
      );
      assert.deepEqual(await names({ pid: moving.pid }), ["lo"]);
      const again: LabSpec = {
        ...spec,
        nodes: spec.nodes.map((n) => (n.name === "dy" ? { ...n, pid: newcomer.pid } : n)),
      };
      await t.agent.labs.putLab(lab, again);
      assert.deepEqual(await names({ pid: newcomer.pid }), ["eth1", "lo"]);
      const dy = t.agent.labs.getLab(lab).nodes.find((n) => n.name === "dy");
      assert.equal(dy?.state, "ok");
    });
  });
}
