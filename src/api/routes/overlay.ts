import {
  answers,
  DeletedOverlayAnswer,
  OverlayAttachQuery,
  OverlayParams,
  OverlaySpecSchema,
  OverlayStatusAnswer,
  TunnelViewSchema,
} from "../schemas.js";
import type { RouteModule } from "../types.js";

export const overlayRoutes: RouteModule = (app, services) => {
  const { overlays } = services;

  app.post(
    "/overlay/links",
    {
      schema: {
        tags: ["overlay"],
        summary:
          "Attach a node's interface to a VXLAN tunnel (idempotent for an equal body, 409 on conflict)",
        body: OverlaySpecSchema,
        querystring: OverlayAttachQuery,
        response: answers(201, TunnelViewSchema),
      },
    },
    async (req, reply) => {
      const tunnel = await overlays.attach(req.body, { wait: req.query.wait === "true" });
      return reply.code(201).send(tunnel);
    },
  );

  app.delete(
    "/overlay/links/:lab/:link",
    {
      schema: {
        tags: ["overlay"],
        summary: "Detach an overlay link",
        params: OverlayParams,
        response: answers(200, DeletedOverlayAnswer),
      },
    },
    async (req) => {
      await overlays.detach(req.params.lab, req.params.link);
      return { lab: req.params.lab, link: req.params.link, deleted: true as const };
    },
  );

  app.get(
    "/overlay/status",
    {
      schema: {
        tags: ["overlay"],
        summary: "Every tunnel and its counters",
        response: answers(200, OverlayStatusAnswer),
      },
    },
    async () => ({ tunnels: overlays.status() }),
  );
};
