/**
 * Packet capture through the real agent's HTTP API (auth on): pcap streams of a link and of an
 * interface with the frames the nodes send, in order, both directions; the capture's tcpdump
 * gone once the client leaves; bad filters and options refused; the concurrent limit.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { type RunningApi, startApi } from "../../src/api/server.js";
import { run } from "../../src/common/exec.js";
import { silentLogger } from "../../src/common/log.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool, nsExec } from "../harness/netns.js";
import { icmpEcho, parsePcap } from "../harness/pcap.js";
import { expectPing } from "../harness/traffic.js";

const LAB = "cap";
const secret = "capture-secret";
let t: TestAgent;
let api: RunningApi;
const pool = new NetnsPool("cap");
let n1: string;
let n2: string;

function get(path: string, opts: { token?: string | null; signal?: AbortSignal } = {}): Promise<Response> {
  const token = opts.token === undefined ? secret : opts.token;
  return fetch(`${api.address}${path}`, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    signal: opts.signal ?? AbortSignal.timeout(60_000),
  });
}

function hostPort(node: string): string {
  return t.agent.store.lab(LAB)!.nodes[node]!.interfaces.eth1!.hostPort;
}

/** The pids of tcpdumps capturing this device (there is one per capture). */
async function tcpdumpsOn(dev: string): Promise<string[]> {
  const r = await run("pgrep", ["-f", `tcpdump .*-i ${dev}( |$)`], { okCodes: [1] });
  return r.stdout.split("\n").filter((l) => l.trim() !== "");
}

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  t = await startTestAgent({ secret, maxCaptures: 2 });
  [n1, n2] = (await pool.create(2)) as [string, string];
  await t.agent.labs.putLab(LAB, {
    nodes: [
      { name: "a", netns: n1, interfaces: [{ name: "eth1", mtu: 1500 }, { name: "eth2" }] },
      { name: "b", netns: n2, interfaces: [{ name: "eth1", mtu: 1500 }] },
    ],
    links: [
      { a: "a:eth1", b: "b:eth1", id: "l1" },
      { a: "a:eth2", b: "c:eth1", id: "pend" },
      { a: "c:eth2", b: "d:eth1", id: "none" },
    ],
  });
  await addAddress(n1, "eth1", "198.18.41.1/24");
  await addAddress(n2, "eth1", "198.18.41.2/24");
  await expectPing(n1, "198.18.41.2");
  api = await startApi(t.agent.services, { logger: silentLogger() });
});
after(async () => {
  await api?.close();
  await pool.destroyAll();
  await t?.close();
});

