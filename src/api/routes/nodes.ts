import {
  answers,
  CarrierBody,
  InterfaceParams,
  InterfaceViewSchema,
  LabNodeParams,
  NodeInterfacesSpecSchema,
  NodeViewSchema,
} from "../schemas.js";
import type { RouteModule } from "../types.js";

export const nodeRoutes: RouteModule = (app, services) => {
  const { labs } = services;

  app.post(
    "/labs/:lab/nodes/:node/interfaces",
    {
      schema: {
        tags: ["nodes"],
        summary: "Create interfaces in a node (given by netns or pid); creates the lab if needed",
        params: LabNodeParams,
        body: NodeInterfacesSpecSchema,
        response: answers(201, NodeViewSchema),
      },
    },
    async (req, reply) => {
      const node = await labs.addInterfaces(req.params.lab, req.params.node, req.body);
      return reply.code(201).send(node);
    },
  );

  app.put(
    "/labs/:lab/nodes/:node/interfaces/:if/carrier",
    {
      schema: {
        tags: ["nodes"],
        summary: "Set an interface's carrier: down makes the node see NO-CARRIER",
        params: InterfaceParams,
        body: CarrierBody,
        response: answers(200, InterfaceViewSchema),
      },
    },
    async (req) => labs.setCarrier(req.params.lab, req.params.node, req.params.if, req.body.state),
  );
};
