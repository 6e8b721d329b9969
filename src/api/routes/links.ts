import {
  answers,
  CarrierBody,
  DeletedLinkAnswer,
  LabLinkParams,
  LabParams,
  LinkListAnswer,
  LinkSpecSchema,
  LinkViewSchema,
} from "../schemas.js";
import type { RouteModule } from "../types.js";

export const linkRoutes: RouteModule = (app, services) => {
  const { labs } = services;

  app.post(
    "/labs/:lab/links",
    {
      schema: {
        tags: ["links"],
        summary: "Link two interfaces (409 if an end is already linked)",
        params: LabParams,
        body: LinkSpecSchema,
        response: answers(201, LinkViewSchema),
      },
    },
    async (req, reply) => {
      const link = await labs.addLink(req.params.lab, req.body);
      return reply.code(201).send(link);
    },
  );

  app.get(
    "/labs/:lab/links",
    {
      schema: {
        tags: ["links"],
        summary: "A lab's links",
        params: LabParams,
        response: answers(200, LinkListAnswer),
      },
    },
    async (req) => labs.listLinks(req.params.lab),
  );

  app.delete(
    "/labs/:lab/links/:id",
    {
      schema: {
        tags: ["links"],
        summary: "Remove a link: both ends are isolated again, interfaces kept",
        params: LabLinkParams,
        response: answers(200, DeletedLinkAnswer),
      },
    },
    async (req) => {
      await labs.removeLink(req.params.lab, req.params.id);
      return { lab: req.params.lab, id: req.params.id, deleted: true as const };
    },
  );

  app.put(
    "/labs/:lab/links/:id/carrier",
    {
      schema: {
        tags: ["links"],
        summary: "Set the carrier of both ends of a link",
        params: LabLinkParams,
        body: CarrierBody,
        response: answers(200, LinkViewSchema),
      },
    },
    async (req) => labs.setLinkCarrier(req.params.lab, req.params.id, req.body.state),
  );
};
