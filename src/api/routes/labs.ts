import {
  answers,
  DeletedLabAnswer,
  LabListAnswer,
  LabParams,
  LabSpecSchema,
  LabViewSchema,
  PutLabAnswer,
} from "../schemas.js";
import type { RouteModule } from "../types.js";

export const labRoutes: RouteModule = (app, services) => {
  const { labs } = services;

  app.get(
    "/labs",
    { schema: { tags: ["labs"], summary: "Every lab, with counts", response: answers(200, LabListAnswer) } },
    async () => labs.listLabs(),
  );

  app.get(
    "/labs/:lab",
    {
      schema: {
        tags: ["labs"],
        summary: "A lab's nodes, interfaces and links",
        params: LabParams,
        response: answers(200, LabViewSchema),
      },
    },
    async (req) => labs.getLab(req.params.lab),
  );

  for (const method of ["PUT", "POST"] as const) {
    app.route({
      method,
      url: "/labs/:lab",
      schema: {
        tags: ["labs"],
        summary:
          method === "PUT"
            ? "Converge a lab to exactly this (declarative, idempotent: what is absent is removed)"
            : "Alias of PUT /labs/{lab}",
        params: LabParams,
        body: LabSpecSchema,
        response: answers(200, PutLabAnswer),
      },
      handler: async (req) => {
        const { lab, changes } = await labs.putLab(req.params.lab, req.body);
        return { ...lab, changes };
      },
    });
  }

  app.delete(
    "/labs/:lab",
    {
      schema: {
        tags: ["labs"],
        summary: "Remove a lab: every interface, port and record of it",
        params: LabParams,
        response: answers(200, DeletedLabAnswer),
      },
    },
    async (req) => {
      await labs.deleteLab(req.params.lab);
      return { lab: req.params.lab, deleted: true as const };
    },
  );
};