describe("packet capture", () => {
  it("a link's stream has the frames a node sends, in order, both directions (count=6, filter=icmp)", async () => {
    const t0 = performance.now();
    const res = await get(`/labs/${LAB}/links/l1/capture?count=6&filter=${encodeURIComponent("icmp")}`);
    const startMs = performance.now() - t0;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/vnd.tcpdump.pcap");
    assert.match(res.headers.get("content-disposition") ?? "", /cap-a-eth1\.pcap/);
    const body = res.arrayBuffer();
    await nsExec(n1, ["ping", "-n", "-q", "-c", "3", "-i", "0.05", "198.18.41.2"]);
    const pcap = parsePcap(Buffer.from(await body));
    assert.equal(pcap.linkType, 1, "Ethernet");
    assert.equal(pcap.rest, 0);
    const echoes = pcap.frames.map((f) => icmpEcho(f.data));
    assert.deepEqual(
      echoes.map((e) => e && `${e.type === 8 ? "request" : "reply"} ${e.src}>${e.dst} seq ${e.seq}`),
      [1, 1, 2, 2, 3, 3].map((seq, i) =>
        i % 2 === 0
          ? `request 198.18.41.1>198.18.41.2 seq ${seq}`
          : `reply 198.18.41.2>198.18.41.1 seq ${seq}`,
      ),
    );
    const ts = pcap.frames.map((f) => f.ts);
    assert.deepEqual(
      ts,
      [...ts].sort((x, y) => x - y),
    );
    console.log(`# capture started in ${startMs} ms (the target is in make bench, scenario 15)`);
    await until("the capture's tcpdump to exit", async () => (await tcpdumpsOn(hostPort("a"))).length === 0);
  });

  it("an interface's stream (seconds=2) has both directions of its traffic", async () => {
    const res = await get(`/labs/${LAB}/nodes/b/interfaces/eth1/capture?seconds=2`);
    assert.equal(res.status, 200);
    const body = res.arrayBuffer();
    await nsExec(n2, ["ping", "-n", "-q", "-c", "2", "-i", "0.05", "198.18.41.1"]);
    const echoes = parsePcap(Buffer.from(await body))
      .frames.map((f) => icmpEcho(f.data))
      .filter((e) => e !== undefined);
    assert.ok(
      echoes.some((e) => e.type === 8 && e.src === "198.18.41.2"),
      "requests b sent",
    );
    assert.ok(
      echoes.some((e) => e.type === 0 && e.src === "198.18.41.1"),
      "replies b received",
    );
  });

  it("a client that leaves takes the capture's tcpdump with it", async () => {
    const dev = hostPort("a");
    const ctrl = new AbortController();
    const res = await get(`/labs/${LAB}/links/l1/capture`, { signal: ctrl.signal });
    assert.equal(res.status, 200);
    // The pcap header comes at once: the stream is live.
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.length >= 24, "pcap header");
    assert.equal((await tcpdumpsOn(dev)).length, 1);
    assert.equal(t.agent.services.captures.active(), 1);
    ctrl.abort();
    await until("no tcpdump left on the interface", async () => (await tcpdumpsOn(dev)).length === 0);
    await until("the capture slot to be free", () => t.agent.services.captures.active() === 0);
  });

  it("a filter tcpdump does not compile, and bad options, are 400 before anything starts", async () => {
    const marker = `/tmp/archnet-capture-${process.pid}`;
    for (const filter of [
      "icmp and hostx 1",
      "-w /tmp/x",
      `-w ${marker}`,
      "tcp port",
      "a\nb",
      "é",
      "x".repeat(1025),
    ]) {
      const res = await get(`/labs/${LAB}/links/l1/capture?filter=${encodeURIComponent(filter)}`);
      assert.equal(res.status, 400, `${JSON.stringify(filter)}: ${await res.clone().text()}`);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "BAD_REQUEST");
    }
    assert.ok(!existsSync(marker), "no file written");
    for (const q of ["count=0", "count=-1", "count=abc", "seconds=0x", "seconds=-1", "nope=1"]) {
      const res = await get(`/labs/${LAB}/links/l1/capture?${q}`);
      assert.equal(res.status, 400, `${q}: ${await res.text()}`);
    }
    assert.equal((await get(`/labs/${LAB}/links/ghost/capture`)).status, 404);
    assert.equal((await get(`/labs/ghost/links/l1/capture`)).status, 404);
    assert.equal((await get(`/labs/${LAB}/nodes/b/interfaces/eth9/capture`)).status, 404);
    assert.equal((await get(`/labs/${LAB}/nodes/z/interfaces/eth1/capture`)).status, 404);
    assert.equal(t.agent.services.captures.active(), 0);
    assert.equal((await tcpdumpsOn(hostPort("a"))).length, 0);
  });

  it("needs the agent's token", async () => {
    for (const path of [`/labs/${LAB}/links/l1/capture`, `/labs/${LAB}/nodes/a/interfaces/eth1/capture`]) {
      assert.equal((await get(path, { token: null })).status, 401);
      assert.equal((await get(path, { token: "wrong" })).status, 401);
    }
    assert.equal(t.agent.services.captures.active(), 0);
  });

  it("past the agent's limit a capture is 429; a slot is free again once one ends", async () => {
    const ctrls = [new AbortController(), new AbortController()];
    const open = await Promise.all(
      ctrls.map((c) => get(`/labs/${LAB}/links/l1/capture`, { signal: c.signal })),
    );
    assert.deepEqual(
      open.map((r) => r.status),
      [200, 200],
    );
    const third = await get(`/labs/${LAB}/nodes/b/interfaces/eth1/capture`);
    assert.equal(third.status, 429, await third.text());
    ctrls[0]!.abort();
    await until("a free slot", () => t.agent.services.captures.active() === 1);
    const again = await get(`/labs/${LAB}/nodes/b/interfaces/eth1/capture?count=1`);
    assert.equal(again.status, 200);
    ctrls[1]!.abort();
    await nsExec(n1, ["ping", "-n", "-q", "-c", "1", "198.18.41.2"]);
    await again.arrayBuffer();
    await until("no capture running", () => t.agent.services.captures.active() === 0);
  });

  it("a pending link is captured on the end that exists; one with neither end is 409", async () => {
    // link `pend` has end a:eth2 (exists) and c:eth1 (no node c): it captures a:eth2.
    const ok = await get(`/labs/${LAB}/links/pend/capture?seconds=0.2`);
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get("content-disposition") ?? "", /cap-a-eth2\.pcap/);
    assert.ok((await ok.arrayBuffer()).byteLength >= 24);
    const none = await get(`/labs/${LAB}/links/none/capture`);
    assert.equal(none.status, 409, await none.text());
  });
});
