/**
 * Keeps web pages away from the API. Every page the user opens may send requests to 127.0.0.1,
 * so two checks run before auth and routing:
 * - Host must name this agent: its listen address, the address the connection reached, a
 *   loopback name, or one of ARCHETYPE_AGENT_ALLOWED_HOSTS. A DNS-rebound name (a page's own
 *   name, re-resolved to 127.0.0.1) is refused, so such a page reads nothing. The port is not
 *   compared: rebinding is about the name, and a browser always sends the port it connected to.
 * - A request a browser marks as sent by another site is refused: an Origin other than the
 *   agent's own (browsers send Origin with every POST, PUT and DELETE, "no-cors" ones too), or
 *   Sec-Fetch-Site cross-site / same-site (which also covers GETs of <img> and <script>).
 * curl and archnet send neither header. No CORS header is ever sent, so preflights fail too.
 */
import type { FastifyRequest } from "fastify";
import { AgentError } from "../common/errors.js";

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"];

/** The name in a Host header ("[::1]:8001" -> "::1"), lowercase; undefined if it is not HOST[:PORT]. */
export function hostName(header: string): string | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(:\d{1,5})?$/i.exec(header);
  return m?.[1]?.toLowerCase().replace(/^\[(.*)\]$/, "$1");
}

/** Whether an Origin header names the site the request went to (http or https, same host:port). */
function isOwnOrigin(origin: string, host: string): boolean {
  try {
    const o = new URL(origin);
    return (o.protocol === "http:" || o.protocol === "https:") && o.host === new URL(`http://${host}`).host;
  } catch {
    return false; // "null" (sandboxed frames, file: pages) or garbage
  }
}

function crossSite(what: string): AgentError {
  return new AgentError(
    "FORBIDDEN",
    `refused a request from a web page of another site (${what})`,
    "the API is not for web pages: call it with curl or archnet, which send no Origin header",
  );
}

/** An onRequest hook refusing unknown Host names (421) and other sites' requests (403). */
export function browserGuardHook(config: { listen: { host: string }; allowedHosts: readonly string[] }) {
  const names = new Set([...LOOPBACK_NAMES, config.listen.host.toLowerCase(), ...config.allowedHosts]);
  return async (request: FastifyRequest): Promise<void> => {
    const { host, origin } = request.headers;
    // HTTP/1.1 requires Host (Node answers 400 without it); only HTTP/1.0 clients omit it
    if (host !== undefined) {
      const name = hostName(host);
      const reached = request.socket.localAddress?.replace(/^::ffff:/, "");
      if (name === undefined || !(names.has(name) || name === reached)) {
        throw new AgentError(
          "MISDIRECTED_REQUEST",
          `this agent does not answer to the Host ${JSON.stringify(host.slice(0, 100))}`,
          "use its address (e.g. http://127.0.0.1:8001), or add the name to ARCHETYPE_AGENT_ALLOWED_HOSTS",
        );
      }
    }
    if (origin !== undefined && (host === undefined || !isOwnOrigin(origin, host))) {
      throw crossSite(`Origin ${origin.slice(0, 100)}`);
    }
    const site = request.headers["sec-fetch-site"]?.toString();
    if (site !== undefined && site !== "same-origin" && site !== "none") {
      throw crossSite(`Sec-Fetch-Site ${site.slice(0, 20)}`);
    }
  };
}
