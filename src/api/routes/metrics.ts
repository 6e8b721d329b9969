import type { RouteModule } from "../types.js";

export const metricsRoutes: RouteModule = (app, services) => {
  const { registry } = services.metrics;
  app.get(
    "/metrics",
    {
      schema: {
        tags: ["agent"],
        summary: "Prometheus metrics (text exposition format)",
        produces: ["text/plain"],
      },
    },
    async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
};
