import { readFileSync } from "node:fs";
import { startApi } from "./api/server.js";
import { OvnBackend } from "./backends/ovn/ovn-backend.js";
import { createBackend } from "./backends/registry.js";
import { CleanupService } from "./cleanup/cleanup-service.js";
import { Locks } from "./common/locks.js";
import type { Logger } from "./common/log.js";
import { endPredecessorChildren } from "./common/orphaned-children.js";
import type { AgentConfig } from "./config/config.js";
import { CaptureService, recordEnds } from "./labs/capture-service.js";
import { ImpairmentService } from "./labs/impairment-service.js";
import { LabService } from "./labs/lab-service.js";
import { OVN_DEFAULT_MTU, OvnLabService } from "./labs/ovn-lab-service.js";
import { createMetrics, registerLinkMetrics, registerNetworkMetrics } from "./metrics.js";
import { OverlayService } from "./overlay/overlay-service.js";
import { startPlugin } from "./plugin/plugin-server.js";
import type { AgentServices } from "./services.js";
import { StateStore } from "./state/state-store.js";

export const VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** How soon after a change behind the agent's back it reconciles (changes in a burst coalesce). */
const DRIFT_DEBOUNCE_MS = 100;
/** A lab that could not be converged is tried again this soon, then twice as late each time. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 60_000;

export interface Agent {
  services: AgentServices;
  labs: LabService;
  /** With the ovn backend: the lab service the API uses (labs live in OVN's NB, not the store). */
  ovnLabs: OvnLabService | undefined;
  cleanup: CleanupService;
  store: StateStore;
  locks: Locks;
  /** Reconciles now, alone (waits for work in flight); the repairs made. */
  reconcile(): Promise<string[]>;
  /** Resolves once the reconcile that drift seen so far has scheduled has run (now, if none). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The composition root: builds every part from the config, ends what a dead predecessor left
 * running, connects the backend, converges the stored desired state, and keeps converging
 * whenever reality drifts (OVS restarted, the bridge deleted by hand, ...). A lab that cannot be
 * converged does not stop the others: it is reported (log, metric, its view) and tried again.
 */
