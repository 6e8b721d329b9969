import { EventEmitter } from "node:events";
import { createConnection, type Socket } from "node:net";
import { answerDeadline } from "../common/answer-deadline.js";
import { AgentError } from "../common/errors.js";
import { type Logger, silentLogger } from "../common/log.js";
import { parseRemote, type RemoteKind } from "../common/remote.js";
import { decodeError, OpenflowRequestError, type SwitchError, timedOut, unreachable } from "./error.js";
import { encodeFlowMod, type FlowMod } from "./flow-mod.js";
import { decodeFlowRemoved, encodeFlowRemovedSubscription } from "./flow-removed.js";
import {
  decodeFlowStatsReply,
  encodeFlowStatsRequest,
  type FlowFilter,
  type FlowStats,
  OFPMPF_REPLY_MORE,
} from "./flow-stats.js";
import { FrameStream } from "./frame-stream.js";
import { helloBody, negotiate } from "./hello.js";
import { encodeMessage, type Message, MessageType } from "./message.js";
import { encodePortMod, type PortMod } from "./port-mod.js";

export const OPENFLOW_TARGET: RemoteKind = {
  what: "OpenFlow target",
  examples: "unix:/var/run/openvswitch/BRIDGE.mgmt or tcp:HOST:6653",
};

export interface OpenflowClientOptions {
  /** `unix:/path` (a bridge's `<rundir>/<bridge>.mgmt`) or `tcp:host:port` (a switch's `ptcp:` listener). */
  target: string;
  logger?: Logger;
  /**
   * Timeout of each request (a batch with its barrier, a dump, an echo). Default 10 s. A function
   * is asked at each request, with the number of messages sent (a batch's changes and its
   * barrier): a switch answers later the more it is sent and the more ports it polls.
   */
  callTimeoutMs?: number | ((messages: number) => number);
  /** Timeout of connecting and the HELLO exchange. Default 5 s. */
  connectTimeoutMs?: number;
  /** Reconnect with back-off (100 ms .. 5 s) when the connection drops. Default true. */
  reconnect?: boolean;
  /**
   * After this long without a byte from the switch, send an echo; no answer within as long again
   * means the connection is dead. Default 5 s for `tcp:`, off for `unix:` (the kernel closes a
   * local socket whose peer is gone). 0 turns it off.
   */
  probeMs?: number;
  /**
   * Ask the switch for FLOW_REMOVED of flows deleted by anyone (the agent's flows carry
   * `sendFlowRemoved`), emitted as "flow-removed": how the owner hears of `del-flows` by hand.
   */
  flowRemoved?: boolean;
}

interface Pending {
  what: string;
  resolve: (m: Message) => void;
  reject: (e: AgentError) => void;
  timer: NodeJS.Timeout;
  /** Multipart replies: parts so far. */
  parts?: Message[];
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
const OFPET_HELLO_FAILED = 0;

/**
 * An OpenFlow 1.3 connection to one switch: HELLO and version negotiation, FLOW_MODs (and PORT_MODs)
 * sent as a batch closed by a BARRIER (resolves once the switch has them all, or rejects naming each
 * message it refused), multipart flow statistics, ECHO both ways, timeouts and reconnect.
 *
 * OpenFlow 1.3 because it is the oldest version with 64-bit cookie masks on every request and
 * OXM matches, which later kinds of flows need; every OVS since 2.x speaks it on `<bridge>.mgmt`.
 *
 * Events: "connected" (after each handshake: flows may be gone if the switch restarted, so the
 * owner reinstalls what it needs), "disconnected" (AgentError), "echo" (the switch probed us),
 * "flow-removed" (FlowRemoved; only with the `flowRemoved` option).
 */
export class OpenflowClient extends EventEmitter {
  readonly target: string;
  private readonly logger: Logger;
  private readonly callTimeoutMs: (messages: number) => number;
  private readonly connectTimeoutMs: number;
  private readonly reconnectEnabled: boolean;
  private readonly probeMs: number;
  private readonly flowRemoved: boolean;
  private socket: Socket | undefined;
  private ready = false;
  private closed = false;
  private nextXid = 1;
  private readonly pending = new Map<number, Pending>();
  /** Errors the switch sent for messages of a batch, by xid, until the batch's barrier reply. */
  private readonly batchErrors = new Map<number, SwitchError>();
  private backoffMs = MIN_BACKOFF_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private lastHeard = 0;

  private constructor(opts: OpenflowClientOptions) {
    super();
    this.target = opts.target;
    this.logger = opts.logger ?? silentLogger();
    const timeout = opts.callTimeoutMs ?? 10_000;
    this.callTimeoutMs = typeof timeout === "number" ? () => timeout : timeout;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
    this.reconnectEnabled = opts.reconnect ?? true;
    this.probeMs = opts.probeMs ?? (opts.target.startsWith("tcp:") ? 5_000 : 0);
    this.flowRemoved = opts.flowRemoved ?? false;
  }

  /** Connects and negotiates; rejects when the first attempt fails (reconnects only after that). */
  static async connect(opts: OpenflowClientOptions): Promise<OpenflowClient> {
    parseRemote(opts.target, OPENFLOW_TARGET); // INVALID_CONFIG before any I/O
    const c = new OpenflowClient(opts);
    await c.open();
    return c;
  }

