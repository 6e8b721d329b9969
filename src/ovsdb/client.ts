import { EventEmitter } from "node:events";
import { createConnection, type Socket } from "node:net";
import { AgentError, toAgentError } from "../common/errors.js";
import { type Logger, silentLogger } from "../common/log.js";
import { parseRemote } from "../common/remote.js";
import { type CacheChange, type Row, TableCache, type TableUpdates2 } from "./cache.js";
import { DecodedView } from "./decoded-view.js";
import { type OperationError, OvsdbTransactError, protocolError, timeout, unreachable } from "./error.js";
import {
  type BridgeRow,
  decodeBridge,
  decodeInterface,
  decodeOpenVswitch,
  decodePort,
  type InterfaceRow,
  MONITORED_COLUMNS,
  type MonitoredTable,
  type OpenVswitchRow,
  type PortRow,
} from "./models.js";
import { add } from "./mutation.js";
import { mutate, type Operation, type OperationResult, select } from "./operation.js";
import { DEFAULT_CALL_TIMEOUT_MS, RpcConnection } from "./rpc.js";
import type { DatabaseSchema } from "./schema.js";

/**
 * The pair of counters by which a database tells that its consumer applied a transaction: the
 * client bumps `next` in the transaction and waits until `cur` (written by the consumer) reaches it.
 */
export interface AppliedCounter {
  /** The table of one row holding both counters. */
  table: string;
  next: string;
  cur: string;
  /** Who applies, for messages ("ovs-vswitchd"). */
  applier: string;
  /** How to create the table's row when it is missing. */
  initHint: string;
}

/** The counters of the databases the agent knows: Open_vSwitch, and OVN's northbound database. */
export const APPLIED_COUNTERS: Readonly<Record<string, AppliedCounter>> = {
  Open_vSwitch: {
    table: "Open_vSwitch",
    next: "next_cfg",
    cur: "cur_cfg",
    applier: "ovs-vswitchd",
    initHint: "initialise the database with `ovs-vsctl init`",
  },
  // ovn-northd sets hv_cfg to the lowest nb_cfg every chassis' ovn-controller reports applied.
  OVN_Northbound: {
    table: "NB_Global",
    next: "nb_cfg",
    cur: "hv_cfg",
    applier: "every hypervisor's ovn-controller",
    initHint: "initialise the database with `ovn-nbctl init`",
  },
};

export interface OvsdbClientOptions {
  /** `unix:/path` or `tcp:host:port`. */
  remote: string;
  /** Default Open_vSwitch. */
  database?: string;
  /**
   * The tables and columns to monitor (columns the server's schema lacks are left out). Default:
   * for Open_vSwitch the tables behind the typed views (MONITORED_COLUMNS); required for others.
   */
  monitor?: Readonly<Record<string, readonly string[]>>;
  /**
   * What `waitApplied` waits on; default APPLIED_COUNTERS[database]; null: none (then
   * `waitApplied` is refused). Its table and columns are monitored too.
   */
  applied?: AppliedCounter | null;
  logger?: Logger;
  /** Timeout of each RPC call (and of `transact` with `waitApplied`, as a whole). Default 10 s. */
  callTimeoutMs?: number;
  /** Reconnect with exponential back-off (100 ms .. 5 s) when the connection drops. Default true. */
  reconnect?: boolean;
  /** Timeout of establishing the socket connection. Default 5 s. */
  connectTimeoutMs?: number;
  /** Largest JSON message accepted from the server. Default 64 MiB. */
  maxMessageBytes?: number;
  /**
   * `tcp:` remotes only: after this long without traffic the client sends `echo`, and treats no
   * answer within as long again as a dead connection (then reconnects). Default 5 s; 0 disables.
   * `unix:` remotes need none: the kernel closes a local socket whose peer is gone.
   */
  probeIntervalMs?: number;
}

export interface TransactOptions {
  /**
   * Also resolve only once the database's consumer has applied the transaction (see
   * AppliedCounter: for Open_vSwitch, ovs-vswitchd's `cur_cfg` reached `next_cfg`).
   */
  waitApplied?: boolean;
  /** Overrides `callTimeoutMs` for this call (including the wait for ovs-vswitchd). */
  timeoutMs?: number;
}

interface AppliedWaiter {
  target: number;
  resolve: () => void;
  reject: (e: AgentError) => void;
  timer: NodeJS.Timeout;
}

