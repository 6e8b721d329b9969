/**
 * Bounded fuzz of the API: thousands of requests from a seeded PRNG, each invalid by
 * construction (unknown paths, wrong methods, odd ids, bad bodies, unknown resources, valid
 * requests as a web page sends them, bad tokens). Every answer must be a 4xx with a JSON error code, never a 5xx, and the agent's
 * state must not change.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import type { InjectOptions } from "fastify";
import type { App } from "../../src/api/types.js";
import { type ApiFixture, type ApiFixtureFactory, appFor, stateOf } from "./fixture.js";

/** mulberry32: small, fast, seeded. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LAB = "fz";

/** Ids that no name pattern accepts (encoded for a path; no `..`: URLs normalize it away). */
const BAD_NAMES = [
  "-x",
  ".x",
  "...",
  "_a",
  "a%20b",
  "a%2Fb",
  "a:b",
  "%C3%A9t%C3%A9",
  "a%00b",
  "a%0Ab",
  "x".repeat(64),
  "y".repeat(300),
  "%ZZ",
  "a*b",
  "a%22b",
  "a'b",
  "%F0%9F%92%A5",
];
/** Interface names no pattern accepts. */
const BAD_IFNAMES = ["a%2Fb", "a:b", "a%20b", "a%09b", "e".repeat(16), "%ZZ", "z".repeat(300)];
/** Valid ids of things that do not exist. */
const GHOSTS = ["ghost", "nope-1", "x.y_z", "Z9"];

interface Route {
  method: string;
  /** With :lab etc. */
  path: string;
  /** A valid body (routes that take one). */
  body?: () => Record<string, unknown>;
}

const ROUTES: Route[] = [
  { method: "GET", path: "/health" },
  { method: "GET", path: "/labs" },
  { method: "GET", path: "/labs/:lab" },
  {
    method: "PUT",
    path: "/labs/:lab",
    body: () => ({ nodes: [{ name: "r1", netns: "r1ns", interfaces: [{ name: "eth1" }] }], links: [] }),
  },
  {
    method: "POST",
    path: "/labs/:lab",
    body: () => ({ nodes: [], links: [{ a: "r1:eth1", b: "r2:eth1" }] }),
  },
  { method: "DELETE", path: "/labs/:lab" },
  {
    method: "POST",
    path: "/labs/:lab/nodes/:node/interfaces",
    body: () => ({ netns: "r9ns", interfaces: [{ name: "eth7", mtu: 1500 }] }),
  },
  { method: "POST", path: "/labs/:lab/links", body: () => ({ a: "r1:eth5", b: "r2:eth5", id: "k1" }) },
  { method: "GET", path: "/labs/:lab/links" },
  { method: "DELETE", path: "/labs/:lab/links/:id" },
  { method: "PUT", path: "/labs/:lab/nodes/:node/interfaces/:if/carrier", body: () => ({ state: "down" }) },
  { method: "PUT", path: "/labs/:lab/links/:id/carrier", body: () => ({ state: "down" }) },
  // (PUT impairment is left out: every field is optional, so a body with one dropped stays valid.)
  { method: "GET", path: "/labs/:lab/links/:id/impairment" },
  { method: "DELETE", path: "/labs/:lab/links/:id/impairment" },
  { method: "GET", path: "/labs/:lab/links/:id/capture" },
  { method: "GET", path: "/labs/:lab/nodes/:node/interfaces/:if/capture" },
  {
    method: "POST",
    path: "/overlay/links",
    body: () => ({
      lab: LAB,
      link: "ov9",
      node: "r1",
      interface: "eth2",
      vni: 77,
      local_ip: "198.18.0.1",
      remote_ip: "198.18.0.2",
      mtu: 1400,
    }),
  },
  { method: "DELETE", path: "/overlay/links/:lab/:link" },
  { method: "GET", path: "/overlay/links/:lab/:link/capture" },
  { method: "GET", path: "/overlay/status" },
  { method: "GET", path: "/ovs/status" },
  { method: "GET", path: "/cleanup/audit" },
  { method: "POST", path: "/cleanup/run" },
  { method: "GET", path: "/metrics" },
  { method: "GET", path: "/openapi.json" },
];

const METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"];

type Rand = () => number;
const pick = <T>(r: Rand, list: readonly T[]): T => list[Math.floor(r() * list.length)] as T;

function nested(depth: number, r: Rand): string {
  const open = r() < 0.5 ? "[" : '{"a":';
  const close = open === "[" ? "]" : "}";
  return `${open.repeat(depth)}1${close.repeat(depth)}`;
}

/** Values of the wrong type or shape for anything. */
function junk(r: Rand): unknown {
  return pick(r, [
    null,
    true,
    0,
    -1,
    1.5,
    1e308,
    "",
    "x",
    "r1:eth1",
    [],
    [null],
    {},
    { a: 1 },
    "x".repeat(5000),
    [[[[[]]]]],
    { __proto: 1 },
  ]);
}

/** A body made invalid: one field removed, retyped or added, or the whole body replaced. */
function badBody(route: Route, r: Rand): { payload: string; contentType?: string } {
  const body = route.body?.() ?? {};
  const keys = Object.keys(body);
  const kind = Math.floor(r() * 9);
  const asJson = (v: unknown) => ({ payload: JSON.stringify(v), contentType: "application/json" });
  switch (kind) {
    case 0: {
      // drop a required field (mtu and id are optional)
      const required = keys.filter((k) => k !== "mtu" && k !== "id" && k !== "netns");
      const k = pick(r, required);
      delete body[k];
      return asJson(body);
    }
    case 1: {
      const k = pick(r, keys);
      let v = junk(r);
      // a string where a string is expected could be valid: make it invalid for every field
      if (typeof v === "string" && v !== "" && k !== "vni" && k !== "mtu") v = `${v} /:`;
      if (k === "netns" && typeof v === "string") v = 12;
      if (Array.isArray(v) && v.length === 0) v = [null]; // an empty list of nodes or links is valid
      body[k] = v;
      return asJson(body);
    }
    case 2:
      body[pick(r, ["extra", "x", "__proto__x", "constructor", "NODES", "vni2"])] = junk(r);
      return asJson(body);
    case 3:
      return asJson(pick(r, [null, 1, "str", [], [body], true]));
    case 4:
      return {
        payload: pick(r, ["{", "{'a':1}", '{"nodes":[', "nul", "[1,]", '{"a":1}}', "\u0000", "{\u00ff}"]),
        contentType: pick(r, ["application/json", "text/plain", ""]),
      };
    case 5:
      return { payload: nested(1000 + Math.floor(r() * 20000), r), contentType: "application/json" };
    case 6:
      // bigger than the 1 MiB limit, rarely (they are slow)
      if (r() < 0.1) return asJson({ ...body, pad: "p".repeat(1024 * 1024 + 10) });
      return asJson({ ...body, pad: "p".repeat(100) });
    case 7:
      return {
        payload: "a=1&b=2",
        contentType: pick(r, ["application/x-www-form-urlencoded", "multipart/form-data"]),
      };
    default: {
      // semantic: values out of range or malformed for the routes that have them
      const bad: Record<string, unknown[]> = {
        vni: [0, 16777216, -5, 1.5, "77"],
        mtu: [0, 67, 65536, "1500"],
        local_ip: ["198.18.0", "300.1.1.1", "::1", "198.18.0.1/24", " 198.18.0.1"],
        remote_ip: ["a.b.c.d", "1.2.3.4.5"],
        state: ["UP", "off", "", 1, null],
        a: ["r1", ":eth1", "r1:", "r1:eth/1", "r1:e t"],
        b: ["r1:eth1:x", "-r:eth1"],
        id: ["", "-x", "a b", "x".repeat(70)],
        lab: ["", "a/b"],
        link: ["..", "a b"],
        node: ["-", "é"],
        interface: ["", "a:b", "sixteen-chars-xx"],
        nodes: [[{ name: "r1", interfaces: [{ name: "eth1", mtu: 10 }] }], [{ name: "r 1", interfaces: [] }]],
        links: [[{ a: "r1:eth1" }], [{ a: "r1:eth1", b: "r2:eth1", extra: 1 }]],
        netns: ["", 5],
        interfaces: [[], [{}], [{ name: "eth1", up: true }]],
      };
      const candidates = keys.filter((k) => bad[k]);
      if (candidates.length === 0) return asJson({ ...body, zzz: 1 });
      const k = pick(r, candidates);
      body[k] = pick(r, bad[k] ?? []);
      return asJson(body);
    }
  }
}

