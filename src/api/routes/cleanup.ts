import { AuditAnswer, answers, CleanupRunAnswer } from "../schemas.js";
import type { RouteModule } from "../types.js";

export const cleanupRoutes: RouteModule = (app, services) => {
  app.get(
    "/cleanup/audit",
    {
      schema: {
        tags: ["cleanup"],
        summary: "What is orphaned (removes nothing)",
        response: answers(200, AuditAnswer),
      },
    },
    async () => ({ orphans: await services.cleanup.audit() }),
  );

  app.post(
    "/cleanup/run",
    {
      schema: {
        tags: ["cleanup"],
        summary: "Remove orphaned interfaces, ports and records",
        response: answers(200, CleanupRunAnswer),
      },
    },
    async () => ({ removed: await services.cleanup.run() }),
  );
};
