/**
 * Bearer-token auth: when the agent has a secret, every route but /health and the live page's
 * static shell needs
 * `Authorization: Bearer <secret>` (the API's description too: it tells what the agent runs).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AgentError } from "../common/errors.js";

/** What anyone may fetch: liveness, and the live page's shell (its data comes through the API). */
export function isPublicRoute(url: string | undefined): boolean {
  if (url === undefined) return false;
  if (url === "/" || url === "/ui" || url.startsWith("/ui/")) return true; // the live page's shell: no data in it
  return url === "/health";
}

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

/** Constant-time comparison of a presented token with the secret. */
export function tokenMatches(presented: string, secret: string): boolean {
  return timingSafeEqual(digest(presented), digest(secret));
}

function presentedToken(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer[ \t]+(.+)$/i.exec(header.trim());
  return m?.[1]?.trim();
}

/** An onRequest hook enforcing the secret (a no-op when there is none). */
export function authHook(secret: string | undefined) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    if (secret === undefined || isPublicRoute(request.routeOptions.url)) return;
    const token = presentedToken(request.headers.authorization);
    if (token === undefined || !tokenMatches(token, secret)) {
      throw new AgentError(
        "UNAUTHORIZED",
        token === undefined ? "this agent needs a bearer token" : "the bearer token is wrong",
        "pass --token-file FILE (or set ARCHETYPE_AGENT_SECRET) with the agent's secret; HTTP: Authorization: Bearer <secret>",
      );
    }
  };
}