  get connected(): boolean {
    return this.ready;
  }

  /**
   * Sends the flow changes in order, then a barrier: resolves once the switch has processed every
   * one; rejects with OpenflowRequestError naming each message it refused (the others applied).
   */
  apply(mods: readonly FlowMod[], opts: { timeoutMs?: number } = {}): Promise<void> {
    return this.batch(
      mods.map((m) => (xid: number) => encodeFlowMod(m, xid)),
      opts.timeoutMs,
    );
  }

  /** Sets ports administratively up or down (PORT_MOD), as a batch closed by a barrier like `apply`. */
  modPorts(mods: readonly PortMod[], opts: { timeoutMs?: number } = {}): Promise<void> {
    return this.batch(
      mods.map((m) => (xid: number) => encodePortMod(m, xid)),
      opts.timeoutMs,
    );
  }

  private async batch(encoders: readonly ((xid: number) => Buffer)[], timeoutMs?: number): Promise<void> {
    if (encoders.length === 0) return;
    const xids = encoders.map(() => this.xid());
    const frames = encoders.map((encode, i) => encode(xids[i]!));
    for (const x of xids) this.batchErrors.delete(x);
    const barrierXid = this.xid();
    const sent = this.request(
      "barrier",
      barrierXid,
      Buffer.concat([...frames, encodeMessage(MessageType.BARRIER_REQUEST, barrierXid)]),
      timeoutMs ?? this.callTimeoutMs(frames.length + 1),
    );
    const outcome = await sent.then(
      () => undefined,
      (e: AgentError) => e,
    );
    const failures = xids.flatMap((x, index) => {
      const error = this.batchErrors.get(x);
      this.batchErrors.delete(x);
      return error ? [{ index, error }] : [];
    });
    if (failures.length > 0) throw new OpenflowRequestError(this.target, failures);
    if (outcome) throw outcome;
  }

  /** The switch's flows that pass the filter, with their counters (all parts of the reply). */
  async flows(filter: FlowFilter = {}, opts: { timeoutMs?: number } = {}): Promise<FlowStats[]> {
    const xid = this.xid();
    const reply = await this.request(
      "flow stats",
      xid,
      encodeFlowStatsRequest(filter, xid),
      opts.timeoutMs,
      true,
    );
    return (reply.parts ?? [reply.last]).flatMap((m) => decodeFlowStatsReply(m.body).flows);
  }

  /** One echo round trip; resolves with its duration in ms. */
  async echo(opts: { timeoutMs?: number } = {}): Promise<number> {
    const started = performance.now();
    const xid = this.xid();
    await this.request("echo", xid, encodeMessage(MessageType.ECHO_REQUEST, xid), opts.timeoutMs);
    return performance.now() - started;
  }

  /** Reconnects at once instead of after the back-off (the owner knows the switch is back). */
  reconnectNow(): void {
    if (this.closed || this.ready || this.reconnectTimer === undefined) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.backoffMs = MIN_BACKOFF_MS;
    this.open().catch(() => {
      if (!this.closed && this.reconnectTimer === undefined) this.scheduleReconnect();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.drop(unreachable(this.target, "the client was closed"));
  }

  private xid(): number {
    const x = this.nextXid;
    this.nextXid = this.nextXid >= 0xffffffff ? 1 : this.nextXid + 1;
    return x;
  }

  /** Writes `bytes` and waits for the reply with `xid` (all multipart parts when `multipart`). */
  private request(
    what: string,
    xid: number,
    bytes: Buffer,
    timeoutMs = this.callTimeoutMs(1),
    multipart = false,
  ): Promise<{ last: Message; parts?: Message[] }> {
    const socket = this.socket;
    if (!this.ready || !socket) return Promise.reject(unreachable(this.target, "not connected"));
    return new Promise((resolve, reject) => {
      const timer = answerDeadline(timeoutMs, () => {
        if (this.pending.delete(xid)) reject(timedOut(this.target, what, timeoutMs));
      });
      const p: Pending = {
        what,
        timer,
        reject,
        resolve: (last) => resolve({ last, parts: p.parts }),
        parts: multipart ? [] : undefined,
      };
      this.pending.set(xid, p);
      socket.write(bytes);
    });
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      // handshake -> ready -> gone; a socket's late events after it is gone change nothing.
      let phase: "handshake" | "ready" | "gone" = "handshake";
      const socket = createConnection(parseRemote(this.target, OPENFLOW_TARGET));
      this.socket = socket;
      const timer = setTimeout(
        () => failHandshake(timedOut(this.target, "connect and HELLO", this.connectTimeoutMs)),
        this.connectTimeoutMs,
      );
      const failHandshake = (e: AgentError) => {
        if (phase !== "handshake") return;
        phase = "gone";
        clearTimeout(timer);
        socket.destroy();
        if (this.socket === socket) this.socket = undefined;
        reject(e);
      };
      const lost = (e: AgentError) => {
        if (phase === "handshake") return failHandshake(e);
        if (phase !== "ready") return;
        phase = "gone";
        this.drop(e);
      };
      const onHello = (m: Message) => {
        if (negotiate(m.version, m.body) === undefined) {
          socket.write(encodeMessage(MessageType.ERROR, m.xid, helloFailedBody()));
          return failHandshake(
            new AgentError(
              "OPENFLOW_PROTOCOL",
              `the switch at ${this.target} does not speak OpenFlow 1.3 (it offered version ${m.version})`,
              "allow it on the bridge: ovs-vsctl set bridge BRIDGE protocols=OpenFlow10,OpenFlow13",
            ),
          );
        }
        phase = "ready";
        clearTimeout(timer);
        this.ready = true;
        this.backoffMs = MIN_BACKOFF_MS;
        this.armProbe();
        // Written before anything the owner sends on "connected": the switch applies it first.
        if (this.flowRemoved)
          this.batch(encodeFlowRemovedSubscription()).catch((e: unknown) =>
            this.logger.warn(
              { err: e, target: this.target },
              "OpenFlow: the switch refused to report removed flows",
            ),
          );
        resolve();
        this.emit("connected");
      };
      const frames = new FrameStream((m) => {
        this.lastHeard = performance.now();
        if (phase === "ready") return this.onMessage(m);
        if (phase !== "handshake") return;
        // Before the handshake only the switch's HELLO (or an ERROR) is expected.
        if (m.type === MessageType.HELLO) return onHello(m);
        if (m.type === MessageType.ERROR)
          failHandshake(
            unreachable(this.target, `the switch refused the HELLO (${decodeError(m.body).name})`),
          );
      }, lost);
      socket.on("connect", () => socket.write(encodeMessage(MessageType.HELLO, this.xid(), helloBody())));
      socket.on("data", (chunk: Buffer) => frames.push(chunk));
      socket.on("error", (e) => lost(unreachable(this.target, e.message, e)));
      socket.on("close", () => lost(unreachable(this.target, "the switch closed the connection")));
    });
  }

