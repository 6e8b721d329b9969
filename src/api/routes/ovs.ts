import { answers, SwitchStatusViewSchema } from "../schemas.js";
import type { RouteModule } from "../types.js";

export const ovsRoutes: RouteModule = (app, services) => {
  app.get(
    "/ovs/status",
    {
      schema: {
        tags: ["agent"],
        summary: "The switch: bridge, datapath and every port",
        response: answers(200, SwitchStatusViewSchema),
      },
    },
    async () => services.backend.status(),
  );
};