function fill(path: string, r: Rand, badParam: string | undefined, ghost: boolean): string {
  const params = [...path.matchAll(/:([a-z]+)/g)].map((m) => m[1] as string);
  const target = badParam === undefined ? undefined : pick(r, params);
  return path.replace(/:([a-z]+)/g, (_m, p: string) => {
    if (p === target) return p === "if" ? pick(r, BAD_IFNAMES) : pick(r, BAD_NAMES);
    if (ghost) return pick(r, GHOSTS);
    return p === "lab"
      ? LAB
      : p === "node"
        ? "r1"
        : p === "if"
          ? "eth1"
          : p === "id" || p === "link"
            ? "l1"
            : "x";
  });
}

export interface FuzzRequest {
  method: NonNullable<InjectOptions["method"]>;
  url: string;
  payload?: string;
  headers?: Record<string, string>;
  /** Which kind of invalid it is. */
  why: string;
}

/** A valid request as a web page could send it: cross-site, DNS-rebound, or a form's body. */
function fromWebPage(route: Route, r: Rand): FuzzRequest {
  const req: FuzzRequest = {
    method: route.method as "GET",
    url: fill(route.path, r, undefined, false),
    why: "",
  };
  const headers: Record<string, string> = {};
  const body = route.body ? JSON.stringify(route.body()) : undefined;
  if (body !== undefined) {
    req.payload = body;
    headers["content-type"] = "application/json";
  }
  const how = pick(r, ["origin", "host", "sec-fetch-site", ...(body === undefined ? [] : ["content-type"])]);
  req.why = `from a web page (${how})`;
  if (how === "origin") {
    headers.origin = pick(r, [
      "http://evil.example",
      "null",
      "http://127.0.0.1:3000",
      "http://localhost.evil.example",
    ]);
  } else if (how === "host") {
    headers.host = pick(r, [
      "attacker.example:8001",
      "evil.example",
      "127.0.0.1.nip.io:8001",
      "localhost.:8001",
    ]);
  } else if (how === "sec-fetch-site") {
    headers["sec-fetch-site"] = pick(r, ["cross-site", "same-site"]);
  } else {
    headers["content-type"] = pick(r, [
      "text/plain;charset=UTF-8",
      "application/x-www-form-urlencoded",
      "text/plain",
    ]);
  }
  req.headers = headers;
  return req;
}

