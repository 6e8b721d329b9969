import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { answerDeadline } from "../common/answer-deadline.js";
import { AgentError } from "../common/errors.js";
import type { Logger } from "../common/log.js";
import { protocolError, timeout, unreachable } from "./error.js";
import { DEFAULT_MAX_MESSAGE_BYTES, JsonStreamSplitter } from "./json-stream.js";

/**
 * JSON-RPC 1.0 over a stream socket, as RFC 7047 section 4 uses it: numbered requests with a
 * pending map and a per-call timeout, `echo` requests from the server answered, notifications
 * (`id: null`, e.g. `update2`) emitted as "notification". Any disconnect rejects every pending call.
 * With `probeIntervalMs`, a connection that received nothing for that long sends `echo` and is
 * closed as dead when no answer comes within as long again (like ovsdb-server's inactivity probe).
 *
 * Events: "notification" (method, params), "close" (error | undefined).
 */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

export interface RpcOptions {
  /** Used in error messages, e.g. "unix:/run/openvswitch/db.sock". */
  remote: string;
  callTimeoutMs?: number;
  maxMessageBytes?: number;
  logger?: Logger;
  /**
   * Inactivity probe: a TCP connection whose peer vanished (host down, NAT or firewall state
   * lost) stays open without ever failing a write; the probe notices. Unset or 0: none.
   */
  probeIntervalMs?: number;
}

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (e: AgentError) => void;
  timer: NodeJS.Timeout;
}

interface Message {
  id?: unknown;
  method?: unknown;
  params?: unknown;
  result?: unknown;
  error?: unknown;
}

export class RpcConnection extends EventEmitter {
  private readonly pending = new Map<number, Pending>();
  private readonly splitter: JsonStreamSplitter;
  private nextId = 1;
  private closed = false;
  private readonly socketClosed: Promise<void>;
  private closeError: AgentError | undefined;
  private readonly probe: NodeJS.Timeout | undefined;
  readonly remote: string;
  readonly callTimeoutMs: number;

  constructor(
    private readonly socket: Socket,
    private readonly opts: RpcOptions,
  ) {
    super();
    this.remote = opts.remote;
    this.callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.splitter = new JsonStreamSplitter(
      (v) => this.onMessage(v),
      (e) => this.fail(e),
      opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    );
    const probeMs = opts.probeIntervalMs ?? 0;
    if (probeMs > 0) this.probe = setTimeout(() => this.sendProbe(probeMs), probeMs).unref();
    socket.on("data", (chunk: Buffer) => {
      this.probe?.refresh();
      this.splitter.push(chunk);
    });
    socket.on("error", (e) => this.fail(unreachable(this.remote, e.message, e)));
    this.socketClosed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("close", () => this.finish());
    socket.on("end", () => socket.end());
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  call(method: string, params: unknown[], timeoutMs = this.callTimeoutMs): Promise<unknown> {
    if (this.closed) {
      return Promise.reject(this.closeError ?? unreachable(this.remote, "connection is closed"));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = answerDeadline(timeoutMs, () => {
        if (!this.pending.delete(id)) return;
        reject(
          timeout(
            `OVSDB ${method} to ${this.remote}`,
            timeoutMs,
            method === "transact"
              ? "the transaction may still have been committed: re-read the state before retrying"
              : "ovsdb-server may be overloaded or stuck",
          ),
        );
      });
      this.pending.set(id, { method, resolve, reject, timer });
      this.send({ id, method, params });
    });
  }

  /** Closes the connection; pending calls are rejected with OVS_UNREACHABLE. Resolves once the socket is closed. */
  close(reason = "connection closed by client"): Promise<void> {
    if (!this.closed) {
      this.closeError = unreachable(this.remote, reason);
      this.socket.destroy();
      this.finish();
    }
    return this.socketClosed;
  }

  private send(message: object): void {
    this.socket.write(JSON.stringify(message));
  }

  private onMessage(value: unknown): void {
    if (this.closed) return;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.fail(protocolError(`unexpected JSON-RPC message from ${this.remote}: not an object`));
      return;
    }
    const m = value as Message;
    if (typeof m.method === "string") {
      const params = Array.isArray(m.params) ? m.params : [];
      if (m.id === null || m.id === undefined) {
        this.emit("notification", m.method, params);
      } else if (m.method === "echo") {
        this.send({ id: m.id, result: params, error: null });
      } else {
        this.opts.logger?.warn({ method: m.method }, "ovsdb: unknown request from server");
        this.send({ id: m.id, result: null, error: { error: "unknown method", details: m.method } });
      }
      return;
    }
    if (typeof m.id !== "number") {
      this.opts.logger?.debug({ id: m.id }, "ovsdb: reply with unknown id ignored");
      return;
    }
    const p = this.pending.get(m.id);
    if (p === undefined) return; // its caller already timed out
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error !== null && m.error !== undefined) {
      const detail = typeof m.error === "string" ? m.error : JSON.stringify(m.error);
      p.reject(
        new AgentError("OVSDB_ERROR", `OVSDB ${p.method} failed: ${detail}`, "check the request parameters"),
      );
    } else {
      p.resolve(m.result);
    }
  }

  /** Anything received re-arms the probe (refresh), the answer included. */
  private sendProbe(ms: number): void {
    this.call("echo", ["archetype-network-probe"], ms).catch((e: AgentError) => {
      if (e.code !== "OVSDB_TIMEOUT") return; // closed meanwhile
      this.fail(
        unreachable(
          this.remote,
          `no answer to an inactivity probe within ${ms} ms after ${ms} ms without traffic: the connection is dead`,
        ),
      );
    });
  }

  private fail(e: AgentError): void {
    if (this.closed) return;
    this.opts.logger?.warn({ err: e.message, remote: this.remote }, "ovsdb: connection failed");
    this.closeError = e;
    this.socket.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.probe);
    const e = this.closeError ?? unreachable(this.remote, "connection closed by ovsdb-server");
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
    this.emit("close", this.closeError);
  }
}