const MONITOR_ID = "archetype-network";
/** How long the echo after an applied-wait's timer may take before the wait fails. */
const LATE_ECHO_MS = 2_000;
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_PROBE_INTERVAL_MS = 5_000;

/**
 * The OVSDB client: one connection to ovsdb-server, a `monitor_cond` on Open_vSwitch, Bridge,
 * Port and Interface feeding a cache, and `transact`.
 *
 * Events:
 * - "connected": the cache was (re)loaded from scratch; after a reconnect, listeners should
 *   resynchronise from the cache (changes while disconnected are not replayed as "change" events);
 * - "disconnected": the connection dropped (the cache keeps the last known state until reconnect);
 * - "change" (CacheChange): a row was inserted, modified or deleted;
 * - "applied" (curCfg: number): ovs-vswitchd applied configuration up to `cur_cfg`.
 */
export class OvsdbClient extends EventEmitter {
  readonly remote: string;
  readonly database: string;
  /** What `waitApplied` waits on, if anything. */
  readonly counter: AppliedCounter | undefined;
  private readonly monitorColumns: Readonly<Record<string, readonly string[]>>;
  private readonly logger: Logger;
  private readonly callTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly reconnectEnabled: boolean;
  private readonly maxMessageBytes: number | undefined;
  private readonly probeIntervalMs: number;

  private rpc: RpcConnection | undefined;
  private dialing: Socket | undefined;
  private ready = false;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backoffMs = MIN_BACKOFF_MS;
  private dbSchema: DatabaseSchema | undefined;
  private cache: TableCache | undefined;
  private curCfg = 0;
  private readonly waiters = new Set<AppliedWaiter>();
  private readonly views = {
    Open_vSwitch: new DecodedView<OpenVswitchRow>(decodeOpenVswitch),
    Bridge: new DecodedView<BridgeRow>(decodeBridge),
    Port: new DecodedView<PortRow>(decodePort),
    Interface: new DecodedView<InterfaceRow>(decodeInterface),
  };

  private constructor(opts: OvsdbClientOptions) {
    super();
    this.remote = opts.remote;
    this.database = opts.database ?? "Open_vSwitch";
    const counter = opts.applied === undefined ? APPLIED_COUNTERS[this.database] : opts.applied;
    this.counter = counter ?? undefined;
    const monitor: Record<string, readonly string[]> = {
      ...(opts.monitor ?? (this.database === "Open_vSwitch" ? MONITORED_COLUMNS : {})),
    };
    if (counter) {
      const have = monitor[counter.table] ?? [];
      monitor[counter.table] = [...new Set([...have, counter.next, counter.cur])];
    }
    if (Object.keys(monitor).length === 0) {
      throw new AgentError(
        "INVALID_CONFIG",
        `an OVSDB client of database ${this.database} needs the tables to monitor`,
      );
    }
    this.monitorColumns = monitor;
    this.logger = opts.logger ?? silentLogger();
    this.callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.reconnectEnabled = opts.reconnect ?? true;
    this.maxMessageBytes = opts.maxMessageBytes;
    this.probeIntervalMs = this.remote.startsWith("tcp:")
      ? (opts.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS)
      : 0;
  }

  /** Connects, fetches the schema and loads the cache. Rejects with OVS_UNREACHABLE if that fails. */
  static async connect(opts: OvsdbClientOptions): Promise<OvsdbClient> {
    parseRemote(opts.remote); // INVALID_CONFIG before any I/O
    const client = new OvsdbClient(opts);
    try {
      await client.open();
    } catch (e) {
      await client.close();
      throw e;
    }
    return client;
  }

  get isConnected(): boolean {
    return this.ready && this.rpc?.isOpen === true;
  }

  /** The schema fetched on the last connect. */
  get schema(): DatabaseSchema | undefined {
    return this.dbSchema;
  }

  /**
   * The last applied counter seen (`Open_vSwitch.cur_cfg`: the configuration ovs-vswitchd has
   * applied; `NB_Global.hv_cfg` for OVN's northbound database).
   */
  get appliedCfg(): number {
    return this.curCfg;
  }

  // ---- reads (from the cache, no I/O) ----

