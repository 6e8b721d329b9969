import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { dirname } from "node:path";
import type { NetworkBackend } from "../backends/network-backend.js";
import type { Locks } from "../common/locks.js";
import type { Logger } from "../common/log.js";
import type { AgentConfig } from "../config/config.js";
import type { LabService } from "../labs/lab-service.js";
import type { StateStore } from "../state/state-store.js";
import { type DockerEngine, DockerEngineClient } from "./docker-engine.js";
import { errorText, NetworkDriver } from "./network-driver.js";
import { errAnswer } from "./protocol.js";

export interface PluginDeps {
  config: AgentConfig;
  store: StateStore;
  backend: NetworkBackend;
  labs: LabService;
  locks: Locks;
  logger: Logger;
  /** Where to ask Docker which container holds an endpoint (default: /var/run/docker.sock). */
  docker?: DockerEngine;
}

const MAX_BODY = 1024 * 1024;
/** The media type of the plugin protocol (Docker does not check it; sent for good measure). */
const MEDIA_TYPE = "application/vnd.docker.plugins.v1+json";

/**
 * Serves the libnetwork remote driver protocol on a unix socket (root only). Docker finds the
 * driver by the socket's basename in /run/docker/plugins: `archetype-ovs.sock` is driver
 * `archetype-ovs`. Requests carry no Content-Type; bodies are parsed as JSON regardless.
 */
export async function startPlugin(socketPath: string, deps: PluginDeps): Promise<{ close(): Promise<void> }> {
  const driver = new NetworkDriver({ ...deps, docker: deps.docker ?? new DockerEngineClient() });
  await driver.recover();

  const server = createServer((req, res) => {
    void serve(driver, deps.logger, req, res);
  });
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  rmSync(socketPath, { force: true }); // a stale socket of an earlier run
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);
  deps.logger.info({ socket: socketPath }, "Docker network plugin listening");
  return {
    async close() {
      await driver.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      rmSync(socketPath, { force: true });
    },
  };
}

async function serve(
  driver: NetworkDriver,
  logger: Logger,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const reply = (status: number, body: unknown) => {
    res.writeHead(status, { "content-type": MEDIA_TYPE }).end(JSON.stringify(body));
  };
  const call = (req.url ?? "").replace(/^\//, "").split("?")[0] ?? "";
  if (req.method !== "POST") return reply(405, errAnswer(`${req.method} ${req.url}: only POST is served`));
  let text = "";
  try {
    text = await readBody(req);
  } catch (e) {
    return reply(413, errAnswer(errorText(e)));
  }
  let body: unknown = {};
  if (text.trim() !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      return reply(400, errAnswer(`${call}: the request body is not JSON`));
    }
  }
  if (typeof body !== "object" || body === null) body = {};
  try {
    const started = performance.now();
    const answer = await driver.handle(call, body);
    logger.debug({ call, ms: Math.round((performance.now() - started) * 10) / 10 }, "plugin call");
    reply(200, answer);
  } catch (e) {
    logger.warn({ call, err: errorText(e) }, "plugin call failed");
    // Docker reads `Err` from any answer; unknown calls are also a 404 for other clients.
    const unknownCall = call === "" || !/^(Plugin|NetworkDriver)\./.test(call);
    reply(unknownCall ? 404 : 200, errAnswer(errorText(e)));
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error(`request body larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
