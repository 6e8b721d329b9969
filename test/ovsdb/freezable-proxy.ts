import { createConnection, createServer, type Socket } from "node:net";

/**
 * A TCP forwarder on 127.0.0.1 whose open connections can be frozen: from then on no byte
 * passes either way and no close is passed on to the client, yet every socket stays open. That
 * is what a client sees when its peer vanishes (host down, NAT or firewall state lost): a
 * half-open connection that never fails by itself. Connections made after a freeze forward.
 */
export interface FreezableProxy {
  port: number;
  /** Requests the clients sent through the proxy (whole chunks, as text). */
  readonly forwarded: string[];
  /** Connections open now, frozen or not. */
  readonly open: number;
  freeze(): void;
  close(): Promise<void>;
}

export async function startFreezableProxy(target: { host: string; port: number }): Promise<FreezableProxy> {
  const pairs = new Set<{ client: Socket; upstream: Socket; frozen: boolean }>();
  const forwarded: string[] = [];
  const server = createServer((client) => {
    const upstream = createConnection(target);
    const pair = { client, upstream, frozen: false };
    pairs.add(pair);
    client.on("data", (d) => {
      if (pair.frozen) return;
      forwarded.push(d.toString());
      upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (!pair.frozen) client.write(d);
    });
    client.on("close", () => {
      pairs.delete(pair);
      upstream.destroy();
    });
    upstream.on("close", () => {
      if (!pair.frozen) client.destroy();
    });
    client.on("error", () => undefined);
    upstream.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("the proxy has no TCP address");
  return {
    port: addr.port,
    forwarded,
    get open() {
      return pairs.size;
    },
    freeze() {
      for (const p of pairs) p.frozen = true;
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
