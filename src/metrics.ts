import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/**
 * The agent's Prometheus metrics. Operation latencies and errors are recorded where the work
 * happens; per-port counters are read from the switch when scraped.
 */
export interface Metrics {
  registry: Registry;
  /** Seconds per agent operation (connect, disconnect, provision, teardown, overlay_attach, ...). */
  operation: Histogram<"op" | "outcome">;
  errors: Counter<"code">;
  cleanupRemoved: Counter<"kind">;
  reconcileRepairs: Counter;
  /** Time an operation, labelled by outcome. */
  time<T>(op: string, fn: () => Promise<T>): Promise<T>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "archnet_" });
  const operation = new Histogram({
    name: "archnet_operation_seconds",
    help: "Duration of agent operations",
    labelNames: ["op", "outcome"] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const errors = new Counter({
    name: "archnet_errors_total",
    help: "Errors answered, by code",
    labelNames: ["code"] as const,
    registers: [registry],
  });
  const cleanupRemoved = new Counter({
    name: "archnet_cleanup_removed_total",
    help: "Orphaned resources removed by cleanup, by kind",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  const reconcileRepairs = new Counter({
    name: "archnet_reconcile_repairs_total",
    help: "Differences between desired state and reality that reconciliation repaired",
    registers: [registry],
  });
  return {
    registry,
    operation,
    errors,
    cleanupRemoved,
    reconcileRepairs,
    async time(op, fn) {
      const end = operation.startTimer({ op });
      try {
        const r = await fn();
        end({ outcome: "ok" });
        return r;
      } catch (e) {
        end({ outcome: "error" });
        throw e;
      }
    },
  };
}

/** Registers a gauge whose values are read on each scrape. */
export function scrapedGauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: () => Iterable<[Partial<Record<L, string>>, number]>,
): Gauge<L> {
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.set(labels, value);
    },
  });
}