  openVswitch(): OpenVswitchRow | undefined {
    return this.views.Open_vSwitch.all()[0];
  }
  bridges(): BridgeRow[] {
    return this.views.Bridge.all();
  }
  ports(): PortRow[] {
    return this.views.Port.all();
  }
  /** How many ports the cache holds (no rows decoded or copied). */
  portCount(): number {
    return this.views.Port.size;
  }
  interfaces(): InterfaceRow[] {
    return this.views.Interface.all();
  }
  bridgeByName(name: string): BridgeRow | undefined {
    return this.views.Bridge.getByName(name);
  }
  portByName(name: string): PortRow | undefined {
    return this.views.Port.getByName(name);
  }
  interfaceByName(name: string): InterfaceRow | undefined {
    return this.views.Interface.getByName(name);
  }
  bridgeByUuid(uuid: string): BridgeRow | undefined {
    return this.views.Bridge.get(uuid);
  }
  portByUuid(uuid: string): PortRow | undefined {
    return this.views.Port.get(uuid);
  }
  interfaceByUuid(uuid: string): InterfaceRow | undefined {
    return this.views.Interface.get(uuid);
  }
  /** Raw cached rows of a monitored table (wire values). */
  rawRows(table: MonitoredTable | (string & {})): ReadonlyMap<string, Row> {
    return this.cache?.table(table) ?? new Map();
  }

  // ---- calls ----

  /**
   * Sends `ops` as one transaction. Rejects with OvsdbTransactError if any operation (or the
   * commit) failed, OVS_UNREACHABLE when not connected, OVSDB_TIMEOUT on timeout. The cache
   * already reflects the transaction when this resolves.
   */
  async transact(ops: Operation[], opts: TransactOptions = {}): Promise<OperationResult[]> {
    const started = Date.now();
    const timeoutMs = opts.timeoutMs ?? this.callTimeoutMs;
    if (!opts.waitApplied) return (await this.commit(ops, timeoutMs, false)).results;
    const { results, target } = await this.commit(ops, timeoutMs, true);
    await this.waitApplied(target, Math.max(1, timeoutMs - (Date.now() - started)));
    return results;
  }

  /**
   * Like `transact`, but resolves once committed, with `applied`: settles once ovs-vswitchd has
   * applied the transaction (within `appliedTimeoutMs`), and `target`, the counter value that is. For work that must not wait for
   * ovs-vswitchd, but whose effect something later must wait for.
   */
  async transactCommitted(
    ops: Operation[],
    opts: { timeoutMs?: number; appliedTimeoutMs?: number } = {},
  ): Promise<{ results: OperationResult[]; applied: Promise<void>; target: number }> {
    const { results, target } = await this.commit(ops, opts.timeoutMs ?? this.callTimeoutMs, true);
    return {
      results,
      applied: this.waitApplied(target, opts.appliedTimeoutMs ?? this.callTimeoutMs),
      target,
    };
  }

