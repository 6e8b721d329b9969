import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { dirname } from "node:path";
import { ipBatch, listLinks } from "../../src/link/index.js";
import { onCleanup } from "../lib/cleanup.js";

/**
 * The Docker floor: a libnetwork remote network driver that does no work at all. Every call is
 * answered at once; Join hands Docker a veth peer made before the timed `docker start` (one
 * `ip -batch` in the root namespace, where dockerd looks for `SrcName`). What a container start on
 * its networks costs is what Docker itself costs per remote-driver network on this machine.
 * Served like the agent's plugin (src/plugin/plugin-server.ts): Docker finds it by the socket's
 * basename in /run/docker/plugins, sends bodies without Content-Type, reads `Err` on failures.
 */
export interface NullDriver {
  /** The driver name (`docker network create -d NAME`). */
  name: string;
  socket: string;
  /** Creates `n` more veth pairs for Join to hand out (one `ip -batch`). */
  prepare(n: number): Promise<void>;
  /** Pairs made and not yet handed out. */
  spare(): number;
  /** Calls received, by name (e.g. `NetworkDriver.Join`). */
  calls: Map<string, number>;
  /** Stops serving, removes the socket and deletes every veth of this driver that is left. */
  close(): Promise<void>;
}

const MEDIA_TYPE = "application/vnd.docker.plugins.v1+json";

/** Starts the driver and registers its removal with bench/lib/cleanup.ts. */
export async function startNullDriver(
  name = `archnull${randomBytes(3).toString("hex")}`,
): Promise<NullDriver> {
  const socket = `/run/docker/plugins/${name}.sock`;
  // Interface names (<= 15 chars): nl<6 hex>h<i> on the host, nl<6 hex>p<i> handed to Docker.
  const prefix = `nl${randomBytes(3).toString("hex")}`;
  const pool: { host: string; peer: string }[] = [];
  /** EndpointID -> host end of the pair Join handed out for it. */
  const joined = new Map<string, string>();
  const calls = new Map<string, number>();
  let made = 0;

  const answer = (call: string, body: Record<string, unknown>): Promise<unknown> | unknown => {
    switch (call) {
      case "Plugin.Activate":
        return { Implements: ["NetworkDriver"] };
      case "NetworkDriver.GetCapabilities":
        return { Scope: "local", ConnectivityScope: "local" };
      case "NetworkDriver.CreateEndpoint":
        return { Interface: {} };
      case "NetworkDriver.EndpointOperInfo":
        return { Value: {} };
      case "NetworkDriver.Join": {
        const pair = pool.shift();
        if (!pair) return { Err: `null driver ${name}: no veth pair prepared (call prepare(n) first)` };
        joined.set(String(body.EndpointID), pair.host);
        return { InterfaceName: { SrcName: pair.peer, DstPrefix: "eth" }, DisableGatewayService: true };
      }
      case "NetworkDriver.DeleteEndpoint": {
        const host = joined.get(String(body.EndpointID));
        joined.delete(String(body.EndpointID));
        // The peer is back in the root namespace after Leave; deleting the host end takes both.
        return host === undefined
          ? {}
          : ipBatch([["link", "del", "dev", host]], { force: true, ignore: /Cannot find device/ }).then(
              () => ({}),
              (e: Error) => ({ Err: e.message }),
            );
      }
      case "NetworkDriver.CreateNetwork":
      case "NetworkDriver.DeleteNetwork":
      case "NetworkDriver.Leave":
      case "NetworkDriver.DiscoverNew":
      case "NetworkDriver.DiscoverDelete":
      case "NetworkDriver.ProgramExternalConnectivity":
      case "NetworkDriver.RevokeExternalConnectivity":
        return {};
      default:
        return undefined;
    }
  };

  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const call = (req.url ?? "").replace(/^\//, "").split("?")[0] ?? "";
    calls.set(call, (calls.get(call) ?? 0) + 1);
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
      if (typeof parsed === "object" && parsed !== null) body = parsed as Record<string, unknown>;
    } catch {
      // Docker always sends JSON; anything else is answered as if empty.
    }
    const out = await answer(call, body);
    if (out === undefined) {
      res.writeHead(404, { "content-type": MEDIA_TYPE }).end(JSON.stringify({ Err: `unknown call ${call}` }));
      return;
    }
    res.writeHead(200, { "content-type": MEDIA_TYPE }).end(JSON.stringify(out));
  };

  const server = createServer((req, res) => {
    serve(req, res).catch((e: Error) => {
      if (!res.headersSent) res.writeHead(500).end(JSON.stringify({ Err: e.message }));
    });
  });
  mkdirSync(dirname(socket), { recursive: true, mode: 0o755 });
  rmSync(socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socket, () => {
      server.off("error", reject);
      resolve();
    });
  });
  chmodSync(socket, 0o600);

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    rmSync(socket, { force: true });
    // Every link of ours still in the root namespace (spare pairs, ends Docker gave back).
    const left = (await listLinks()).map((l) => l.name).filter((n) => n.startsWith(prefix));
    const hosts = new Set(left.map((n) => `${prefix}h${n.slice(prefix.length + 1)}`));
    const lines = [...hosts].map((h) => ["link", "del", "dev", h]);
    // A peer whose host end is gone went with it; a host end whose peer is in a container too.
    await ipBatch(lines, { force: true, ignore: /Cannot find device/ });
    const still = (await listLinks()).map((l) => l.name).filter((n) => n.startsWith(prefix));
    await ipBatch(
      still.map((n) => ["link", "del", "dev", n]),
      { force: true, ignore: /Cannot find device/ },
    );
  };
  onCleanup(`null network driver ${name} (${socket}, veths ${prefix}*)`, close);

  return {
    name,
    socket,
    calls,
    spare: () => pool.length,
    async prepare(n: number) {
      const lines: string[][] = [];
      const pairs: { host: string; peer: string }[] = [];
      for (let i = 0; i < n; i++) {
        const k = made++;
        const pair = { host: `${prefix}h${k}`, peer: `${prefix}p${k}` };
        lines.push(["link", "add", pair.host, "up", "type", "veth", "peer", "name", pair.peer]);
        pairs.push(pair);
      }
      await ipBatch(lines);
      pool.push(...pairs);
    },
    close,
  };
}
