/**
 * What a web page the user opens can do to the agent, over real HTTP on 127.0.0.1: the exact
 * requests browsers send for cross-site fetch(), forms and DNS-rebound pages. None may change the
 * lab (its view through the API, and the whole state, switch ports included, stay equal) or read
 * anything; clients that are not browsers (no Origin) and the agent's own origin still pass.
 * Parameterized by the services factory (stub, real agent).
 */
import assert from "node:assert/strict";
import { type IncomingHttpHeaders, request } from "node:http";
import { after, before, describe, it } from "node:test";
import { type RunningApi, startApi } from "../../src/api/server.js";
import { silentLogger } from "../../src/common/log.js";
import type { LabView } from "../../src/model/views.js";
import { type ApiFixture, type ApiFixtureFactory, stateOf } from "./fixture.js";

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request with exactly these headers (node:http adds no Origin, Host only if missing). */
function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const h = {
      ...headers,
      ...(body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) }),
    };
    const r = request({ host: hostname, port: Number(port), method, path, headers: h }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on("error", reject);
    });
    r.setTimeout(30_000, () => r.destroy(new Error(`no answer to ${method} ${path}`)));
    r.on("error", reject);
    r.end(body);
  });
}

function assertRefused(res: Answer, status: number, code: string, what: string): void {
  assert.equal(res.status, status, `${what}: ${res.body}`);
  assert.match(String(res.headers["content-type"]), /^application\/json/, what);
  const err = (JSON.parse(res.body) as { error: { code: string; message: string; hint?: string } }).error;
  assert.equal(err.code, code, what);
  assert.ok(err.hint, `${what}: a hint`);
  for (const h of Object.keys(res.headers)) assert.doesNotMatch(h, /^access-control-/, `${what}: ${h}`);
}

/** What wipes the lab if the agent takes it. */
const WIPE = JSON.stringify({ nodes: [], links: [] });
const EVIL = "http://evil.example";

