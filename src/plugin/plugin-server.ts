import { chmodSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, type Stats } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import type { NetworkBackend } from "../backends/network-backend.js";
import { AgentError } from "../common/errors.js";
import type { Locks } from "../common/locks.js";
import type { Logger } from "../common/log.js";
import type { AgentConfig } from "../config/config.js";
import type { PluginInterfaceOperations } from "../model/operations.js";
import type { StateStore } from "../state/state-store.js";
import { type DockerEngine, DockerEngineClient } from "./docker-engine.js";
import { errorText, NetworkDriver } from "./network-driver.js";
import { errAnswer } from "./protocol.js";

export interface PluginDeps {
  config: AgentConfig;
  store: StateStore;
  backend: NetworkBackend;
  labs: PluginInterfaceOperations;
  locks: Locks;
  logger: Logger;
  /** The MTU of a network's interfaces without `-o mtu` (default: ARCHETYPE_AGENT_LOCAL_MTU). */
  defaultMtu?: number;
  /** Where to ask Docker which container holds an endpoint (default: /var/run/docker.sock). */
  docker?: DockerEngine;
}

const MAX_BODY = 1024 * 1024;
/** The media type of the plugin protocol (Docker does not check it; sent for good measure). */
const MEDIA_TYPE = "application/vnd.docker.plugins.v1+json";

/**
 * Serves the libnetwork remote driver protocol on a unix socket (root only). Docker finds the
 * driver by the socket's basename in /run/docker/plugins: `archetype-ovs.sock` is driver
 * `archetype-ovs`. Requests carry no Content-Type; bodies are parsed as JSON regardless (unlike
 * the HTTP API: only root reaches this socket, no web page can).
 */
export async function startPlugin(socketPath: string, deps: PluginDeps): Promise<{ close(): Promise<void> }> {
  const driver = new NetworkDriver({
    ...deps,
    docker: deps.docker ?? new DockerEngineClient(),
    defaultMtu: deps.defaultMtu ?? deps.config.localMtu,
  });
  // The socket is taken first (refusing early when another agent serves it); calls wait for recovery.
  let startRecovery = () => {};
  const recovered = new Promise<void>((resolve) => {
    startRecovery = resolve;
  }).then(() => driver.recover());
  const server = createServer((req, res) => {
    recovered.then(
      () => serve(driver, deps.logger, req, res),
      () => res.destroy(),
    );
  });
  let mine: Stats;
  try {
    mine = await listenPrivately(server, socketPath);
  } catch (e) {
    await driver.close(); // it watches Docker's events
    throw e;
  }
  const close = async () => {
    await driver.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    // only our own socket: never one another agent put there since
    const now = lstatOrUndefined(socketPath);
    if (now !== undefined && now.ino === mine.ino && now.dev === mine.dev)
      rmSync(socketPath, { force: true });
  };
  startRecovery();
  try {
    await recovered;
  } catch (e) {
    await close();
    throw e;
  }
  deps.logger.info({ socket: socketPath }, "Docker network plugin listening");
  return { close };
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** Whether something accepts connections on the unix socket at `path` (false: a stale file). */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", (e: NodeJS.ErrnoException) => {
      // EAGAIN: a listener with a full backlog
      if (e.code === "EAGAIN") resolve(true);
      else if (e.code === "ECONNREFUSED" || e.code === "ENOENT") resolve(false);
      else reject(e);
    });
  });
}

/**
 * Listens on `socketPath` with mode 0600 from the first moment: the socket is bound inside a
 * fresh 0700 directory beside it (no other user can reach it there), chmod-ed, then renamed into
 * place, which also replaces a stale socket atomically. (A umask around listen() would be
 * process-wide: files and directories libuv's threads create meanwhile would get it too.)
 * Refuses when another process answers on the path. Returns the socket's identity.
 */
async function listenPrivately(server: Server, socketPath: string): Promise<Stats> {
  const dir = dirname(socketPath);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const existing = lstatOrUndefined(socketPath);
  if (existing !== undefined && !existing.isSocket()) {
    throw new AgentError(
      "CONFLICT",
      `the plugin socket ${socketPath} exists and is not a socket`,
      "remove it, or set ARCHETYPE_AGENT_PLUGIN_SOCKET to another path",
    );
  }
  if (existing !== undefined && (await socketAnswers(socketPath))) {
    throw new AgentError(
      "CONFLICT",
      `another process (an agent?) serves the plugin socket ${socketPath}`,
      "stop it, or give this agent another ARCHETYPE_AGENT_PLUGIN_SOCKET (empty disables the plugin)",
    );
  }
  const privateDir = mkdtempSync(join(dir, ".archnet-"));
  try {
    const inside = join(privateDir, "s");
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(inside, () => {
        server.off("error", reject);
        resolve();
      });
    });
    chmodSync(inside, 0o600);
    renameSync(inside, socketPath);
    return lstatSync(socketPath);
  } catch (e) {
    server.close();
    throw e;
  } finally {
    rmSync(privateDir, { recursive: true, force: true });
  }
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
