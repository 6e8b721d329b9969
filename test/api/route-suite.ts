/**
 * Every route of the contract through app.inject: happy paths, 4xx paths, auth, the OpenAPI
 * document and metrics. Parameterized by the services factory.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import type { App } from "../../src/api/types.js";
import type {
  ImpairmentView,
  InterfaceView,
  LabView,
  LinkView,
  NodeView,
  TunnelView,
} from "../../src/model/views.js";
import { type ApiFixture, type ApiFixtureFactory, appFor, json } from "./fixture.js";

type Method = "GET" | "PUT" | "POST" | "DELETE" | "PATCH" | "OPTIONS";

function caller(app: App, token?: string) {
  return (method: Method, url: string, body?: unknown, headers: Record<string, string> = {}) => {
    const h: Record<string, string> = { ...headers };
    if (token !== undefined) h.authorization = `Bearer ${token}`;
    const opts: InjectOptions = { method, url, headers: h };
    if (typeof body === "string") opts.payload = body;
    else if (body !== undefined) {
      opts.payload = JSON.stringify(body);
      h["content-type"] ??= "application/json";
    }
    return app.inject(opts);
  };
}

function assertError(res: LightMyRequestResponse, status: number, code?: string): void {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers["content-type"]), /^application\/json/);
  const body = json<{ error: { code: string; message: string } }>(res);
  assert.equal(typeof body.error.message, "string");
  if (code !== undefined) assert.equal(body.error.code, code, res.body);
}

/** Every route of shared/spec/api.md, as OpenAPI paths. */
export const CONTRACT_ROUTES: readonly [string, string][] = [
  ["get", "/health"],
  ["put", "/labs/{lab}"],
  ["get", "/labs"],
  ["get", "/labs/{lab}"],
  ["delete", "/labs/{lab}"],
  ["post", "/labs/{lab}/nodes/{node}/interfaces"],
  ["post", "/labs/{lab}/links"],
  ["get", "/labs/{lab}/links"],
  ["delete", "/labs/{lab}/links/{id}"],
  ["put", "/labs/{lab}/nodes/{node}/interfaces/{if}/carrier"],
  ["put", "/labs/{lab}/links/{id}/carrier"],
  ["get", "/labs/{lab}/links/{id}/impairment"],
  ["put", "/labs/{lab}/links/{id}/impairment"],
  ["delete", "/labs/{lab}/links/{id}/impairment"],
  ["get", "/labs/{lab}/links/{id}/capture"],
  ["get", "/labs/{lab}/nodes/{node}/interfaces/{if}/capture"],
  ["post", "/overlay/links"],
  ["delete", "/overlay/links/{lab}/{link}"],
  ["get", "/overlay/links/{lab}/{link}/capture"],
  ["get", "/overlay/status"],
  ["get", "/ovs/status"],
  ["get", "/cleanup/audit"],
  ["post", "/cleanup/run"],
  ["get", "/metrics"],
];