export async function createAgent(config: AgentConfig, opts: { logger: Logger }): Promise<Agent> {
  const logger = opts.logger;
  const store = await StateStore.open(config.stateDir, { logger });
  const backend = createBackend(config, logger);
  const locks = new Locks();
  const metrics = createMetrics();
  /** Lab -> why the last reconcile could not converge it. */
  const unconverged = new Map<string, string>();
  const labs = new LabService({ config, store, backend, locks, metrics, logger, unconverged });
  const ovnLabs =
    backend instanceof OvnBackend
      ? new OvnLabService({ config, backend, locks, metrics, logger })
      : undefined;
  const overlays = new OverlayService({ config, store, backend, locks, metrics });
  const cleanup = new CleanupService({ config, store, backend, locks, metrics, logger });
  const impairments = new ImpairmentService({ store, backend, locks, metrics, logger });
  const captures = new CaptureService({
    resolve: ovnLabs ? (t) => ovnLabs.captureEnd(t) : recordEnds(store),
    backend,
    logger,
    max: config.maxCaptures,
  });
  registerNetworkMetrics(
    metrics.registry,
    async () => (await backend.status()).ports,
    function* () {
      for (const l of store.labs())
        for (const v of labs.getLab(l.lab).links) yield { lab: l.lab, state: v.state };
    },
    function* () {
      for (const l of store.labs())
        for (const n of labs.getLab(l.lab).nodes)
          for (const i of n.interfaces) yield { lab: l.lab, state: i.oper_state };
    },
  );

  registerLinkMetrics(
    metrics.registry,
    function* () {
      for (const l of store.labs())
        for (const v of labs.getLab(l.lab).links)
          for (const end of ["a", "b"] as const) {
            const counters = v.counters?.[end];
            if (counters) yield { lab: l.lab, link: v.id, end, counters };
          }
    },
    () => captures.active(),
  );

  let pending: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let retryMs = RETRY_FIRST_MS;
  let closed = false;
  /** Settles when the scheduled reconcile has run; undefined while none is scheduled. */
  let scheduled: { done: Promise<void>; settle: () => void } | undefined;
  const reconcileSoon = (ms: number) => {
    clearTimeout(pending);
    if (closed) return;
    if (!scheduled) {
      let settle = () => {};
      const done = new Promise<void>((r) => {
        settle = r;
      });
      scheduled = { done, settle };
    }
    pending = setTimeout(() => {
      const run = scheduled;
      scheduled = undefined;
      reconcile()
        .catch((e) => logger.warn({ err: e }, "reconcile failed; retrying on the next change"))
        .finally(() => run?.settle());
    }, ms);
  };
  const reconcile = () =>
    locks.exclusive(async () => {
      const { repairs, failed } = await backend.reconcile(store.labs(), store.overlays.values());
      metrics.reconcileRepairs.inc(repairs.length);
      unconverged.clear();
      for (const [lab, err] of failed) {
        unconverged.set(lab, err.message);
        metrics.labReconcileFailures.inc({ lab });
        logger.warn({ lab, err }, "lab not converged; the other labs are");
      }
      metrics.unconvergedLabs.set(failed.size);
      clearTimeout(retry);
      if (failed.size === 0) {
        retryMs = RETRY_FIRST_MS;
      } else if (!closed) {
        retry = setTimeout(() => reconcileSoon(0), retryMs);
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
      return repairs;
    });
  backend.onDrift((reason) => {
    logger.info({ reason }, "drift detected: reconciling");
    reconcileSoon(DRIFT_DEBOUNCE_MS);
  });

  const started = performance.now();
  try {
    // A dead predecessor's `ip` still running would change the kernel behind this agent's back.
    await endPredecessorChildren(config.stateDir, logger);
    await backend.start();
    await reconcile();
  } catch (e) {
    closed = true;
    clearTimeout(pending);
    clearTimeout(retry);
    await backend.stop().catch(() => undefined);
    throw e;
  }
  logger.info(
    {
      backend: backend.name,
      datapath: backend.datapath,
      labs: store.labs().length,
      unconverged: unconverged.size,
      ms: Math.round(performance.now() - started),
    },
    "backend ready",
  );
  cleanup.start();
  let plugin: Awaited<ReturnType<typeof startPlugin>> | undefined;
  try {
    if (config.pluginSocket && backend.dockerPorts) {
      plugin = await startPlugin(config.pluginSocket, {
        config,
        store,
        backend,
        labs: ovnLabs ?? labs,
        locks,
        logger,
        ...(ovnLabs ? { defaultMtu: OVN_DEFAULT_MTU } : {}),
      });
    }
  } catch (e) {
    // e.g. another agent serves the socket: stop what started, or the process would not exit
    clearTimeout(pending);
    cleanup.stop();
    await backend.stop().catch(() => undefined);
    throw e;
  }

  const services: AgentServices = {
    version: VERSION,
    config,
    backend,
    labs: ovnLabs ?? labs,
    overlays,
    cleanup,
    impairments: ovnLabs?.impairments ?? impairments,
    captures,
    metrics,
  };
  return {
    services,
    labs,
    ovnLabs,
    cleanup,
    store,
    locks,
    reconcile,
    async settled() {
      while (scheduled) await scheduled.done;
    },
    async close() {
      closed = true;
      clearTimeout(pending);
      scheduled?.settle();
      scheduled = undefined;
      clearTimeout(retry);
      cleanup.stop();
      await captures.close();
      await plugin?.close();
      await locks.exclusive(async () => undefined);
      await backend.stop();
    },
  };
}

/** `archnet serve`: the agent plus its HTTP API. */
export async function startAgent(
  config: AgentConfig,
  opts: { logger: Logger },
): Promise<{ address: string; agent: Agent; close(): Promise<void> }> {
  const agent = await createAgent(config, opts);
  try {
    const api = await startApi(agent.services, { logger: opts.logger });
    return {
      address: api.address,
      agent,
      async close() {
        await api.close();
        await agent.close();
      },
    };
  } catch (e) {
    await agent.close();
    throw e;
  }
}
