import { type ClientRequest, request } from "node:http";

/** The default Docker Engine API socket. */
export const DOCKER_SOCKET = "/var/run/docker.sock";

/** What the plugin needs to know from Docker: which container holds an endpoint, and when one started. */
export interface DockerEngine {
  /** The container name (without `/`) holding this endpoint of this network, if Docker lists it. */
  containerOfEndpoint(networkId: string, endpointId: string): Promise<string | undefined>;
  /** A container's name and the endpoint ids of its networks (undefined: no such container). */
  endpointsOf?(containerId: string): Promise<{ name: string; endpoints: string[] } | undefined>;
  /**
   * Calls `listener` with the id of every container that is created or started
   * (Docker's event stream, reconnected when it breaks). Returns a function that stops watching.
   */
  watchContainers?(listener: (containerId: string, action: ContainerAction) => void): () => void;
  /** How many containers created and not started yet are on each network of `driver` (by id). */
  createdOn?(driver: string): Promise<Map<string, number>>;
}

export type ContainerAction = "create" | "start";
const ACTIONS: readonly string[] = ["create", "start"] satisfies ContainerAction[];

interface ContainerInspect {
  Name?: string;
  NetworkSettings?: { Networks?: Record<string, { EndpointID?: string }> };
}

/** Pause before reconnecting a broken event stream (dockerd restarting), doubled up to the max. */
const EVENTS_RETRY_MS = 1000;
const EVENTS_RETRY_MAX_MS = 30_000;

interface NetworkInspect {
  Id?: string;
  Name?: string;
  Containers?: Record<string, { Name?: string; EndpointID?: string }>;
}

interface ContainerSummary {
  NetworkSettings?: { Networks?: Record<string, unknown> };
}

/** A minimal Docker Engine API client over its unix socket (GET + JSON only). */
export class DockerEngineClient implements DockerEngine {
  constructor(
    private readonly socketPath = DOCKER_SOCKET,
    private readonly timeoutMs = 3000,
  ) {}

  async containerOfEndpoint(networkId: string, endpointId: string): Promise<string | undefined> {
    const net = await this.get<NetworkInspect>(`/networks/${encodeURIComponent(networkId)}`);
    const hit = Object.values(net?.Containers ?? {}).find((c) => c.EndpointID === endpointId);
    return hit?.Name?.replace(/^\//, "") || undefined;
  }

  async endpointsOf(containerId: string): Promise<{ name: string; endpoints: string[] } | undefined> {
    const c = await this.get<ContainerInspect>(`/containers/${encodeURIComponent(containerId)}/json`);
    if (!c?.Name) return undefined;
    const endpoints = Object.values(c.NetworkSettings?.Networks ?? {}).map((n) => n.EndpointID ?? "");
    return { name: c.Name.replace(/^\//, ""), endpoints: endpoints.filter((e) => e !== "") };
  }

  async createdOn(driver: string): Promise<Map<string, number>> {
    const nets = await this.get<NetworkInspect[]>(`/networks?filters=${filters({ driver: [driver] })}`);
    // A created container's networks carry no id yet, only their names.
    const idOf = new Map((nets ?? []).map((n) => [n.Name ?? "", n.Id ?? ""]));
    const out = new Map<string, number>();
    if (idOf.size === 0) return out;
    const query = filters({ status: ["created"], network: [...idOf.keys()] });
    for (const c of (await this.get<ContainerSummary[]>(`/containers/json?all=1&filters=${query}`)) ?? []) {
      for (const name of Object.keys(c.NetworkSettings?.Networks ?? {})) {
        const id = idOf.get(name);
        if (id) out.set(id, (out.get(id) ?? 0) + 1);
      }
    }
    return out;
  }

  watchContainers(listener: (containerId: string, action: ContainerAction) => void): () => void {
    let stopped = false;
    let current: ClientRequest | undefined;
    let delay = EVENTS_RETRY_MS;
    const wanted = filters({ type: ["container"], event: [...ACTIONS] });
    const connect = () => {
      if (stopped) return;
      let over = false;
      const retry = () => {
        if (over) return; // "end" and "error" may both come
        over = true;
        current = undefined;
        if (!stopped) setTimeout(connect, delay).unref();
        delay = Math.min(delay * 2, EVENTS_RETRY_MAX_MS);
      };
      const req = request({ socketPath: this.socketPath, path: `/events?filters=${wanted}` }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return retry();
        }
        delay = EVENTS_RETRY_MS;
        // One JSON object per line.
        let pending = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          pending += chunk;
          const lines = pending.split("\n");
          pending = lines.pop() ?? "";
          for (const line of lines) {
            const e = parseEvent(line);
            if (e) listener(e.id, e.action);
          }
        });
        res.on("error", () => undefined); // "close" follows
        res.on("close", retry);
      });
      req.on("error", retry);
      req.end();
      current = req;
    };
    connect();
    return () => {
      stopped = true;
      current?.destroy();
    };
  }

  /** GET path: the parsed body, undefined on 404; throws when Docker cannot be asked. */
  private get<T>(path: string): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: this.socketPath, path, method: "GET", timeout: this.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const body = Buffer.concat(chunks).toString("utf8");
            if (res.statusCode === 404) return resolve(undefined);
            if (res.statusCode !== 200) {
              return reject(new Error(`docker GET ${path}: HTTP ${res.statusCode} ${body.trim()}`));
            }
            try {
              resolve(JSON.parse(body) as T);
            } catch (e) {
              reject(e);
            }
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`docker GET ${path} timed out`)));
      req.on("error", reject);
      req.end();
    });
  }
}

function filters(f: Record<string, string[]>): string {
  return encodeURIComponent(JSON.stringify(f));
}

function parseEvent(line: string): { id: string; action: ContainerAction } | undefined {
  try {
    const e = JSON.parse(line) as {
      id?: unknown;
      Actor?: { ID?: unknown };
      Action?: unknown;
      status?: unknown;
    };
    const id = e.id ?? e.Actor?.ID;
    const action = e.Action ?? e.status;
    if (typeof id !== "string" || id === "" || typeof action !== "string" || !ACTIONS.includes(action))
      return undefined;
    return { id, action: action as ContainerAction };
  } catch {
    return undefined;
  }
}
