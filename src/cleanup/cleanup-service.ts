import {
  type CleanupContext,
  capability,
  type NetworkBackend,
  type Orphan,
} from "../backends/network-backend.js";
import type { Locks } from "../common/locks.js";
import type { Logger } from "../common/log.js";
import type { AgentConfig } from "../config/config.js";
import type { Metrics } from "../metrics.js";
import type { CleanupOperations } from "../model/operations.js";
import type { OrphanView } from "../model/views.js";
import type { StateStore } from "../state/state-store.js";

export interface CleanupServiceDeps {
  config: AgentConfig;
  store: StateStore;
  backend: NetworkBackend;
  locks: Locks;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Orphan cleanup: on demand and every N seconds. A pass holds the exclusive lock, so it never
 * races provisioning and never runs twice at once; resources younger than the grace period and
 * anything without the agent's ownership marks are never orphans.
 */
export class CleanupService implements CleanupOperations {
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;

  constructor(private readonly d: CleanupServiceDeps) {}

  context(): CleanupContext {
    const pluginPorts = new Set([
      ...this.d.store.pluginEndpoints.values().map((e) => e.hostPort),
      ...this.d.store.pluginNetworks.values().flatMap((n) => (n.spares ?? []).map((s) => s.hostPort)),
    ]);
    return {
      labs: this.d.store.labs(),
      overlays: this.d.store.overlays.values(),
      pluginPorts,
      graceSince: Date.now() - this.d.config.cleanupGraceS * 1000,
      graceMs: this.d.config.cleanupGraceS * 1000,
    };
  }

  /** What a pass would remove now, and why. Takes the same exclusive lock, so it sees a settled state. */
  audit(): Promise<OrphanView[]> {
    return this.d.locks.exclusive(() =>
      this.d.metrics.time("cleanup_audit", async () =>
        (await capability(this.d.backend, "orphans").audit(this.context())).map(view),
      ),
    );
  }

  /**
   * One pass: audit and removal under one exclusive lock (no lab work runs in between, and two
   * passes never overlap: the lock queues them). Logs and counts what it removed.
   */
  run(): Promise<OrphanView[]> {
    return this.d.locks.exclusive(() =>
      this.d.metrics.time("cleanup", async () => {
        const cap = capability(this.d.backend, "orphans");
        const orphans = await cap.audit(this.context());
        if (orphans.length === 0) return [];
        await cap.remove(orphans);
        for (const o of orphans) this.d.metrics.cleanupRemoved.inc({ kind: o.kind });
        this.d.logger.info({ removed: orphans.map(view) }, "cleanup removed orphans");
        return orphans.map(view);
      }),
    );
  }

  /**
   * Starts the periodic pass (interval 0, or a backend without orphans, disables it); a tick
   * while a pass is pending is skipped.
   */
  start(): void {
    const s = this.d.config.cleanupIntervalS;
    if (s <= 0 || this.timer || !this.d.backend.orphans) return;
    this.timer = setInterval(() => {
      if (this.ticking) return;
      this.ticking = true;
      this.run()
        .catch((e) => this.d.logger.warn({ err: e }, "cleanup pass failed"))
        .finally(() => {
          this.ticking = false;
        });
    }, s * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function view(o: Orphan): OrphanView {
  return { kind: o.kind, name: o.name, reason: o.reason };
}
