/**
 * Capture of an overlay link through host A's real agent API (auth on): two simulated hosts
 * (test/harness/two-hosts.ts), a node on each, one VXLAN overlay link between them. The stream of
 * `GET /overlay/links/{lab}/{link}/capture` on host A holds what A's node sends and receives, in
 * order; the capture's tcpdump goes with the client; bad filters and unknown overlay links are
 * refused before anything starts; the concurrent limit holds.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type RunningApi, startApi } from "../../src/api/server.js";
import { run } from "../../src/common/exec.js";
import { silentLogger } from "../../src/common/log.js";
import type { OverlaySpec } from "../../src/model/views.js";
import { runCli } from "../cli/target.js";
import { addAddress, NetnsPool, nsExec } from "../harness/netns.js";
import { icmpEcho, parsePcap } from "../harness/pcap.js";
import { expectPing } from "../harness/traffic.js";
import { type SimHost, startTwoHosts, type TwoHosts } from "../harness/two-hosts.js";

const LAB = "capov";
const LINK = "ov1";
const VNI = 5071;
const secret = "capture-overlay-secret";
let h: TwoHosts;
let api: RunningApi;
const pool = new NetnsPool("capov");
let na: string;
let nb: string;
let dir: string;

function get(path: string, opts: { token?: string | null; signal?: AbortSignal } = {}): Promise<Response> {
  const token = opts.token === undefined ? secret : opts.token;
  return fetch(`${api.address}${path}`, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    signal: opts.signal ?? AbortSignal.timeout(60_000),
  });
}

/** Host A's port of node a's eth1: the overlay link's end on host A. */
function hostPort(): string {
  return h.a.agent.store.lab(LAB)!.nodes.a!.interfaces.eth1!.hostPort;
}

/** The pids of tcpdumps capturing this device (there is one per capture). */
async function tcpdumpsOn(dev: string): Promise<string[]> {
  const r = await run("pgrep", ["-f", `tcpdump .*-i ${dev}( |$)`], { okCodes: [1] });
  return r.stdout.split("\n").filter((l) => l.trim() !== "");
}

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function spec(from: SimHost, to: SimHost, node: string): OverlaySpec {
  return { lab: LAB, link: LINK, node, interface: "eth1", vni: VNI, local_ip: from.ip, remote_ip: to.ip };
}

before(async () => {
  h = await startTwoHosts({ secret, maxCaptures: 1 });
  [na, nb] = (await pool.create(2)) as [string, string];
  await h.a.agent.labs.addInterfaces(LAB, "a", { netns: na, interfaces: [{ name: "eth1" }] });
  await h.b.agent.labs.addInterfaces(LAB, "b", { netns: nb, interfaces: [{ name: "eth1" }] });
  await addAddress(na, "eth1", "198.19.71.1/24");
  await addAddress(nb, "eth1", "198.19.71.2/24");
  await h.a.agent.services.overlays.attach(spec(h.a, h.b, "a"));
  await h.b.agent.services.overlays.attach(spec(h.b, h.a, "b"));
  await until(
    "both VXLAN ports up",
    () =>
      [h.a, h.b].every(
        (host) => host.agent.services.overlays.status().find((t) => t.link === LINK)?.state === "up",
      ),
    30_000,
  );
  await expectPing(na, "198.19.71.2", { count: 3, timeoutS: 2 });
  api = await startApi(h.a.agent.services, { logger: silentLogger() });
  dir = mkdtempSync(join(tmpdir(), "archnet-capov-"));
});
after(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await api?.close();
  await pool.destroyAll();
  await h?.close();
});

