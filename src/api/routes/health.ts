import { answers, HealthAnswer } from "../schemas.js";
import type { RouteModule } from "../types.js";

export const healthRoutes: RouteModule = (app, services) => {
  app.get(
    "/health",
    {
      schema: {
        tags: ["agent"],
        summary: "Liveness and what the agent runs on (no auth)",
        security: [],
        response: answers(200, HealthAnswer),
      },
    },
    async () => ({
      status: "ok" as const,
      version: services.version,
      backend: services.backend.name,
      datapath: services.backend.datapath,
    }),
  );
};
