import { answers, ImpairmentSchema, ImpairmentViewSchema, LabLinkParams } from "../schemas.js";
import type { RouteModule } from "../types.js";

export const impairmentRoutes: RouteModule = (app, services) => {
  const { impairments } = services;

  app.get(
    "/labs/:lab/links/:id/impairment",
    {
      schema: {
        tags: ["links"],
        summary: "A link's impairment: what is asked, and what tc applies on its host ends now",
        params: LabLinkParams,
        response: answers(200, ImpairmentViewSchema),
      },
    },
    async (req) => impairments.get(req.params.lab, req.params.id),
  );

  app.put(
    "/labs/:lab/links/:id/impairment",
    {
      schema: {
        tags: ["links"],
        summary:
          "Set a link's impairment exactly, per direction (delay, jitter, loss, corruption, duplication, reordering: netem; a rate alone: tbf). 501 where the kernel lacks netem; nothing changes then",
        params: LabLinkParams,
        body: ImpairmentSchema,
        response: answers(200, ImpairmentViewSchema),
      },
    },
    async (req) => impairments.set(req.params.lab, req.params.id, req.body),
  );

  app.delete(
    "/labs/:lab/links/:id/impairment",
    {
      schema: {
        tags: ["links"],
        summary: "Clear a link's impairment (both directions)",
        params: LabLinkParams,
        response: answers(200, ImpairmentViewSchema),
      },
    },
    async (req) => impairments.set(req.params.lab, req.params.id, undefined),
  );
};
