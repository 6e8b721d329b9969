import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { SwitchPortView } from "./model/views.js";

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
  /** Reconciles that could not converge a lab, by lab. */
  labReconcileFailures: Counter<"lab">;
  /** Labs the last reconcile could not converge. */
  unconvergedLabs: Gauge;
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
  const labReconcileFailures = new Counter({
    name: "archnet_lab_reconcile_failures_total",
    help: "Reconciles that could not converge a lab, by lab (the reason is logged and in the lab's view)",
    labelNames: ["lab"] as const,
    registers: [registry],
  });
  const unconvergedLabs = new Gauge({
    name: "archnet_labs_unconverged",
    help: "Labs the last reconcile could not converge",
    registers: [registry],
  });
  return {
    registry,
    operation,
    errors,
    cleanupRemoved,
    reconcileRepairs,
    labReconcileFailures,
    unconvergedLabs,
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

/** Labelled values read on each scrape. */
type Readings<L extends string> = Iterable<[Partial<Record<L, string>>, number]>;

/** Registers a gauge whose values are read (possibly asynchronously) on each scrape. */
export function scrapedGauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: () => Promise<Readings<L>> | Readings<L>,
): Gauge<L> {
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      this.reset();
      for (const [labels, value] of await read()) this.set(labels, value);
    },
  });
}

/** Per-port counters from the switch (per-link figures: `sum by (lab, link)`), and links by state. */
export function registerNetworkMetrics(
  registry: Registry,
  ports: () => Promise<readonly SwitchPortView[]>,
  links: () => Iterable<{ lab: string; state: string }>,
  interfaces: () => Iterable<{ lab: string; state: string }> = () => [],
): void {
  const labels = ["port", "lab", "node", "interface", "link"] as const;
  const counters = ["rx_packets", "tx_packets", "rx_bytes", "tx_bytes"] as const;
  for (const c of counters) {
    scrapedGauge(
      registry,
      `archnet_port_${c}`,
      `Port ${c.replace("_", " ")} as counted by the switch`,
      labels,
      async () =>
        (await ports()).map((p) => [
          {
            port: p.name,
            lab: p.lab ?? "",
            node: p.node ?? "",
            interface: p.interface ?? "",
            link: p.link ?? "",
          },
          p[c],
        ]),
    );
  }
  const byLabAndState = (items: Iterable<{ lab: string; state: string }>): Readings<"lab" | "state"> => {
    const count = new Map<string, number>();
    for (const l of items) count.set(`${l.lab}\0${l.state}`, (count.get(`${l.lab}\0${l.state}`) ?? 0) + 1);
    return [...count].map(([k, n]) => {
      const [lab, state] = k.split("\0") as [string, string];
      return [{ lab, state }, n];
    });
  };
  scrapedGauge(
    registry,
    "archnet_links",
    "Links by lab and state (up, down, pending)",
    ["lab", "state"],
    () => byLabAndState(links()),
  );
  scrapedGauge(
    registry,
    "archnet_interfaces",
    "Interfaces by lab and oper_state (up, admin_down, peer_down, no_carrier)",
    ["lab", "state"],
    () => byLabAndState(interfaces()),
  );
}

/** A link end's counters, from the node's side (see InterfaceCounters). */
export interface LinkEndReading {
  lab: string;
  link: string;
  end: "a" | "b";
  counters: Record<(typeof LINK_COUNTERS)[number], number>;
}

export const LINK_COUNTERS = [
  "rx_packets",
  "tx_packets",
  "rx_bytes",
  "tx_bytes",
  "rx_dropped",
  "tx_dropped",
  "rx_errors",
  "tx_errors",
] as const;

/**
 * Per-link counters (labels lab, link, end: one series per link end, however the ports are
 * named), and the packet captures running.
 */
export function registerLinkMetrics(
  registry: Registry,
  ends: () => Iterable<LinkEndReading>,
  captures: () => number,
): void {
  for (const c of LINK_COUNTERS) {
    scrapedGauge(
      registry,
      `archnet_link_${c}`,
      `Link end ${c.replace("_", " ")} from the node's side (rx: reached the node), as the switch counts them`,
      ["lab", "link", "end"],
      function* () {
        for (const e of ends()) yield [{ lab: e.lab, link: e.link, end: e.end }, e.counters[c]];
      },
    );
  }
  scrapedGauge(registry, "archnet_captures_active", "Packet captures running", [], () => [[{}, captures()]]);
}
