/**
 * Packet capture as a pcap stream (`application/vnd.tcpdump.pcap`): a link (both directions, on
 * one of its ends), one interface, or an overlay link (on this host's end), until the client leaves, `count` packets or `seconds` pass.
 * Everything that can be refused (a bad filter, the limit, a missing interface) is answered as
 * JSON before the stream starts; once it has, the capture's helper ends with the connection.
 */
import type { FastifyReply } from "fastify";
import type { CaptureHandle, CaptureOptions } from "../../model/operations.js";
import { CaptureQuery, InterfaceParams, LabLinkParams, OverlayParams } from "../schemas.js";
import type { RouteModule } from "../types.js";

export const PCAP_MEDIA_TYPE = "application/vnd.tcpdump.pcap";

function options(q: { count?: string; seconds?: string; filter?: string }): CaptureOptions {
  return {
    ...(q.count === undefined ? {} : { count: Number(q.count) }),
    ...(q.seconds === undefined ? {} : { seconds: Number(q.seconds) }),
    ...(q.filter === undefined ? {} : { filter: q.filter }),
  };
}

export const captureRoutes: RouteModule = (app, services) => {
  const streaming = new Set<CaptureHandle>();
  app.addHook("preClose", async () => {
    await Promise.all([...streaming].map((h) => h.stop()));
  });

  const stream = (reply: FastifyReply, handle: CaptureHandle) => {
    reply.hijack();
    const res = reply.raw;
    if (res.destroyed || res.socket?.destroyed) {
      void handle.stop(); // the client left while the capture was starting
      return;
    }
    res.writeHead(200, {
      "content-type": PCAP_MEDIA_TYPE,
      "content-disposition": `attachment; filename="${handle.name}.pcap"`,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
    // The client knows the capture listens now (tcpdump's pcap header comes with the first frame).
    res.flushHeaders();
    streaming.add(handle);
    handle.stream.pipe(res);
    // The client left (or the stream ended): the capture's tcpdump goes too.
    res.on("close", () => {
      streaming.delete(handle);
      void handle.stop();
    });
  };

  app.get(
    "/labs/:lab/links/:id/capture",
    {
      schema: {
        tags: ["capture"],
        summary:
          "Capture a link, both directions (pcap stream until the client leaves, count or seconds); filter: a BPF expression",
        params: LabLinkParams,
        querystring: CaptureQuery,
        produces: [PCAP_MEDIA_TYPE],
      },
    },
    async (req, reply) => {
      const handle = await services.captures.start(
        { lab: req.params.lab, link: req.params.id },
        options(req.query),
      );
      stream(reply, handle);
    },
  );

  app.get(
    "/labs/:lab/nodes/:node/interfaces/:if/capture",
    {
      schema: {
        tags: ["capture"],
        summary: "Capture one interface, both directions (pcap stream); as the link capture",
        params: InterfaceParams,
        querystring: CaptureQuery,
        produces: [PCAP_MEDIA_TYPE],
      },
    },
    async (req, reply) => {
      const handle = await services.captures.start(
        { lab: req.params.lab, node: req.params.node, iface: req.params.if },
        options(req.query),
      );
      stream(reply, handle);
    },
  );

  app.get(
    "/overlay/links/:lab/:link/capture",
    {
      schema: {
        tags: ["capture"],
        summary:
          "Capture an overlay link, both directions, on this host's end (its node interface); as the link capture",
        params: OverlayParams,
        querystring: CaptureQuery,
        produces: [PCAP_MEDIA_TYPE],
      },
    },
    async (req, reply) => {
      const handle = await services.captures.start(
        { lab: req.params.lab, overlay: req.params.link },
        options(req.query),
      );
      stream(reply, handle);
    },
  );
};
