import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** An in-process unix-socket peer for the protocol bits a real ovsdb-server will not misbehave in. */
export interface FakeServer {
  remote: string;
  path: string;
  /** Resolves with the next accepted connection. */
  nextConnection(): Promise<Socket>;
  /** Everything received on a socket so far, as text. */
  received(socket: Socket): string;
  close(): Promise<void>;
}

export async function startFakeServer(): Promise<FakeServer> {
  const dir = await mkdtemp(join(tmpdir(), "ovsf-"));
  const path = join(dir, "fake.sock");
  const sockets = new Set<Socket>();
  const inbox = new Map<Socket, string>();
  const waiting: ((s: Socket) => void)[] = [];
  const accepted: Socket[] = [];
  const server: Server = createServer((s) => {
    sockets.add(s);
    inbox.set(s, "");
    s.on("data", (d) => inbox.set(s, inbox.get(s) + d.toString()));
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    const w = waiting.shift();
    if (w) w(s);
    else accepted.push(s);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    remote: `unix:${path}`,
    path,
    nextConnection: () =>
      new Promise((resolve) => {
        const s = accepted.shift();
        if (s) resolve(s);
        else waiting.push(resolve);
      }),
    received: (s) => inbox.get(s) ?? "",
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function until(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
