/**
 * The API against the real agent (private OVS, real namespaces): the route suite, a bounded fuzz
 * (auth on and off), web browsers' requests, and what the contract promises of the network
 * itself, through HTTP.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type RunningApi, startApi } from "../../src/api/server.js";
import { run } from "../../src/common/exec.js";
import { silentLogger } from "../../src/common/log.js";
import type { LabView, SwitchStatusView } from "../../src/model/views.js";
import { addAddress, nsExec } from "../harness/netns.js";
import {
  type RealAgentFixture,
  realAgentFactory,
  startRealAgentFixture,
} from "../harness/real-agent-fixture.js";
import { expectNoPing, expectPing } from "../harness/traffic.js";
import { browserSuite } from "./browser-suite.js";
import { fuzzSuite } from "./fuzz-suite.js";
import { routeSuite } from "./route-suite.js";

routeSuite("real agent", realAgentFactory);
browserSuite("real agent", realAgentFactory);
fuzzSuite("real agent", realAgentFactory, { count: 1500 });
fuzzSuite("real agent", realAgentFactory, { count: 1500, secret: "fuzz-token", http: true });

describe("the real agent through HTTP on 127.0.0.1 (auth on)", () => {
  const secret = "real-secret";
  const lab = "hb";
  let fx: RealAgentFixture;
  let api: RunningApi;
  let ns1: string;
  let ns2: string;

  async function call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; text: string; json: <T = Record<string, unknown>>() => T }> {
    const headers: Record<string, string> = { authorization: `Bearer ${secret}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${api.address}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    return { status: res.status, text, json: <T>() => JSON.parse(text) as T };
  }

  const ovsStatus = async () => (await call("GET", "/ovs/status")).json<SwitchStatusView>();

  before(async () => {
    fx = await startRealAgentFixture({ secret });
    api = await startApi(fx.services, { logger: silentLogger() });
    ns1 = (await fx.nodeRef("r1")).netns;
    ns2 = (await fx.nodeRef("r2")).netns;
  });
  after(async () => {
    await fx?.test.ovs.startDbServer().catch(() => undefined);
    await api?.close();
    await fx?.close();
  });

  it("PUT /labs/{lab}: two nodes and a link ping; GET /labs/{lab} has the contract's shape", async () => {
    const put = await call("PUT", `/labs/${lab}`, {
      nodes: [
        { name: "r1", netns: ns1, interfaces: [{ name: "eth1" }] },
        { name: "r2", netns: ns2, interfaces: [{ name: "eth1" }] },
      ],
      links: [{ a: "r1:eth1", b: "r2:eth1", id: "l1" }],
    });
    assert.equal(put.status, 200, put.text);
    await addAddress(ns1, "eth1", "198.18.7.1/24");
    await addAddress(ns2, "eth1", "198.18.7.2/24");
    await expectPing(ns1, "198.18.7.2", { count: 2 });

    const res = await call("GET", `/labs/${lab}`);
    assert.equal(res.status, 200, res.text);
    const view = res.json<LabView>();
    assert.equal(view.lab, lab);
    assert.deepEqual(
      view.nodes.map((n) => [n.name, n.netns]),
      [
        ["r1", ns1],
        ["r2", ns2],
      ],
    );
    const link = view.links[0];
    assert.ok(link, res.text);
    assert.deepEqual(
      { id: link.id, a: link.a, b: link.b, state: link.state },
      { id: "l1", a: "r1:eth1", b: "r2:eth1", state: "up" },
    );
    assert.equal(typeof link.vlan, "number");
    for (const n of view.nodes) {
      const i = n.interfaces[0];
      assert.ok(i, res.text);
      assert.equal(i.name, "eth1");
      assert.match(i.host_port ?? "", /^vh/);
      assert.equal(i.vlan, link.vlan, "both ends carry the link's VLAN");
      assert.equal(i.carrier, "up");
    }
  });

  it("PUT carrier down: the node sees NO-CARRIER and traffic stops; up restores it", async () => {
    const down = await call("PUT", `/labs/${lab}/nodes/r1/interfaces/eth1/carrier`, { state: "down" });
    assert.equal(down.status, 200, down.text);
    const shown = await nsExec(ns1, ["ip", "link", "show", "dev", "eth1"]);
    assert.match(shown.stdout, /NO-CARRIER/);
    await expectNoPing(ns1, "198.18.7.2");
    const up = await call("PUT", `/labs/${lab}/nodes/r1/interfaces/eth1/carrier`, { state: "up" });
    assert.equal(up.status, 200, up.text);
    assert.doesNotMatch((await nsExec(ns1, ["ip", "link", "show", "dev", "eth1"])).stdout, /NO-CARRIER/);
    await expectPing(ns1, "198.18.7.2", { count: 1, timeoutS: 3 });
  });

  it("GET /metrics: operation latencies, per-port counters of the lab's ports, links by state", async () => {
    const view = (await call("GET", `/labs/${lab}`)).json<LabView>();
    const res = await call("GET", "/metrics");
    assert.equal(res.status, 200);
    assert.match(res.text, /# TYPE archnet_operation_seconds histogram/);
    assert.match(res.text, /archnet_operation_seconds_count\{[^}]*\} [1-9]/);
    for (const n of view.nodes) {
      const port = n.interfaces[0]?.host_port ?? "";
      const line = res.text
        .split("\n")
        .find((l) => l.startsWith("archnet_port_rx_packets{") && l.includes(`port="${port}"`));
      assert.ok(line, `no archnet_port_rx_packets for ${port}`);
      assert.match(line, new RegExp(`lab="${lab}"`));
      assert.match(line, new RegExp(`node="${n.name}"`));
      assert.match(line, /interface="eth1"/);
      assert.match(line, /link="l1"/);
      assert.match(line, / \d+$/);
    }
    assert.match(res.text, new RegExp(`archnet_links\\{lab="${lab}",state="up"\\} 1\\b`));
  });

  it("GET /ovs/status lists the lab's ports with their owners; /cleanup/audit finds no orphans", async () => {
    const view = (await call("GET", `/labs/${lab}`)).json<LabView>();
    const status = await ovsStatus();
    for (const n of view.nodes) {
      const i = n.interfaces[0];
      const p = status.ports.find((x) => x.name === i?.host_port);
      assert.ok(p, `port ${i?.host_port} missing from /ovs/status`);
      assert.deepEqual([p.lab, p.node, p.interface, p.link, p.vlan], [lab, n.name, "eth1", "l1", i?.vlan]);
    }
    const audit = await call("GET", "/cleanup/audit");
    assert.equal(audit.status, 200, audit.text);
    assert.deepEqual(audit.json(), { orphans: [] });
  });

  it("DELETE /labs/{lab} removes every port, veth and interface of the lab", async () => {
    const del = await call("DELETE", `/labs/${lab}`);
    assert.equal(del.status, 200, del.text);
    assert.equal((await call("GET", `/labs/${lab}`)).status, 404);
    const status = await ovsStatus();
    assert.deepEqual(
      status.ports.filter((p) => p.lab !== null || p.name.startsWith("vh")),
      [],
    );
    const switchNs = fx.test.ovs.netns as string;
    const links = (await run("ip", ["-n", switchNs, "-br", "link"])).stdout;
    assert.doesNotMatch(links, /^vh/m, links);
    for (const ns of [ns1, ns2]) {
      assert.doesNotMatch((await run("ip", ["-n", ns, "-br", "link"])).stdout, /^eth1\b/m);
    }
    assert.deepEqual((await call("GET", "/cleanup/audit")).json(), { orphans: [] });
  });

  it("ovsdb-server stopped: a write is 503 OVS_UNREACHABLE; it works again once it is back", async () => {
    const spec = { nodes: [{ name: "r1", netns: ns1, interfaces: [{ name: "eth2" }] }], links: [] };
    await fx.test.ovs.stopDbServer();
    const res = await call("PUT", "/labs/down", spec);
    assert.equal(res.status, 503, res.text);
    const err = res.json<{ error: { code: string; message: string; hint?: string } }>().error;
    assert.equal(err.code, "OVS_UNREACHABLE");
    assert.ok(err.hint, "a hint on what to do");
    assert.equal((await call("GET", "/health")).status, 200, "the API itself stays up");

    await fx.test.ovs.startDbServer();
    const deadline = Date.now() + 20_000;
    let last = await call("PUT", "/labs/down", spec);
    while (last.status !== 200 && Date.now() < deadline) {
      await sleep(250);
      last = await call("PUT", "/labs/down", spec);
    }
    assert.equal(last.status, 200, last.text);
    const status = await ovsStatus();
    assert.ok(status.ports.some((p) => p.lab === "down" && p.interface === "eth2"));
    assert.equal((await call("DELETE", "/labs/down")).status, 200);
  });
});