/** One request that no agent may accept. */
export function invalidRequest(r: Rand): FuzzRequest {
  const category = Math.floor(r() * 7);
  const headers: Record<string, string> = {};
  if (category === 0) {
    const segs = Array.from({ length: 1 + Math.floor(r() * 4) }, () =>
      pick(r, ["x", "lab", "labs2", "%2e", "...", "ovs", "a b", "%ZZ", "metrics", "0", "", "ovs-status"]),
    );
    const first = pick(r, ["", "nope", "lab", "overlay2", "LABS", "health2", "api", "v1"]);
    return { method: pick(r, METHODS) as "GET", url: `/${first}/${segs.join("/")}`, why: "unknown path" };
  }
  const route = pick(r, ROUTES);
  if (category === 6) return fromWebPage(route, r);
  if (category === 1) {
    const allowed = new Set(ROUTES.filter((x) => x.path === route.path).map((x) => x.method));
    const wrong = METHODS.filter((m) => !allowed.has(m) && !(m === "GET" && allowed.has("HEAD")));
    return {
      method: pick(r, wrong) as "GET",
      url: fill(route.path, r, undefined, false),
      why: "wrong method",
    };
  }
  if (category === 2 && route.path.includes(":")) {
    const url = fill(route.path, r, "bad", false);
    const opts: FuzzRequest = { method: route.method as "GET", url, why: "bad id" };
    if (route.body) {
      opts.payload = JSON.stringify(route.body());
      headers["content-type"] = "application/json";
    }
    return { ...opts, headers };
  }
  if (route.body && category <= 4) {
    const b = badBody(route, r);
    if (b.contentType) headers["content-type"] = b.contentType;
    return {
      method: route.method as "GET",
      url: fill(route.path, r, undefined, false),
      payload: b.payload,
      headers,
      why: "bad body",
    };
  }
  // unknown resources with a valid request
  const ghostly = ROUTES.filter(
    (x) =>
      x.path.includes(":") && (x.method === "GET" || x.method === "DELETE" || x.path.endsWith("carrier")),
  );
  const g = pick(r, ghostly);
  const opts: FuzzRequest = {
    method: g.method as "GET",
    url: fill(g.path, r, undefined, true),
    why: "unknown resource",
  };
  if (g.body) {
    opts.payload = JSON.stringify(g.body());
    opts.headers = { "content-type": "application/json" };
  }
  return opts;
}

/**
 * Sends an inject-style request over real HTTP (node:http, so the path goes out as written, but
 * for what a request line cannot carry, like spaces, which is percent-encoded) to an app
 * listening on 127.0.0.1.
 */
function httpSender(base: string): (req: InjectOptions) => Promise<{ statusCode: number; body: string }> {
  const { port } = new URL(base);
  return (req) =>
    new Promise((resolve, reject) => {
      const payload = typeof req.payload === "string" ? req.payload : undefined;
      const headers: Record<string, string> = { ...(req.headers as Record<string, string> | undefined) };
      if (payload !== undefined) headers["content-length"] = String(Buffer.byteLength(payload));
      const r = request(
        {
          host: "127.0.0.1",
          port: Number(port),
          method: String(req.method),
          path: String(req.url).replace(/[^\x21-\x7e]/g, encodeURIComponent),
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on("error", reject);
        },
      );
      r.setTimeout(30_000, () => r.destroy(new Error(`no answer to ${req.method} ${req.url}`)));
      r.on("error", reject);
      r.end(payload);
    });
}

