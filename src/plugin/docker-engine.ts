import { request } from "node:http";

/** The default Docker Engine API socket. */
export const DOCKER_SOCKET = "/var/run/docker.sock";

/** What the plugin needs to know from Docker: which container holds an endpoint. */
export interface DockerEngine {
  /** The container name (without `/`) holding this endpoint of this network, if Docker lists it. */
  containerOfEndpoint(networkId: string, endpointId: string): Promise<string | undefined>;
}

interface NetworkInspect {
  Containers?: Record<string, { Name?: string; EndpointID?: string }>;
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