  private onMessage(m: Message): void {
    if (m.type === MessageType.ECHO_REQUEST) {
      this.socket?.write(encodeMessage(MessageType.ECHO_REPLY, m.xid, m.body));
      this.emit("echo");
      return;
    }
    const p = this.pending.get(m.xid);
    if (m.type === MessageType.ERROR) {
      const error = decodeError(m.body);
      if (p)
        this.settle(
          m.xid,
          p,
          new AgentError("OPENFLOW_ERROR", `the switch refused ${p.what}: ${error.name}`),
        );
      // An error for a message of a batch: reported when the batch's barrier reply arrives.
      else this.batchErrors.set(m.xid, error);
      return;
    }
    if (m.type === MessageType.FLOW_REMOVED) {
      this.emit("flow-removed", decodeFlowRemoved(m.body));
      return;
    }
    if (!p) return; // other asynchronous messages (port status) are not asked for
    if (m.type === MessageType.MULTIPART_REPLY) {
      p.parts?.push(m);
      if ((m.body.readUInt16BE(2) & OFPMPF_REPLY_MORE) !== 0) return;
    }
    if (
      m.type === MessageType.MULTIPART_REPLY ||
      m.type === MessageType.BARRIER_REPLY ||
      m.type === MessageType.ECHO_REPLY
    )
      this.settle(m.xid, p, m);
  }

  private settle(xid: number, p: Pending, outcome: Message | AgentError): void {
    clearTimeout(p.timer);
    this.pending.delete(xid);
    if (outcome instanceof AgentError) p.reject(outcome);
    else p.resolve(outcome);
  }

  /** Idle connection: echo, and drop it if the switch stays silent as long again. */
  private armProbe(): void {
    if (this.probeMs <= 0) return;
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      if (!this.ready) return;
      const idle = performance.now() - this.lastHeard;
      if (idle >= 2 * this.probeMs)
        return this.drop(unreachable(this.target, `no answer for ${Math.round(idle)} ms (inactivity probe)`));
      if (idle >= this.probeMs) this.socket?.write(encodeMessage(MessageType.ECHO_REQUEST, this.xid()));
      this.armProbe();
    }, this.probeMs / 2);
    this.probeTimer.unref();
  }

  /** The connection is gone: fail what waits on it and reconnect unless closed. */
  private drop(e: AgentError): void {
    const wasReady = this.ready;
    this.ready = false;
    clearTimeout(this.probeTimer);
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
    for (const [xid, p] of this.pending) this.settle(xid, p, e);
    this.batchErrors.clear();
    if (wasReady) {
      this.logger.warn({ target: this.target, err: e.message }, "OpenFlow connection lost");
      this.emit("disconnected", e);
    }
    if (!this.closed && this.reconnectEnabled && this.reconnectTimer === undefined) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closed) return;
      this.open().catch(() => {
        if (!this.closed && this.reconnectTimer === undefined) this.scheduleReconnect();
      });
    }, delay);
  }
}

/** ERROR body for a HELLO without a common version (OFPHFC_INCOMPATIBLE). */
function helloFailedBody(): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(OFPET_HELLO_FAILED, 0);
  return b;
}
