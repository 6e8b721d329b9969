import { request } from "node:http";
import { basename } from "node:path";
import { run } from "../../src/common/exec.js";
import { uniqueName } from "./netns.js";

/**
 * Docker for plugin tests: the real dockerd of scripts/docker-setup.sh, the `busybox:local`
 * image, and a tracker that removes every container and network a test made (call `cleanup()`
 * from `after`, it also runs on failure).
 */
export const IMAGE = "busybox:local";
/** Containers on plugin networks run with the wrapper that names their interfaces. */
export const RUNTIME = ["--runtime", "archetype"];

export async function docker(args: string[], timeoutMs = 120_000): Promise<string> {
  return (await run("docker", args, { timeoutMs })).stdout.trim();
}

/** Why Docker cannot be used here, or undefined when it can (dockerd up, image and runtime present). */
export async function dockerUnavailable(): Promise<string | undefined> {
  try {
    const runtimes = await docker(["info", "--format", "{{json .Runtimes}}"], 10_000);
    if (!runtimes.includes('"archetype"'))
      return "dockerd has no runtime archetype (run scripts/docker-setup.sh)";
    await docker(["image", "inspect", IMAGE], 10_000);
    return undefined;
  } catch (e) {
    return `docker is not usable (run scripts/docker-setup.sh): ${(e as Error).message}`;
  }
}

/** A unique plugin socket in Docker's discovery directory; the driver name is its basename. */
export function pluginSocket(): { socket: string; driver: string } {
  const socket = `/run/docker/plugins/${uniqueName("archovs")}.sock`;
  return { socket, driver: basename(socket, ".sock") };
}

/** Whether `container` has an answer to one ping of `ip` within a second. */
export function containerPings(container: string, ip: string): Promise<boolean> {
  return docker(["exec", container, "ping", "-c", "1", "-W", "1", ip]).then(
    () => true,
    () => false,
  );
}

/**
 * Starts a lab container on a plugin network, allowed to configure its own interfaces
 * (NET_ADMIN), running `cmd` (default: it sleeps).
 */
export function runLabContainer(
  name: string,
  network: string,
  cmd: string[] = ["sleep", "3600"],
): Promise<string> {
  return docker([
    "run",
    "-d",
    ...RUNTIME,
    "--cap-add",
    "NET_ADMIN",
    "--network",
    network,
    "--name",
    name,
    IMAGE,
    ...cmd,
  ]);
}

export class DockerResources {
  private readonly containers = new Set<string>();
  private readonly networks = new Set<string>();

  container(name: string): string {
    this.containers.add(name);
    return name;
  }

  network(name: string): string {
    this.networks.add(name);
    return name;
  }

  async createNetwork(driver: string, name: string, opts: Record<string, string>): Promise<string> {
    this.network(name);
    const o = Object.entries(opts).flatMap(([k, v]) => ["-o", `${k}=${v}`]);
    return docker(["network", "create", "-d", driver, "--ipam-driver", "null", ...o, name]);
  }

  async removeContainer(name: string): Promise<void> {
    await docker(["rm", "-f", name]);
    this.containers.delete(name);
  }

  async removeNetwork(name: string): Promise<void> {
    await docker(["network", "rm", name]);
    this.networks.delete(name);
  }

  async cleanup(): Promise<void> {
    if (this.containers.size > 0) await docker(["rm", "-f", ...this.containers]).catch(() => undefined);
    this.containers.clear();
    for (const n of this.networks) await docker(["network", "rm", n]).catch(() => undefined);
    this.networks.clear();
  }
}

/** One raw call of the remote driver protocol, as Docker makes it (POST, no Content-Type). */
export function pluginCall(
  socket: string,
  call: string,
  body: string,
): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path: `/${call}`, method: "POST" }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}