describe("packet capture of an overlay link", () => {
  it("the stream has the frames the local node sends and receives across the tunnel, in order (count=6, filter=icmp)", async () => {
    const t0 = performance.now();
    const res = await get(
      `/overlay/links/${LAB}/${LINK}/capture?count=6&filter=${encodeURIComponent("icmp")}`,
    );
    const startMs = performance.now() - t0;
    assert.equal(res.status, 200, res.status === 200 ? "" : await res.clone().text());
    assert.equal(res.headers.get("content-type"), "application/vnd.tcpdump.pcap");
    assert.match(res.headers.get("content-disposition") ?? "", /capov-a-eth1\.pcap/);
    const body = res.arrayBuffer();
    await nsExec(na, ["ping", "-n", "-q", "-c", "3", "-i", "0.05", "198.19.71.2"]);
    const pcap = parsePcap(Buffer.from(await body));
    assert.equal(pcap.linkType, 1, "Ethernet");
    assert.equal(pcap.rest, 0);
    assert.deepEqual(
      pcap.frames.map((f) => {
        const e = icmpEcho(f.data);
        return e && `${e.type === 8 ? "request" : "reply"} ${e.src}>${e.dst} seq ${e.seq}`;
      }),
      [1, 1, 2, 2, 3, 3].map((seq, i) =>
        i % 2 === 0
          ? `request 198.19.71.1>198.19.71.2 seq ${seq}`
          : `reply 198.19.71.2>198.19.71.1 seq ${seq}`,
      ),
    );
    console.log(
      `# overlay capture started in ${startMs.toFixed(1)} ms (request to 200 with tcpdump listening)`,
    );
    await until("the capture's tcpdump to exit", async () => (await tcpdumpsOn(hostPort())).length === 0);
  });

  it("a client that leaves takes the tcpdump with it; past the limit (1) a capture is 429", async () => {
    const dev = hostPort();
    const ctrl = new AbortController();
    const res = await get(`/overlay/links/${LAB}/${LINK}/capture`, { signal: ctrl.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    // tcpdump writes the pcap header with the first frame: the node sends one.
    const first = reader.read();
    await nsExec(na, ["ping", "-n", "-q", "-c", "1", "-W", "2", "198.19.71.2"]);
    const chunk = await first;
    assert.ok(chunk.value && chunk.value.length >= 24, "pcap header");
    assert.equal((await tcpdumpsOn(dev)).length, 1);
    assert.equal(h.a.agent.services.captures.active(), 1);
    const second = await get(`/overlay/links/${LAB}/${LINK}/capture`);
    assert.equal(second.status, 429, await second.text());
    ctrl.abort();
    await until(
      "no tcpdump left on the overlay link's port",
      async () => (await tcpdumpsOn(dev)).length === 0,
    );
    await until("the capture slot to be free", () => h.a.agent.services.captures.active() === 0);
  });

  it("archnet capture LAB --overlay LINK -c N -w FILE writes the node's frames; NODE:IF with --overlay exits 2", async () => {
    const file = join(dir, "ov1.pcap");
    const cli = (...args: string[]) => runCli(["--url", api.address, "--token", secret, ...args]);
    const capturing = cli("capture", LAB, "--overlay", LINK, "-c", "4", "-w", file, "icmp");
    let done = false;
    void capturing.finally(() => {
      done = true;
    });
    await until(
      "the CLI's capture to start",
      async () => done || (await tcpdumpsOn(hostPort())).length === 1,
      30_000,
    );
    // Its tcpdump runs a little before it listens: pings until it has its 4 packets.
    for (let seq = 1; !done; seq++) {
      await nsExec(na, ["ping", "-n", "-q", "-c", "1", "-W", "1", "198.19.71.2"], { okCodes: [1] });
      assert.ok(seq < 200, "the capture never ended");
    }
    const r = await capturing;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /wrote \d+ bytes of pcap/);
    assert.deepEqual(
      parsePcap(readFileSync(file)).frames.map((f) => {
        const e = icmpEcho(f.data);
        return `${e?.type} ${e?.src}`;
      }),
      ["8 198.19.71.1", "0 198.19.71.2", "8 198.19.71.1", "0 198.19.71.2"],
    );
    const ghost = await cli("capture", LAB, "--overlay", "ghost", "-c", "1");
    assert.equal(ghost.code, 1, ghost.stderr);
    assert.match(ghost.stderr, /^error: overlay link capov\/ghost does not exist/);
    const badTarget = await cli("capture", LAB, "--overlay", "a:eth1");
    assert.equal(badTarget.code, 2, badTarget.stderr);
    await until("no tcpdump left", async () => (await tcpdumpsOn(hostPort())).length === 0);
  });

  it("a bad filter or option is 400, an unknown overlay link 404, no token 401; nothing starts", async () => {
    for (const filter of ["icmp and hostx 1", "-w /tmp/x", "tcp port", "a\nb"]) {
      const res = await get(`/overlay/links/${LAB}/${LINK}/capture?filter=${encodeURIComponent(filter)}`);
      assert.equal(res.status, 400, `${JSON.stringify(filter)}: ${await res.clone().text()}`);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "BAD_REQUEST");
    }
    for (const q of ["count=0", "seconds=-1", "nope=1"]) {
      const res = await get(`/overlay/links/${LAB}/${LINK}/capture?${q}`);
      assert.equal(res.status, 400, `${q}: ${await res.text()}`);
    }
    for (const path of [`/overlay/links/${LAB}/ghost/capture`, `/overlay/links/ghost/${LINK}/capture`]) {
      const res = await get(path);
      assert.equal(res.status, 404, await res.clone().text());
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "OVERLAY_NOT_FOUND");
    }
    assert.equal((await get(`/overlay/links/${LAB}/${LINK}/capture`, { token: null })).status, 401);
    assert.equal((await get(`/overlay/links/${LAB}/${LINK}/capture`, { token: "wrong" })).status, 401);
    assert.equal(h.a.agent.services.captures.active(), 0);
    assert.equal((await tcpdumpsOn(hostPort())).length, 0);
  });
});