export function browserSuite(name: string, factory: ApiFixtureFactory): void {
  describe(`API and web browsers (${name})`, () => {
    const lab = "t-web";
    let fx: ApiFixture;
    let api: RunningApi;
    let named: RunningApi;
    let host: string;
    let labBefore: string;
    let stateBefore: string;
    let spec: { nodes: unknown[]; links: unknown[] };

    /** The lab as archnet sees it (no Origin, a Host of the agent). */
    const labNow = async () => {
      const res = await send(api.address, "GET", `/labs/${lab}`, {});
      assert.equal(res.status, 200, res.body);
      return res.body;
    };

    before(async () => {
      fx = await factory({});
      api = await startApi(fx.services, { logger: silentLogger() });
      // the same agent answering to one more name (ARCHETYPE_AGENT_ALLOWED_HOSTS)
      named = await startApi(
        { ...fx.services, config: { ...fx.services.config, allowedHosts: ["agent.lab.example"] } },
        { logger: silentLogger() },
      );
      host = new URL(api.address).host;
      spec = {
        nodes: [
          { name: "r1", ...(await fx.nodeRef("r1")), interfaces: [{ name: "eth1" }] },
          { name: "r2", ...(await fx.nodeRef("r2")), interfaces: [{ name: "eth1" }] },
        ],
        links: [{ a: "r1:eth1", b: "r2:eth1", id: "l1" }],
      };
      const put = await send(
        api.address,
        "PUT",
        `/labs/${lab}`,
        { "content-type": "application/json" },
        JSON.stringify(spec),
      );
      assert.equal(put.status, 200, put.body);
      labBefore = await labNow();
      assert.equal((JSON.parse(labBefore) as LabView).links.length, 1);
      stateBefore = await stateOf(fx.services);
    });
    after(async () => {
      if (api) await send(api.address, "DELETE", `/labs/${lab}`, {}).catch(() => undefined);
      await named?.close();
      await api?.close();
      await fx?.close();
    });

    /** After each attack: the lab and the switch are as they were. */
    async function assertUnchanged(what: string): Promise<void> {
      assert.equal(await labNow(), labBefore, `${what}: the lab changed`);
      assert.equal(await stateOf(fx.services), stateBefore, `${what}: the state changed`);
    }

    it("fetch(..., {mode: 'no-cors', method: 'POST', body}) from another site: 403, lab unchanged", async () => {
      // what Chrome sends for a string body: text/plain, and Origin even in no-cors mode
      const res = await send(
        api.address,
        "POST",
        `/labs/${lab}`,
        {
          host,
          origin: EVIL,
          "content-type": "text/plain;charset=UTF-8",
          "sec-fetch-site": "cross-site",
          "sec-fetch-mode": "no-cors",
          "sec-fetch-dest": "empty",
        },
        WIPE,
      );
      assertRefused(res, 403, "FORBIDDEN", "no-cors POST");
      await assertUnchanged("no-cors POST");
    });

    it("the same bodies without Origin, as text/plain, form or no Content-Type: 415, lab unchanged", async () => {
      const cases: [string, Record<string, string>, string][] = [
        ["text/plain", { "content-type": "text/plain;charset=UTF-8" }, WIPE],
        // <form enctype="text/plain"> with input name '{"nodes":[],"links":[],"x":"' value '"}'
        ["text/plain form", { "content-type": "text/plain" }, '{"nodes":[],"links":[],"x":"="}'],
        ["urlencoded form", { "content-type": "application/x-www-form-urlencoded" }, `x=${WIPE}`],
        ["multipart form", { "content-type": "multipart/form-data; boundary=b" }, WIPE],
        ["no Content-Type (a Blob body)", {}, WIPE],
        ["a JSON lookalike", { "content-type": "application/json-patch+json" }, WIPE],
        ["another charset", { "content-type": "application/json; charset=iso-8859-1" }, WIPE],
      ];
      for (const [what, headers, body] of cases) {
        for (const method of ["POST", "PUT"]) {
          const res = await send(api.address, method, `/labs/${lab}`, { host, ...headers }, body);
          assertRefused(res, 415, "UNSUPPORTED_MEDIA_TYPE", `${method} ${what}`);
        }
        await assertUnchanged(what);
      }
      // POST /cleanup/run needs no body: a page's empty POST is stopped by its Origin
      const run = await send(api.address, "POST", "/cleanup/run", {
        host,
        origin: EVIL,
        "content-type": "text/plain;charset=UTF-8",
      });
      assertRefused(run, 403, "FORBIDDEN", "cross-site POST /cleanup/run");
      await assertUnchanged("cross-site POST /cleanup/run");
    });

    it("a DNS-rebound page (Host attacker.example:PORT): 421 for reads and writes, lab unchanged", async () => {
      const port = new URL(api.address).port;
      const rebound = `attacker.example:${port}`;
      // to the browser the page and the agent are one origin: no preflight, JSON allowed
      const sameOrigin = { host: rebound, "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors" };
      for (const path of ["/labs", `/labs/${lab}`, "/ovs/status", "/metrics", "/openapi.json", "/health"]) {
        const res = await send(api.address, "GET", path, sameOrigin);
        assertRefused(res, 421, "MISDIRECTED_REQUEST", `GET ${path}`);
        assert.doesNotMatch(res.body, new RegExp(lab), `GET ${path} tells nothing of the lab`);
      }
      const put = await send(
        api.address,
        "PUT",
        `/labs/${lab}`,
        { ...sameOrigin, origin: `http://${rebound}`, "content-type": "application/json" },
        WIPE,
      );
      assertRefused(put, 421, "MISDIRECTED_REQUEST", "rebound PUT");
      const del = await send(api.address, "DELETE", `/labs/${lab}`, {
        ...sameOrigin,
        origin: `http://${rebound}`,
      });
      assertRefused(del, 421, "MISDIRECTED_REQUEST", "rebound DELETE");
      for (const bad of ["evil.example", "127.0.0.1.nip.io:8001", "localhost.:8001", "a b", "x@127.0.0.1"]) {
        assertRefused(
          await send(api.address, "GET", "/labs", { host: bad }),
          421,
          "MISDIRECTED_REQUEST",
          bad,
        );
      }
      await assertUnchanged("rebinding");
    });

    it("cross-site reads and CORS preflights: 403 without any Access-Control header", async () => {
      const corsGet = await send(api.address, "GET", "/labs", {
        host,
        origin: EVIL,
        "sec-fetch-site": "cross-site",
        "sec-fetch-mode": "cors",
      });
      assertRefused(corsGet, 403, "FORBIDDEN", "cors GET");
      // <script src=http://127.0.0.1:PORT/labs>: no Origin, but Sec-Fetch-Site
      const script = await send(api.address, "GET", "/labs", {
        host,
        "sec-fetch-site": "cross-site",
        "sec-fetch-mode": "no-cors",
        "sec-fetch-dest": "script",
      });
      assertRefused(script, 403, "FORBIDDEN", "<script> GET");
      // another port of localhost is another origin, but the same site
      const sameSite = await send(api.address, "GET", "/labs", {
        host,
        origin: "http://127.0.0.1:3000",
        "sec-fetch-site": "same-site",
      });
      assertRefused(sameSite, 403, "FORBIDDEN", "same-site GET");
      for (const origin of ["null", `https://evil.example`, `http://${host}.evil.example`, "garbage"]) {
        assertRefused(await send(api.address, "GET", "/labs", { host, origin }), 403, "FORBIDDEN", origin);
      }
      for (const path of [`/labs/${lab}`, "/labs", "/cleanup/run"]) {
        const preflight = await send(api.address, "OPTIONS", path, {
          host,
          origin: EVIL,
          "access-control-request-method": "PUT",
          "access-control-request-headers": "content-type",
          "sec-fetch-mode": "cors",
        });
        assertRefused(preflight, 403, "FORBIDDEN", `preflight ${path}`);
      }
      await assertUnchanged("cross-site reads");
    });

    it("curl, archnet and the agent's own pages pass; so does a name from ARCHETYPE_AGENT_ALLOWED_HOSTS", async () => {
      const port = new URL(api.address).port;
      for (const h of [host, `localhost:${port}`, `[::1]:${port}`, "127.0.0.1", `LOCALHOST:${port}`]) {
        const res = await send(api.address, "GET", `/labs/${lab}`, { host: h });
        assert.equal(res.status, 200, `Host ${h}: ${res.body}`);
      }
      // the /docs UI trying a route out: same origin
      const own = await send(
        api.address,
        "PUT",
        `/labs/${lab}`,
        {
          host,
          origin: `http://${host}`,
          "sec-fetch-site": "same-origin",
          "content-type": "application/json; charset=UTF-8",
        },
        JSON.stringify(spec),
      );
      assert.equal(own.status, 200, own.body);
      const typed = await send(api.address, "GET", "/labs", { host, "sec-fetch-site": "none" });
      assert.equal(typed.status, 200, "a URL the user typed");

      const namedHost = `agent.lab.example:${new URL(named.address).port}`;
      assert.equal((await send(named.address, "GET", `/labs/${lab}`, { host: namedHost })).status, 200);
      assertRefused(
        await send(api.address, "GET", `/labs/${lab}`, { host: `agent.lab.example:${port}` }),
        421,
        "MISDIRECTED_REQUEST",
        "a name this agent was not given",
      );
      await assertUnchanged("allowed requests");
    });
  });
}
