/**
 * `GET /ui/`: the live lab page, static assets built from ui/ into dist/ui by `npm run build`
 * (bundled, no CDN: lab hosts are often offline). The page is a shell with no data in it; every
 * datum it shows comes from the API with the API's auth (it asks for the token when needed).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import { AgentError } from "../../common/errors.js";
import type { RouteModule } from "../types.js";

/** dist/ui of this checkout (the same from src/api/routes and dist/api/routes). */
export const UI_ROOT = fileURLToPath(new URL("../../../dist/ui/", import.meta.url));

/** Only the page's own files, no inline script or style, never framed. */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const uiRoutes: RouteModule = (app) => {
  for (const url of ["/", "/ui"])
    app.get(url, { schema: { hide: true } }, (_req, reply) => reply.redirect("/ui/"));

  app.register(async (ui) => {
    ui.addHook("onSend", async (_req, reply) => {
      // Vite names assets by content hash, so they are cached for good; the page itself never is.
      if (String(reply.getHeader("content-type")).startsWith("text/html"))
        reply.header("cache-control", "no-cache");
      reply.header("content-security-policy", UI_CSP);
      reply.header("x-content-type-options", "nosniff");
      reply.header("x-frame-options", "DENY");
      reply.header("referrer-policy", "no-referrer");
    });
    if (!existsSync(UI_ROOT)) {
      ui.get("/ui/*", { schema: { hide: true } }, async () => {
        throw new AgentError(
          "NOT_FOUND",
          "the live page is not built in this checkout",
          "run `npm run build` (or `make build`), then reload",
        );
      });
      return;
    }
    await ui.register(fastifyStatic, {
      root: UI_ROOT,
      prefix: "/ui/",
      schemaHide: true,
      maxAge: "365d",
      immutable: true,
    });
  });
};