  /**
   * Resolves true once `cond` holds on the monitor-fed cache (checked on every change), false
   * after `timeoutMs`.
   */
  until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onChange = () => {
        if (cond()) done(true);
      };
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.off("change", onChange);
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.on("change", onChange);
    });
  }

  /**
   * Waits until ovs-vswitchd has applied every configuration requested so far, by anyone (the
   * cached `next_cfg`); at once when it has.
   */
  caughtUp(timeoutMs = this.callTimeoutMs): Promise<void> {
    const c = this.counter;
    const row = c === undefined ? undefined : this.rawRows(c.table).values().next().value;
    const next = c === undefined ? 0 : row?.[c.next];
    return this.waitApplied(typeof next === "number" ? next : 0, timeoutMs);
  }

  /** One transaction; with `bump`, also next_cfg += 1, and the target ovs-vswitchd must reach. */
  private async commit(
    ops: Operation[],
    timeoutMs: number,
    bump: boolean,
  ): Promise<{ results: OperationResult[]; target: number }> {
    const rpc = this.connectedRpc();
    const c = this.counter;
    if (bump && c === undefined) {
      throw new AgentError(
        "INVALID_CONFIG",
        `database ${this.database} has no applied counter: cannot wait for a transaction to be applied`,
      );
    }
    const sent =
      bump && c !== undefined
        ? [...ops, mutate(c.table, [], [add(c.next, 1)]), select(c.table, [], [c.next])]
        : ops;
    const raw = await rpc.call("transact", [this.database, ...sent], timeoutMs);
    if (!Array.isArray(raw)) throw protocolError(`transact answered a non-array result from ${this.remote}`);
    const all = raw as (OperationResult | null)[];
    const errors: OperationError[] = [];
    all.forEach((r, index) => {
      if (r !== null && typeof r === "object" && typeof r.error === "string") {
        errors.push(
          r.details === undefined ? { index, error: r.error } : { index, error: r.error, details: r.details },
        );
      }
    });
    if (errors.length > 0) throw new OvsdbTransactError(errors, sent.length);
    const results = all.slice(0, ops.length).map((r) => r ?? {});
    if (!bump) return { results, target: 0 };
    const counter = c as AppliedCounter;
    const target = all[sent.length - 1]?.rows?.[0]?.[counter.next];
    if (typeof target !== "number") {
      throw new AgentError(
        "OVSDB_ERROR",
        `the ${counter.table} table of ${this.remote} has no row: cannot wait for ${counter.applier}`,
        counter.initHint,
      );
    }
    return { results, target };
  }

  /** An `echo` round trip; resolves with the round-trip time in ms. */
  async echo(timeoutMs = this.callTimeoutMs): Promise<number> {
    const rpc = this.connectedRpc();
    const nonce = `${Date.now()}-${Math.random()}`;
    const started = performance.now();
    const answer = await rpc.call("echo", [nonce], timeoutMs);
    if (!Array.isArray(answer) || answer[0] !== nonce) {
      throw protocolError(`echo to ${this.remote} answered ${JSON.stringify(answer)}`);
    }
    return performance.now() - started;
  }

  /** Closes the connection and stops reconnecting; pending calls are rejected. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.dialing?.destroy();
    this.rejectWaiters(unreachable(this.remote, "the client was closed"));
    const rpc = this.rpc;
    if (rpc !== undefined) await rpc.close("the client was closed");
  }

  private get applier(): string {
    return this.counter?.applier ?? "the database's consumer";
  }

  // ---- connection ----

  private connectedRpc(): RpcConnection {
    if (this.closed) throw unreachable(this.remote, "the client was closed");
    if (!this.isConnected || this.rpc === undefined) {
      throw unreachable(
        this.remote,
        this.reconnectEnabled ? "not connected (reconnecting)" : "not connected",
      );
    }
    return this.rpc;
  }

  private dial(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(parseRemote(this.remote));
      this.dialing = socket;
      const done = (e?: AgentError) => {
        clearTimeout(timer);
        socket.removeListener("error", onError);
        this.dialing = undefined;
        if (e === undefined) return resolve(socket);
        socket.destroy();
        reject(e);
      };
      const onError = (e: Error) => done(unreachable(this.remote, e.message, e));
      const timer = setTimeout(
        () => done(unreachable(this.remote, `no connection within ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      );
      socket.once("error", onError);
      socket.once("connect", () =>
        this.closed ? done(unreachable(this.remote, "the client was closed")) : done(),
      );
      socket.once("close", () => {
        if (this.dialing === socket) done(unreachable(this.remote, "the client was closed"));
      });
    });
  }

  /** One connection attempt: socket, schema, monitor, initial cache. */
  private async open(): Promise<void> {
    const socket = await this.dial();
    socket.setNoDelay(true);
    const rpc = new RpcConnection(socket, {
      remote: this.remote,
      callTimeoutMs: this.callTimeoutMs,
      logger: this.logger,
      probeIntervalMs: this.probeIntervalMs,
      ...(this.maxMessageBytes === undefined ? {} : { maxMessageBytes: this.maxMessageBytes }),
    });
    this.rpc = rpc;
    this.ready = false;
    // update2 notifications may be parsed before the monitor reply's continuation runs: buffer them.
    let early: TableUpdates2[] | undefined = [];
    rpc.on("notification", (method: string, params: unknown[]) => {
      if (method !== "update2" || params[0] !== MONITOR_ID) return;
      const updates = params[1] as TableUpdates2;
      if (early !== undefined) early.push(updates);
      else if (this.rpc === rpc && this.cache !== undefined)
        this.applyUpdates(this.cache.apply(updates), true);
    });
    rpc.on("close", () => this.onClose(rpc));

    const schema = (await rpc.call("get_schema", [this.database])) as DatabaseSchema;
    if (typeof schema !== "object" || schema === null || typeof schema.tables !== "object") {
      throw protocolError(`get_schema from ${this.remote} returned no tables`);
    }
    const columns: Record<string, string[]> = {};
    const requests: Record<string, { columns: string[] }[]> = {};
    for (const [table, wanted] of Object.entries(this.monitorColumns)) {
      const tableSchema = schema.tables[table];
      if (tableSchema === undefined) throw protocolError(`the ${this.database} schema has no ${table} table`);
      columns[table] = wanted.filter((c) => c in tableSchema.columns);
      requests[table] = [{ columns: columns[table] }];
    }
    const initial = (await rpc.call("monitor_cond", [this.database, MONITOR_ID, requests])) as TableUpdates2;
    if (this.closed || this.rpc !== rpc) throw unreachable(this.remote, "the client was closed");

    const cache = new TableCache(schema, columns);
    this.dbSchema = schema;
    this.cache = cache;
    for (const view of Object.values(this.views)) view.clear();
    this.applyUpdates(cache.apply(initial ?? {}), false);
    const buffered = early;
    early = undefined;
    for (const updates of buffered) this.applyUpdates(cache.apply(updates), true);
    this.ready = true;
    this.backoffMs = MIN_BACKOFF_MS;
    this.logger.info({ remote: this.remote }, "ovsdb: connected");
    this.emit("connected");
  }

  private onClose(rpc: RpcConnection): void {
    if (this.rpc !== rpc) return;
    const wasReady = this.ready;
    this.ready = false;
    this.rpc = undefined;
    this.rejectWaiters(
      unreachable(
        this.remote,
        `connection lost before ${this.applier} applied the change (it was committed)`,
      ),
    );
    if (!wasReady) return; // a failing open() reports (and reschedules) by itself
    this.logger.warn({ remote: this.remote }, "ovsdb: disconnected");
    this.emit("disconnected");
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || !this.reconnectEnabled || this.reconnectTimer !== undefined) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.open().catch((e: unknown) => {
        this.logger.debug(
          { err: toAgentError(e).message, retryInMs: this.backoffMs },
          "ovsdb: reconnect failed",
        );
        const rpc = this.rpc;
        if (rpc !== undefined && !this.ready) {
          this.rpc = undefined;
          void rpc.close();
        }
        this.scheduleReconnect();
      });
    }, delay);
  }

  // ---- cache ----

  private applyUpdates(changes: CacheChange[], emit: boolean): void {
    let cfgChanged = false;
    for (const c of changes) {
      if (this.database === "Open_vSwitch") this.views[c.table as MonitoredTable]?.apply(c);
      if (this.counter !== undefined && c.table === this.counter.table && c.new !== undefined) {
        const cur = c.new[this.counter.cur];
        if (typeof cur === "number" && cur !== this.curCfg) {
          this.curCfg = cur;
          cfgChanged = true;
        }
      }
      if (emit) this.safeEmit("change", c);
    }
    if (cfgChanged) {
      for (const w of this.waiters) {
        if (this.curCfg >= w.target) {
          clearTimeout(w.timer);
          this.waiters.delete(w);
          w.resolve();
        }
      }
      if (emit) this.safeEmit("applied", this.curCfg);
    }
  }

  /** A throwing listener must not break the connection's data handler. */
  private safeEmit(event: string, arg: unknown): void {
    try {
      this.emit(event, arg);
    } catch (e) {
      this.logger.error({ err: toAgentError(e).message, event }, "ovsdb: event listener threw");
    }
  }

  private waitApplied(target: number, timeoutMs: number): Promise<void> {
    if (this.curCfg >= target) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: AppliedWaiter = {
        target,
        resolve,
        reject,
        // A timer can fire before the socket's waiting data is read (a blocked event loop runs
        // timers first), and an update of many rows may take more than one read: one echo round
        // trip settles it, since the server sends its updates and answers in order.
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          const late = (): void => {
            if (this.curCfg >= target) {
              resolve();
              return;
            }
            reject(
              timeout(
                `${this.applier} applying configuration ${target} (applied: ${this.curCfg})`,
                timeoutMs,
                `the transaction was committed but ${this.applier} did not apply it: is it running and connected to this database?`,
              ),
            );
          };
          this.echo(LATE_ECHO_MS).then(late, late);
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  private rejectWaiters(e: AgentError): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(e);
    }
    this.waiters.clear();
  }
}