export function routeSuite(name: string, factory: ApiFixtureFactory): void {
  describe(`API routes (${name})`, () => {
    let fx: ApiFixture;
    let app: App;
    let call: ReturnType<typeof caller>;
    const lab = "t-routes";
    let spec: { nodes: unknown[]; links: { a: string; b: string; id?: string }[] };

    before(async () => {
      fx = await factory({});
      app = appFor(fx);
      call = caller(app);
      spec = {
        nodes: [
          { name: "r1", ...(await fx.nodeRef("r1")), interfaces: [{ name: "eth1" }, { name: "eth2" }] },
          {
            name: "r2",
            ...(await fx.nodeRef("r2")),
            interfaces: [{ name: "eth1" }, { name: "eth2", mtu: 1500 }],
          },
        ],
        links: [{ a: "r1:eth1", b: "r2:eth1" }],
      };
    });
    after(async () => {
      await call("DELETE", `/labs/${lab}`);
      await call("DELETE", `/labs/${lab}-b`);
      await app.close();
      await fx.close();
    });

    it("GET /health answers without auth", async () => {
      const res = await call("GET", "/health");
      assert.equal(res.statusCode, 200);
      const body = json(res);
      assert.equal(body.status, "ok");
      assert.equal(typeof body.version, "string");
      assert.equal(body.backend, fx.services.backend.name);
      assert.ok("datapath" in body);
    });

    it("PUT /labs/{lab} converges and reports changes; idempotent", async () => {
      const res = await call("PUT", `/labs/${lab}`, spec);
      assert.equal(res.statusCode, 200, res.body);
      const body = json<LabView & { changes: Record<string, string[]> }>(res);
      assert.equal(body.lab, lab);
      assert.deepEqual(body.nodes.map((n) => n.name).sort(), ["r1", "r2"]);
      assert.equal(body.links.length, 1);
      assert.deepEqual(body.changes.nodes_added?.sort(), ["r1", "r2"]);
      assert.equal(body.changes.links_added?.length, 1);
      const iface = body.nodes.find((n) => n.name === "r2")?.interfaces.find((i) => i.name === "eth2");
      assert.equal(iface?.mtu, 1500);

      const again = json<{ changes: Record<string, string[]> }>(await call("PUT", `/labs/${lab}`, spec));
      for (const list of Object.values(again.changes)) assert.deepEqual(list, []);
    });

    it("GET /labs and GET /labs/{lab}", async () => {
      const list = json<{ lab: string; nodes: number; links: number }[]>(await call("GET", "/labs"));
      assert.deepEqual(
        list.find((l) => l.lab === lab),
        { lab, nodes: 2, links: 1 },
      );
      const res = await call("GET", `/labs/${lab}`);
      assert.equal(res.statusCode, 200);
      const view = json<LabView>(res);
      const i = view.nodes[0]?.interfaces[0];
      assert.ok(i);
      for (const k of ["name", "host_port", "vlan", "carrier"]) assert.ok(k in i, k);
      const l = view.links[0];
      assert.ok(l);
      for (const k of ["id", "a", "b", "vlan", "state"]) assert.ok(k in l, k);
      assertError(await call("GET", "/labs/no-such-lab"), 404, "LAB_NOT_FOUND");
    });

    it("POST /labs/{lab}/nodes/{node}/interfaces answers 201 with the node", async () => {
      const ref = await fx.nodeRef("r3");
      const res = await call("POST", `/labs/${lab}/nodes/r3/interfaces`, {
        ...ref,
        interfaces: [{ name: "eth1", mtu: 9000 }],
      });
      assert.equal(res.statusCode, 201, res.body);
      const node = json<NodeView>(res);
      assert.equal(node.name, "r3");
      assert.deepEqual(
        node.interfaces.map((i) => [i.name, i.mtu]),
        [["eth1", 9000]],
      );
      const other = await fx.nodeRef("r4");
      assertError(
        await call("POST", `/labs/${lab}/nodes/r3/interfaces`, { ...other, interfaces: [{ name: "eth2" }] }),
        409,
        "CONFLICT",
      );
      assertError(
        await call("POST", `/labs/${lab}/nodes/r3/interfaces`, { ...ref, interfaces: [] }),
        400,
        "BAD_REQUEST",
      );
      assertError(
        await call("POST", `/labs/${lab}/nodes/r3/interfaces`, {
          ...ref,
          interfaces: [{ name: "eth1", mtu: 67 }],
        }),
        400,
        "BAD_REQUEST",
      );
    });

    it("POST /labs/{lab}/links: 201, then 409 when an end is taken", async () => {
      const res = await call("POST", `/labs/${lab}/links`, { a: "r1:eth2", b: "r3:eth1", id: "l2" });
      assert.equal(res.statusCode, 201, res.body);
      const link = json<LinkView>(res);
      assert.deepEqual([link.id, link.a, link.b], ["l2", "r1:eth2", "r3:eth1"]);
      assert.ok(["up", "down", "pending"].includes(link.state));
      assertError(
        await call("POST", `/labs/${lab}/links`, { a: "r1:eth2", b: "r2:eth2" }),
        409,
        "ALREADY_LINKED",
      );
      const bad = await call("POST", `/labs/${lab}/links`, { a: "r1eth2", b: "r2:eth2" });
      assertError(bad, 400, "INVALID_NAME");
      assert.match(json<{ error: { message: string } }>(bad).error.message, /body\.a/);
    });

    it("GET /labs/{lab}/links", async () => {
      const links = json<LinkView[]>(await call("GET", `/labs/${lab}/links`));
      assert.equal(links.length, 2);
      assertError(await call("GET", "/labs/no-such-lab/links"), 404, "LAB_NOT_FOUND");
    });

    it("PUT carrier of an interface and of a link", async () => {
      const res = await call("PUT", `/labs/${lab}/nodes/r1/interfaces/eth1/carrier`, { state: "down" });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(json<InterfaceView>(res).carrier, "down");
      const up = await call("PUT", `/labs/${lab}/nodes/r1/interfaces/eth1/carrier`, { state: "up" });
      assert.equal(json<InterfaceView>(up).carrier, "up");
      assertError(
        await call("PUT", `/labs/${lab}/nodes/r1/interfaces/eth1/carrier`, { state: "sideways" }),
        400,
        "BAD_REQUEST",
      );
      assertError(
        await call("PUT", `/labs/${lab}/nodes/r1/interfaces/eth9/carrier`, { state: "down" }),
        404,
        "INTERFACE_NOT_FOUND",
      );
      assertError(
        await call("PUT", `/labs/${lab}/nodes/r9/interfaces/eth1/carrier`, { state: "down" }),
        404,
        "NODE_NOT_FOUND",
      );
      const link = await call("PUT", `/labs/${lab}/links/l2/carrier`, { state: "down" });
      assert.equal(link.statusCode, 200, link.body);
      assert.equal(json<LinkView>(link).state, "down");
      await call("PUT", `/labs/${lab}/links/l2/carrier`, { state: "up" });
      assertError(
        await call("PUT", `/labs/${lab}/links/nope/carrier`, { state: "up" }),
        404,
        "LINK_NOT_FOUND",
      );
    });

    it("PUT/GET/DELETE a link's impairment: a rate applies, bad fields are 400, unknown ids 404", async () => {
      const url = `/labs/${lab}/links/l2/impairment`;
      const put = await call("PUT", url, { a_to_b: { rate_kbit: 5000 } });
      assert.equal(put.statusCode, 200, put.body);
      const view = json<ImpairmentView>(put);
      assert.deepEqual([view.a_to_b, view.b_to_a], [{ rate_kbit: 5000 }, {}]);
      assert.deepEqual(json<ImpairmentView>(await call("GET", url)).a_to_b, { rate_kbit: 5000 });
      const links = json<LinkView[]>(await call("GET", `/labs/${lab}/links`));
      assert.deepEqual(links.find((l) => l.id === "l2")?.impairment, { a_to_b: { rate_kbit: 5000 } });
      for (const body of [{ a_to_b: { loss_pct: 150 } }, { b_to_a: { rate_kbit: 3 } }, { x: {} }, []]) {
        assertError(await call("PUT", url, body), 400, "BAD_REQUEST");
      }
      const del = await call("DELETE", url);
      assert.equal(del.statusCode, 200, del.body);
      assert.deepEqual(json<ImpairmentView>(del).a_to_b, {});
      assertError(await call("GET", `/labs/${lab}/links/nope/impairment`), 404, "LINK_NOT_FOUND");
      assertError(await call("PUT", `/labs/no-such-lab/links/l2/impairment`, {}), 404, "LAB_NOT_FOUND");
      assertError(await call("GET", `/labs/no-such-lab/links/l2/capture`), 404, "LAB_NOT_FOUND");
      assertError(await call("GET", `/labs/${lab}/links/l2/capture?count=0`), 400, "BAD_REQUEST");
      assertError(await call("GET", `/overlay/links/${lab}/nope/capture`), 404, "OVERLAY_NOT_FOUND");
      assertError(await call("GET", `/overlay/links/${lab}/nope/capture?count=0`), 400, "BAD_REQUEST");
    });

    it("DELETE /labs/{lab}/links/{id}: 200, then 404", async () => {
      const res = await call("DELETE", `/labs/${lab}/links/l2`);
      assert.equal(res.statusCode, 200, res.body);
      assertError(await call("DELETE", `/labs/${lab}/links/l2`), 404, "LINK_NOT_FOUND");
      const view = json<LabView>(await call("GET", `/labs/${lab}`));
      assert.ok(
        view.nodes.find((n) => n.name === "r3")?.interfaces.some((i) => i.name === "eth1"),
        "interfaces kept",
      );
    });

    it("PUT removes what is absent from the body", async () => {
      const res = await call("PUT", `/labs/${lab}`, { nodes: spec.nodes.slice(0, 1), links: [] });
      const body = json<LabView & { changes: Record<string, string[]> }>(res);
      assert.deepEqual(
        body.nodes.map((n) => n.name),
        ["r1"],
      );
      assert.deepEqual(body.changes.nodes_removed?.sort(), ["r2", "r3"]);
      assert.equal(body.changes.links_removed?.length, 1);
      await call("PUT", `/labs/${lab}`, spec);
    });

    it("POST /labs/{lab} is an alias of PUT", async () => {
      const res = await call("POST", `/labs/${lab}-b`, { nodes: [], links: [] });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(json(res).lab, `${lab}-b`);
    });

    it("overlay: attach 201 (idempotent), conflict 409, status, detach", async () => {
      const body = {
        lab,
        link: "ov1",
        node: "r1",
        interface: "eth2",
        vni: 5001,
        local_ip: "198.18.0.1",
        remote_ip: "198.18.0.2",
      };
      const res = await call("POST", "/overlay/links", body);
      assert.equal(res.statusCode, 201, res.body);
      const t = json<TunnelView>(res);
      assert.equal(typeof t.port, "string");
      assert.ok("vlan" in t);
      const again = await call("POST", "/overlay/links?wait=true", body);
      assert.equal(again.statusCode, 201, again.body);
      assert.equal(json<TunnelView>(again).port, t.port);
      assertError(await call("POST", "/overlay/links?wait=soon", body), 400, "BAD_REQUEST");
      assertError(await call("POST", "/overlay/links", { ...body, remote_ip: "198.18.0.3" }), 409);
      for (const [k, v] of [
        ["vni", 0],
        ["vni", 16777216],
        ["vni", "5001"],
        ["local_ip", "198.18.0.256"],
        ["remote_ip", "::1"],
        ["mtu", 67],
        ["extra", 1],
      ] as const) {
        const r = await call("POST", "/overlay/links", { ...body, [k]: v });
        assertError(r, 400, "BAD_REQUEST");
        assert.match(json<{ error: { message: string } }>(r).error.message, new RegExp(k), r.body);
      }
      const status = json<{ tunnels: TunnelView[] }>(await call("GET", "/overlay/status"));
      const mine = status.tunnels.find((x) => x.lab === lab && x.link === "ov1");
      assert.ok(mine);
      for (const k of [
        "lab",
        "link",
        "vni",
        "vlan",
        "port",
        "local_ip",
        "remote_ip",
        "node",
        "interface",
        "state",
      ]) {
        assert.ok(k in mine, k);
      }
      assert.equal((await call("DELETE", `/overlay/links/${lab}/ov1`)).statusCode, 200);
      assertError(await call("DELETE", `/overlay/links/${lab}/ov1`), 404, "OVERLAY_NOT_FOUND");
    });

    it("GET /ovs/status", async () => {
      const res = await call("GET", "/ovs/status");
      assert.equal(res.statusCode, 200, res.body);
      const body = json(res);
      for (const k of ["bridge", "fail_mode", "datapath", "ports"]) assert.ok(k in body, k);
      assert.ok(Array.isArray(body.ports));
    });

    it("cleanup: audit removes nothing, run removes", async (t) => {
      if (!fx.setOrphans) return t.skip("needs a stub to plant orphans");
      fx.setOrphans([{ kind: "veth", name: "vs999", reason: "no lab has it" }]);
      const audit = json<{ orphans: unknown[] }>(await call("GET", "/cleanup/audit"));
      assert.equal(audit.orphans.length, 1);
      assert.equal(json<{ orphans: unknown[] }>(await call("GET", "/cleanup/audit")).orphans.length, 1);
      const run = await call("POST", "/cleanup/run");
      assert.equal(run.statusCode, 200, run.body);
      assert.deepEqual(json(run).removed, [{ kind: "veth", name: "vs999", reason: "no lab has it" }]);
      assert.deepEqual(json(await call("GET", "/cleanup/audit")).orphans, []);
    });

    it("DELETE /labs/{lab}: 200, then 404", async () => {
      assert.equal((await call("DELETE", `/labs/${lab}-b`)).statusCode, 200);
      assertError(await call("DELETE", `/labs/${lab}-b`), 404, "LAB_NOT_FOUND");
    });

    it("path parameters are validated", async () => {
      for (const url of [
        "/labs/-bad",
        "/labs/a%20b",
        `/labs/${"x".repeat(64)}`,
        "/labs/a%2Fb",
        "/labs/a:b/links",
        `/labs/${lab}/nodes/r1/interfaces/eth1234567890123/carrier`,
        `/labs/${lab}/nodes/r1/interfaces/a%3Ab/carrier`,
        `/labs/${lab}/nodes/r1/interfaces/a%20b/carrier`,
      ]) {
        const method: Method = url.endsWith("carrier") ? "PUT" : "GET";
        const res = await call(method, url, method === "PUT" ? { state: "up" } : undefined);
        assertError(res, 400, "INVALID_NAME");
      }
      const res = await call("GET", "/labs/-bad");
      assert.match(json<{ error: { message: string } }>(res).error.message, /lab/);
    });

    it("bodies: malformed JSON, no Content-Type, wrong media type, too big, empty", async () => {
      assertError(
        await call("PUT", `/labs/${lab}`, "{nodes:", { "content-type": "application/json" }),
        400,
        "BAD_REQUEST",
      );
      const empty = JSON.stringify({ nodes: [], links: [] });
      for (const type of [
        "application/json",
        "application/json; charset=utf-8",
        'Application/JSON;charset="UTF-8"',
      ]) {
        const ok = await call("PUT", `/labs/${lab}-b`, empty, { "content-type": type });
        assert.equal(ok.statusCode, 200, `${type}: ${ok.body}`);
      }
      await call("DELETE", `/labs/${lab}-b`);
      // JSON under any other type, or none, is refused: what web pages may send to any site
      for (const type of [
        undefined,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin1",
        "application/jsonp",
        "text/json",
      ]) {
        const res = await call(
          "PUT",
          `/labs/${lab}-b`,
          empty,
          type === undefined ? {} : { "content-type": type },
        );
        assertError(res, 415, "UNSUPPORTED_MEDIA_TYPE");
        assert.match(json<{ error: { hint: string } }>(res).error.hint, /application\/json/);
      }
      assertError(await call("GET", `/labs/${lab}-b`), 404, "LAB_NOT_FOUND");
      assertError(
        await call("PUT", `/labs/${lab}`, "", { "content-type": "text/plain" }),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
      );
      const huge = JSON.stringify({ nodes: [], links: [], pad: "x".repeat(1024 * 1024) });
      assertError(
        await call("PUT", `/labs/${lab}`, huge, { "content-type": "application/json" }),
        413,
        "PAYLOAD_TOO_LARGE",
      );
      assertError(
        await call("PUT", `/labs/${lab}`, "", { "content-type": "application/json" }),
        400,
        "BAD_REQUEST",
      );
      assertError(
        await call("PUT", `/labs/${lab}`, "null", { "content-type": "application/json" }),
        400,
        "BAD_REQUEST",
      );
      assertError(
        await call("PUT", `/labs/${lab}`, '{"nodes":[],"links":[],"__proto__":{"x":1}}', {
          "content-type": "application/json",
        }),
        400,
        "BAD_REQUEST",
      );
      const missing = await call("PUT", `/labs/${lab}`, { nodes: [] });
      assertError(missing, 400, "BAD_REQUEST");
      assert.match(json<{ error: { message: string } }>(missing).error.message, /body\.links is required/);
      const extra = await call("PUT", `/labs/${lab}`, {
        nodes: [{ name: "r1", interfaces: [], colour: "red" }],
        links: [],
      });
      assert.match(json<{ error: { message: string } }>(extra).error.message, /body\.nodes\[0\]\.colour/);
    });

    it("unknown routes 404, wrong methods 405, both JSON", async () => {
      assertError(await call("GET", "/nope"), 404, "NOT_FOUND");
      assertError(await call("GET", "/labs/x/y/z"), 404, "NOT_FOUND");
      const res = await call("PATCH", `/labs/${lab}`);
      assertError(res, 405, "METHOD_NOT_ALLOWED");
      assert.match(String(res.headers.allow), /PUT/);
      assertError(await call("DELETE", "/labs"), 405, "METHOD_NOT_ALLOWED");
      assertError(await call("POST", "/health", {}), 405, "METHOD_NOT_ALLOWED");
    });

    it("an unexpected failure is 500 INTERNAL; typed failures keep their status", async (t) => {
      if (!fx.fault) return t.skip("needs a stub to inject faults");
      const { AgentError } = await import("../../src/common/errors.js");
      fx.fault(new Error("kaboom"));
      try {
        assertError(await call("GET", "/labs"), 500, "INTERNAL");
        fx.fault(new AgentError("OVS_UNREACHABLE", "no OVSDB", "start OVS"));
        const res = await call("GET", "/ovs/status");
        assertError(res, 503, "OVS_UNREACHABLE");
        assert.equal(json<{ error: { hint: string } }>(res).error.hint, "start OVS");
      } finally {
        fx.fault(undefined);
      }
    });

    it("GET /metrics is Prometheus text with request latencies and error counts", async () => {
      await call("GET", "/labs/no-such-lab");
      const res = await call("GET", "/metrics");
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers["content-type"]), /^text\/plain/);
      assert.match(res.body, /# TYPE archnet_http_request_seconds histogram/);
      assert.match(
        res.body,
        /archnet_http_request_seconds_count\{method="GET",route="\/labs\/:lab",status="404"\} \d+/,
      );
      assert.match(res.body, /archnet_errors_total\{code="LAB_NOT_FOUND"\} \d+/);
    });

    it("GET /openapi.json lists every contract route; /docs serves the UI", async () => {
      const res = await call("GET", "/openapi.json");
      assert.equal(res.statusCode, 200);
      const doc = json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(res);
      assert.match(doc.openapi, /^3\./);
      for (const [method, path] of CONTRACT_ROUTES) {
        assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} missing from /openapi.json`);
      }
      const docs = await call("GET", "/docs");
      assert.ok(docs.statusCode === 200 || docs.statusCode === 302, String(docs.statusCode));
    });
  });

  describe(`API auth (${name})`, () => {
    let fx: ApiFixture;
    let app: App;
    const secret = "s3cret-token";

    before(async () => {
      fx = await factory({ secret });
      app = appFor(fx);
    });
    after(async () => {
      await app.close();
      await fx.close();
    });

    it("without a token every route but /health is 401, the API's description too", async () => {
      const anon = caller(app);
      for (const [method, path] of CONTRACT_ROUTES) {
        const url = path.replace(/\{[^}]+\}/g, "x1");
        const res = await anon(method.toUpperCase() as Method, url);
        if (path === "/health") {
          assert.equal(res.statusCode, 200);
          continue;
        }
        assertError(res, 401, "UNAUTHORIZED");
        assert.match(json<{ error: { hint: string } }>(res).error.hint, /--token/);
        assert.match(json<{ error: { hint: string } }>(res).error.hint, /ARCHETYPE_AGENT_SECRET/);
      }
      for (const url of ["/openapi.json", "/docs", "/docs/", "/docs/json", "/docs/static/index.html"]) {
        assertError(await anon("GET", url), 401, "UNAUTHORIZED");
      }
      const authed = caller(app, secret);
      assert.equal((await authed("GET", "/openapi.json")).statusCode, 200);
      assert.ok([200, 302].includes((await authed("GET", "/docs")).statusCode));
    });

    it("a wrong token is 401, the right one passes", async () => {
      assertError(await caller(app, "wrong")("GET", "/labs"), 401, "UNAUTHORIZED");
      assertError(await caller(app, `${secret}x`)("GET", "/labs"), 401, "UNAUTHORIZED");
      assertError(
        await caller(app)("GET", "/labs", undefined, { authorization: secret }),
        401,
        "UNAUTHORIZED",
      );
      assert.equal((await caller(app, secret)("GET", "/labs")).statusCode, 200);
      assert.equal((await caller(app, secret)("GET", "/metrics")).statusCode, 200);
      assertError(await caller(app, secret)("GET", "/nope"), 404, "NOT_FOUND");
    });
  });
}