export function fuzzSuite(
  name: string,
  factory: ApiFixtureFactory,
  opts: {
    count?: number;
    seed?: number;
    /** Run the invalid requests against an agent with this secret, sending the right token. */
    secret?: string;
    /** Send them over real HTTP to 127.0.0.1 instead of app.inject. */
    http?: boolean;
  } = {},
): void {
  const count = opts.count ?? 3000;
  const seed = opts.seed ?? Number(process.env.FUZZ_SEED ?? 20240917);
  const how = [opts.secret === undefined ? "" : ", auth on", opts.http ? ", over HTTP" : ""].join("");

  describe(`API fuzz (${name}${how}, seed ${seed})`, () => {
    let fx: ApiFixture;
    let app: App;
    let send: (req: InjectOptions) => Promise<{ statusCode: number; body: string }>;
    const auth: Record<string, string> =
      opts.secret === undefined ? {} : { authorization: `Bearer ${opts.secret}` };

    before(async () => {
      fx = await factory(opts.secret === undefined ? {} : { secret: opts.secret });
      app = appFor(fx);
      if (opts.http) {
        const address = await app.listen({ host: "127.0.0.1", port: 0 });
        send = httpSender(address);
      } else {
        send = (req) => app.inject(req);
      }
      const ref = async (n: string) => fx.nodeRef(n);
      const put = await app.inject({
        headers: auth,
        method: "PUT",
        url: `/labs/${LAB}`,
        payload: {
          nodes: [
            { name: "r1", ...(await ref("r1")), interfaces: [{ name: "eth1" }, { name: "eth2" }] },
            { name: "r2", ...(await ref("r2")), interfaces: [{ name: "eth1" }] },
          ],
          links: [{ a: "r1:eth1", b: "r2:eth1", id: "l1" }],
        },
      });
      assert.equal(put.statusCode, 200, put.body);
      const ov = await app.inject({
        headers: auth,
        method: "POST",
        url: "/overlay/links",
        payload: {
          lab: LAB,
          link: "ov1",
          node: "r1",
          interface: "eth2",
          vni: 4242,
          local_ip: "198.18.0.1",
          remote_ip: "198.18.0.2",
        },
      });
      assert.equal(ov.statusCode, 201, ov.body);
    });
    after(async () => {
      await app.inject({ method: "DELETE", url: `/overlay/links/${LAB}/ov1`, headers: auth });
      await app.inject({ method: "DELETE", url: `/labs/${LAB}`, headers: auth });
      await app.close();
      await fx.close();
    });

    it(`${count} invalid requests: each a 4xx with a JSON error code, state unchanged`, async () => {
      const r = prng(seed);
      const before = await stateOf(fx.services);
      const seen = new Map<string, number>();
      for (let n = 0; n < count; n++) {
        const req = invalidRequest(r);
        const { why, ...inject } = req;
        const res = await send({ ...inject, headers: { ...inject.headers, ...auth } });
        const where = `#${n} ${why}: ${req.method} ${req.url.slice(0, 120)} ${String(req.payload ?? "").slice(0, 120)} -> ${res.statusCode} ${res.body.slice(0, 200)}`;
        assert.ok(res.statusCode >= 400 && res.statusCode < 500, where);
        let code: unknown;
        try {
          code = (JSON.parse(res.body) as { error?: { code?: unknown } }).error?.code;
        } catch {
          assert.fail(`not JSON: ${where}`);
        }
        assert.equal(typeof code, "string", where);
        seen.set(
          `${res.statusCode} ${String(code)}`,
          (seen.get(`${res.statusCode} ${String(code)}`) ?? 0) + 1,
        );
      }
      assert.equal(await stateOf(fx.services), before, "state changed");
      // the fuzz reaches every kind of refusal
      const kinds = [...seen.keys()].join(", ");
      for (const want of [
        "400 BAD_REQUEST",
        "404 NOT_FOUND",
        "405 METHOD_NOT_ALLOWED",
        "404 LAB_NOT_FOUND",
        "415",
        "403 FORBIDDEN",
        "421 MISDIRECTED_REQUEST",
      ]) {
        assert.ok(kinds.includes(want), `${want} never seen in: ${kinds}`);
      }
    });
  });

  // once per factory: the runs with a secret send the right token
  if (opts.secret !== undefined) return;
  describe(`API fuzz with auth (${name})`, () => {
    let fx: ApiFixture;
    let app: App;
    before(async () => {
      fx = await factory({ secret: "fuzz-secret" });
      app = appFor(fx);
    });
    after(async () => {
      await app.close();
      await fx.close();
    });

    it(`${Math.ceil(count / 6)} requests with missing or wrong tokens: all 401`, async () => {
      const r = prng(seed + 1);
      const before = await stateOf(fx.services);
      for (let n = 0; n < Math.ceil(count / 6); n++) {
        const route = pick(
          r,
          ROUTES.filter((x) => x.path !== "/health"),
        );
        const auth = pick(r, [
          undefined,
          "",
          "Bearer",
          "Bearer ",
          "Bearer fuzz-secre",
          "Bearer fuzz-secret2",
          "Basic fuzz-secret",
          "fuzz-secret",
          `Bearer ${"x".repeat(1000)}`,
        ]);
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (auth !== undefined) headers.authorization = auth;
        const res = await app.inject({
          method: route.method as "GET",
          url: fill(route.path, r, undefined, r() < 0.5),
          headers,
          ...(route.body ? { payload: JSON.stringify(route.body()) } : {}),
        });
        assert.equal(res.statusCode, 401, `${route.method} ${route.path} auth=${auth}: ${res.body}`);
        assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, "UNAUTHORIZED");
      }
      assert.equal(await stateOf(fx.services), before);
    });
  });
}
