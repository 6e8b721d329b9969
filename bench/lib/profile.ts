/**
 * Phase timing without touching the agent: wraps methods of live objects (e.g. the backend's
 * provision/connect/transact) and sums the time spent in each while a window is open.
 */
export class PhaseProfiler {
  private totals = new Map<string, { ms: number; calls: number }>();
  private readonly restore: (() => void)[] = [];

  wrap<T extends object>(obj: T, methods: readonly string[], label: string): void {
    const target = obj as Record<string, unknown>;
    for (const m of methods) {
      const orig = target[m];
      if (typeof orig !== "function") continue;
      const key = `${label}.${m}`;
      const had = Object.hasOwn(target, m);
      target[m] = async (...args: unknown[]) => {
        const t0 = performance.now();
        try {
          return await (orig as (...a: unknown[]) => Promise<unknown>).apply(obj, args);
        } finally {
          const cur = this.totals.get(key) ?? { ms: 0, calls: 0 };
          cur.ms += performance.now() - t0;
          cur.calls += 1;
          this.totals.set(key, cur);
        }
      };
      this.restore.push(() => {
        if (had) target[m] = orig;
        else delete target[m];
      });
    }
  }

  reset(): void {
    this.totals = new Map();
  }

  snapshot(): Record<string, { ms: number; calls: number }> {
    return Object.fromEntries([...this.totals].map(([k, v]) => [k, { ms: round(v.ms), calls: v.calls }]));
  }

  unwrapAll(): void {
    for (const r of this.restore.splice(0).reverse()) r();
  }
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
