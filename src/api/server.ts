/**
 * The agent's HTTP API: contract routes of shared/spec/api.md, auth, one error shape, metrics,
 * and the OpenAPI document (/openapi.json) with its UI (/docs).
 */
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyBodyParser,
  type FastifyRequest,
  LogController,
} from "fastify";
import { AgentError } from "../common/errors.js";
import type { Logger } from "../common/log.js";
import type { AgentServices } from "../services.js";
import { authHook } from "./auth.js";
import { browserGuardHook } from "./browser-guard.js";
import { errorHandler, sendError } from "./errors.js";
import { httpHistogram, recordRequest } from "./http-metrics.js";
import { captureRoutes } from "./routes/capture.js";
import { cleanupRoutes } from "./routes/cleanup.js";
import { eventRoutes } from "./routes/events.js";
import { healthRoutes } from "./routes/health.js";
import { impairmentRoutes } from "./routes/impairment.js";
import { labRoutes } from "./routes/labs.js";
import { linkRoutes } from "./routes/links.js";
import { metricsRoutes } from "./routes/metrics.js";
import { nodeRoutes } from "./routes/nodes.js";
import { overlayRoutes } from "./routes/overlay.js";
import { ovsRoutes } from "./routes/ovs.js";
import { uiRoutes } from "./routes/ui.js";
import type { App, RouteModule } from "./types.js";

export const BODY_LIMIT = 1024 * 1024;

const ROUTES: readonly RouteModule[] = [
  eventRoutes,
  healthRoutes,
  labRoutes,
  nodeRoutes,
  linkRoutes,
  impairmentRoutes,
  captureRoutes,
  overlayRoutes,
  ovsRoutes,
  cleanupRoutes,
  metricsRoutes,
  uiRoutes,
];

export interface ServerOptions {
  logger: Logger;
}

/** Methods a path answers to, from the registered route patterns (for 405 answers). */
class MethodIndex {
  private readonly routes: { method: string; re: RegExp }[] = [];

  add(methods: string | string[], url: string): void {
    const re = new RegExp(
      `^${url.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z0-9_]+/g, "[^/]*")}/?$`,
    );
    for (const method of Array.isArray(methods) ? methods : [methods]) {
      if (method !== "HEAD") this.routes.push({ method, re });
    }
  }

  allowed(path: string): string[] {
    const methods = new Set(this.routes.filter((r) => r.re.test(path)).map((r) => r.method));
    return [...methods].sort();
  }
}

/** The one media type bodies may have: JSON, optionally saying it is UTF-8. */
const JSON_MEDIA_TYPE = /^application\/json[ \t]*(;[ \t]*charset[ \t]*=[ \t]*"?utf-?8"?[ \t]*)?$/i;

/**
 * JSON bodies with Content-Type application/json only: any other type, or none, is 415 however
 * the body looks. Those are what a web page may send to another site without asking (text/plain,
 * forms), so parsing them as JSON would let any page drive the agent. An empty body is no body.
 */
function jsonBodyParser(parseJson: FastifyBodyParser<string>): FastifyBodyParser<string> {
  return (req, body, done) => {
    const type = req.headers["content-type"];
    if (type === undefined ? body !== "" : !JSON_MEDIA_TYPE.test(type)) {
      done(
        new AgentError(
          "UNSUPPORTED_MEDIA_TYPE",
          type === undefined
            ? "the body has no Content-Type"
            : `bodies must be application/json, not ${type.split(";")[0]}`,
          "send the body with Content-Type: application/json",
        ),
        undefined,
      );
      return;
    }
    if (body.trim() === "") {
      done(null, undefined);
      return;
    }
    void parseJson(req, body, (err, value) => {
      if (!err) return done(null, value);
      done(new AgentError("BAD_REQUEST", `the body is not valid JSON: ${jsonProblem(body, err)}`), undefined);
    });
  };
}

/** What is wrong with a body the JSON parser refused (syntax, or a forbidden __proto__ key). */
function jsonProblem(body: string, err: Error): string {
  try {
    JSON.parse(body);
    return err.message;
  } catch (e) {
    return (e as Error).message;
  }
}

function pathOf(req: FastifyRequest): string {
  const q = req.url.indexOf("?");
  return q === -1 ? req.url : req.url.slice(0, q);
}

export function buildServer(services: AgentServices, opts: ServerOptions): App {
  const { metrics } = services;
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    frameworkErrors: (err, req, reply) => errorHandler(metrics)(err, req, reply),
  }).withTypeProvider<TypeBoxTypeProvider>();

  const methods = new MethodIndex();
  app.addHook("onRoute", (route) => methods.add(route.method, route.url ?? route.path));

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    "*",
    { parseAs: "string" },
    jsonBodyParser(app.getDefaultJsonParser("error", "error")),
  );

  app.setErrorHandler(errorHandler(metrics));
  app.setNotFoundHandler((req, reply) => {
    const path = pathOf(req);
    const allowed = methods.allowed(path);
    if (allowed.length > 0) {
      reply.header("allow", allowed.join(", "));
      return sendError(
        reply,
        metrics,
        new AgentError(
          "METHOD_NOT_ALLOWED",
          `${req.method} is not allowed on ${path}`,
          `use ${allowed.join(", ")}`,
        ),
      );
    }
    return sendError(
      reply,
      metrics,
      new AgentError(
        "NOT_FOUND",
        `no route ${req.method} ${path}`,
        "see GET /openapi.json (or /docs) for the routes",
      ),
    );
  });

  // before auth: a page's request is refused as such, whatever token it may carry
  app.addHook("onRequest", browserGuardHook(services.config));
  app.addHook("onRequest", authHook(services.config.secret));
  const histogram = httpHistogram(metrics.registry);
  const record = recordRequest(histogram);
  app.addHook("onResponse", async (req, reply) => {
    await record(req, reply);
    req.log.debug(
      {
        method: req.method,
        url: req.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
      },
      "request",
    );
  });

  app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "archetype-network agent",
        version: services.version,
        description:
          "Network agent for lab containers. Every route but /health needs " +
          "`Authorization: Bearer <secret>` when the agent has a secret (ARCHETYPE_AGENT_SECRET or " +
          "ARCHETYPE_AGENT_SECRET_FILE). Bodies are `application/json`; requests from web pages of " +
          "other origins, and Host names the agent does not know, are refused.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
  app.register(swaggerUi, { routePrefix: "/docs", uiConfig: { docExpansion: "list" } });

  app.register(async (api) => {
    const typed = api.withTypeProvider<TypeBoxTypeProvider>();
    for (const routes of ROUTES) routes(typed, services);
    typed.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  });

  return app;
}

export interface RunningApi {
  /** Base URL, e.g. http://127.0.0.1:8001 (the real port when config asked for port 0). */
  address: string;
  close(): Promise<void>;
}

/** Builds the API and listens on config.listen. */
export async function startApi(services: AgentServices, opts: ServerOptions): Promise<RunningApi> {
  const app = buildServer(services, opts);
  const { host, port } = services.config.listen;
  await app.listen({ host, port });
  const addr = app.server.address();
  const realPort = typeof addr === "object" && addr !== null ? addr.port : port;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  return {
    address: `http://${shownHost}:${realPort}`,
    close: () => app.close(),
  };
}
