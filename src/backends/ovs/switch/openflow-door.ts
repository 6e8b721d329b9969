import { EventEmitter } from "node:events";
import { dirname, join } from "node:path";
import type { Logger } from "../../../common/log.js";
import { type FlowRemoved, OpenflowClient } from "../../../openflow/index.js";

const RETRY_MS = 200;

/**
 * The backend's one OpenFlow connection to its bridge (`<rundir>/<bridge>.mgmt`, or the
 * configured target), shared by the rooms that speak OpenFlow (wires, carrier's PORT_MOD).
 * The bridge may not exist yet when the agent starts (reconcile makes it), so a first connect
 * that fails is retried; after that the client reconnects by itself. `kick()` retries at once
 * (the bridge was just made again). Events: "connected" after each handshake (the switch may have
 * lost every flow), "flow-removed" (FlowRemoved).
 */
export class OpenflowDoor extends EventEmitter {
  private of: OpenflowClient | undefined;
  private connecting = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  /** `timeoutMs`: each request's hang guard, asked when it is sent (with its number of messages). */
  constructor(
    readonly target: string | undefined,
    private readonly logger: Logger,
    private readonly timeoutMs: (messages: number) => number,
  ) {
    super();
  }

  /** The connection when it is up; otherwise undefined (and a connect is under way). */
  current(): OpenflowClient | undefined {
    if (this.of?.connected) return this.of;
    this.kick();
    return undefined;
  }

  /** Connects now if there is no connection and no attempt in flight. */
  kick(): void {
    if (this.closed || this.target === undefined || this.connecting) return;
    if (this.of) {
      if (!this.of.connected) this.of.reconnectNow();
      return;
    }
    clearTimeout(this.retry);
    this.retry = undefined;
    this.connecting = true;
    OpenflowClient.connect({
      target: this.target,
      logger: this.logger,
      flowRemoved: true,
      callTimeoutMs: this.timeoutMs,
    })
      .then(
        (c) => {
          if (this.closed) return c.close();
          this.of = c; // reconnects by itself from now on (a bridge re-created, a switch restart)
          c.on("connected", () => this.emit("connected"));
          c.on("flow-removed", (f: FlowRemoved) => this.emit("flow-removed", f));
          this.emit("connected");
        },
        (e) => {
          this.logger.debug({ err: e, target: this.target }, "OpenFlow: not connected yet, retrying");
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.kick();
          }, RETRY_MS);
          this.retry.unref();
        },
      )
      .finally(() => {
        this.connecting = false;
      });
  }

  /** Resolves with the connection once it is up, or undefined after `timeoutMs`. */
  ready(timeoutMs: number): Promise<OpenflowClient | undefined> {
    const now = this.current();
    if (now || this.target === undefined || this.closed) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off("connected", done);
        resolve(this.of?.connected ? this.of : undefined);
      };
      const timer = setTimeout(done, timeoutMs);
      this.on("connected", done);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.of?.close();
  }
}
/** The bridge's management socket beside a local OVSDB socket (OVS keeps both in its rundir). */
export function mgmtTarget(ovsdbRemote: string, bridge: string): string | undefined {
  const rundir = ovsRundir(ovsdbRemote);
  return rundir === undefined ? undefined : `unix:${join(rundir, `${bridge}.mgmt`)}`;
}

/** OVS's run directory: where a local (`unix:`) OVSDB socket is; undefined for a `tcp:` remote. */
export function ovsRundir(ovsdbRemote: string): string | undefined {
  return ovsdbRemote.startsWith("unix:") ? dirname(ovsdbRemote.slice("unix:".length)) : undefined;
}
