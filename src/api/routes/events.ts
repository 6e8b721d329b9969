/**
 * `GET /events`: the live page's one stream (Server-Sent Events) of lab changes, counter
 * samples and the switch's connection, from the agent's caches (see live-feed.ts). Auth is the
 * API's: the page reads it with fetch and an Authorization header, never a token in the URL.
 */

import type { ServerResponse } from "node:http";
import { Type } from "@sinclair/typebox";
import { ID_PATTERN } from "../../model/names.js";
import { type FeedEvent, LiveFeed, type PortSample } from "../live-feed.js";
import type { RouteModule } from "../types.js";

const EventsQuery = Type.Object({
  lab: Type.Optional(Type.String({ pattern: ID_PATTERN, description: "only this lab's counters" })),
});

/** A comment line keeps idle streams open through proxies and tells a dead client apart. */
const HEARTBEAT_MS = 15_000;

function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The lab a successful write was about: a path parameter, or the overlay body's lab. */
function writtenLab(params: unknown, body: unknown): string | undefined {
  const fromParams = (params as { lab?: unknown } | undefined)?.lab;
  if (typeof fromParams === "string") return fromParams;
  const fromBody = (body as { lab?: unknown } | undefined)?.lab;
  return typeof fromBody === "string" ? fromBody : undefined;
}

export const eventRoutes: RouteModule = (app, services) => {
  const feed = new LiveFeed(services);
  const streams = new Set<ServerResponse>();

  // Every successful write to a lab is announced (the OVSDB monitor covers changes behind the API).
  app.addHook("onResponse", async (req, reply) => {
    if (req.method === "GET" || req.method === "HEAD" || reply.statusCode >= 300) return;
    const lab = writtenLab(req.params, req.body);
    if (lab !== undefined) feed.labChanged(lab, `${req.method} ${req.routeOptions.url ?? req.url}`);
  });
  app.addHook("preClose", async () => {
    for (const s of streams) s.end();
  });
  app.addHook("onClose", async () => feed.close());

  app.get(
    "/events",
    {
      schema: {
        tags: ["agent"],
        summary:
          "Live events (text/event-stream): `lab` (a lab changed), `ports` (counter samples with rates), `switch`",
        querystring: EventsQuery,
      },
    },
    (req, reply) => {
      const only = req.query.lab;
      const mine = (p: PortSample) => only === undefined || p.lab === only;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        connection: "keep-alive",
      });
      const send = (e: FeedEvent) => {
        if (e.type === "ports") {
          // Samples are dropped for a client that cannot keep up; lab changes never are.
          if (res.writableNeedDrain) return;
          const ports = e.data.ports.filter(mine);
          if (ports.length > 0) res.write(frame("ports", { t: e.data.t, ports }));
          return;
        }
        res.write(frame(e.type, e.data));
      };
      const unsubscribe = feed.subscribe(send);
      streams.add(res);
      res.write(frame("hello", { backend: services.backend.name, version: services.version }));
      res.write(frame("ports", { t: Date.now(), ports: feed.snapshot().filter(mine) }));
      const heartbeat = setInterval(() => res.write(": ping\n\n"), HEARTBEAT_MS);
      res.on("close", () => {
        clearInterval(heartbeat);
        unsubscribe();
        streams.delete(res);
      });
    },
  );
};
