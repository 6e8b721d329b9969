/**
 * GET /events against the real agent over HTTP (auth on): lab changes arrive as they happen,
 * counter samples carry rates while a ping runs (fed by the OVSDB monitor, not by polling),
 * a lab's stream carries only that lab's ports, and closing the API ends open streams.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type RunningApi, startApi } from "../../src/api/server.js";
import { silentLogger } from "../../src/common/log.js";
import type { LabView } from "../../src/model/views.js";
import { EventReader, samples } from "../harness/event-reader.js";
import { addAddress, nsExec } from "../harness/netns.js";
import { type RealAgentFixture, startRealAgentFixture } from "../harness/real-agent-fixture.js";
import { expectPing } from "../harness/traffic.js";

const SECRET = "events-secret";

describe("GET /events on the real agent", () => {
  let fx: RealAgentFixture;
  let api: RunningApi;
  let ns1: string;
  let ns2: string;
  const readers: EventReader[] = [];

  async function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { authorization: `Bearer ${SECRET}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${api.address}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text);
  }

  const open = (query = "") => {
    const r = new EventReader(`${api.address}/events${query}`, SECRET);
    readers.push(r);
    return r;
  };

  before(async () => {
    fx = await startRealAgentFixture({ secret: SECRET });
    await fx.test.ovs.vsctl(["set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000"]);
    api = await startApi(fx.services, { logger: silentLogger() });
    ns1 = (await fx.nodeRef("r1")).netns;
    ns2 = (await fx.nodeRef("r2")).netns;
    await call("PUT", "/labs/ev", {
      nodes: [
        { name: "r1", netns: ns1, interfaces: [{ name: "eth1" }] },
        { name: "r2", netns: ns2, interfaces: [{ name: "eth1" }] },
      ],
      links: [{ a: "r1:eth1", b: "r2:eth1", id: "l1" }],
    });
    await call("PUT", "/labs/other", { nodes: [], links: [] });
    await addAddress(ns1, "eth1", "198.18.62.1/24");
    await addAddress(ns2, "eth1", "198.18.62.2/24");
  });

  after(async () => {
    for (const r of readers) r.close();
    await api?.close();
    await fx?.close();
  });

  it("needs the token", async () => {
    const res = await fetch(`${api.address}/events`);
    assert.equal(res.status, 401);
    await res.body?.cancel();
  });

  it("a carrier change arrives as a lab event, and the lab's view then says down", async () => {
    const r = open();
    await r.next((e) => e.type === "hello", 10_000);
    const from = r.events.length;
    const t0 = performance.now();
    await call("PUT", "/labs/ev/links/l1/carrier", { state: "down" });
    const e = await r.next((x) => x.type === "lab" && (x.data as { lab: string }).lab === "ev", 10_000, from);
    console.log(`# lab event ${(e.at - t0).toFixed(0)} ms after the carrier call was sent`);
    const view = (await call("GET", "/labs/ev")) as LabView;
    assert.equal(view.links[0]?.state, "down");
    await call("PUT", "/labs/ev/links/l1/carrier", { state: "up" });
  });

  it("counter samples of a lab's ports carry rates while a ping runs", async () => {
    const view = (await call("GET", "/labs/ev")) as LabView;
    const port = view.nodes.find((n) => n.name === "r1")!.interfaces[0]!.host_port;
    const r = open("?lab=ev");
    await expectPing(ns1, "198.18.62.2");
    const pinging = nsExec(ns1, ["ping", "-n", "-q", "-i", "0.2", "-c", "40", "198.18.62.2"], {
      timeoutMs: 30_000,
    });
    try {
      const e = await r.next(
        (x) => x.type === "ports" && samples(x).some((p) => p.port === port && p.rx_bps > 0 && p.rx_pps > 0),
        20_000,
      );
      const s = samples(e).find((p) => p.port === port)!;
      console.log(
        `# ${port}: ${s.rx_packets} packets, ${s.rx_bps.toFixed(0)} b/s, ${s.rx_pps.toFixed(1)} packets/s`,
      );
    } finally {
      await pinging;
    }
    const all = r.events.filter((x) => x.type === "ports").flatMap(samples);
    assert.ok(all.length > 0);
    assert.ok(
      all.every((p) => p.lab === "ev"),
      "a lab's stream carries only its ports",
    );
  });

  it("closing the API ends the open streams", async () => {
    const r = open();
    await r.next((e) => e.type === "hello", 10_000);
    await api.close();
    await r.done;
    assert.ok(r.ended);
  });
});
