/** Per-request latency: `archnet_http_request_seconds{method,route,status}`. */
import type { FastifyReply, FastifyRequest } from "fastify";
import { Histogram, type Registry } from "prom-client";

const NAME = "archnet_http_request_seconds";

export function httpHistogram(registry: Registry): Histogram<"method" | "route" | "status"> {
  const existing = registry.getSingleMetric(NAME);
  if (existing) return existing as Histogram<"method" | "route" | "status">;
  return new Histogram({
    name: NAME,
    help: "HTTP API request latency",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
}

/** An onResponse hook recording the request; unmatched routes share one label to bound cardinality. */
export function recordRequest(histogram: Histogram<"method" | "route" | "status">) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const route = request.is404 ? "unmatched" : (request.routeOptions.url ?? "unmatched");
    histogram.observe(
      { method: request.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  };
}
