import type { DetachedEndpoint } from "../backends/network-backend.js";

interface Request {
  eps: DetachedEndpoint[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Makes the veths of concurrent callers together: one kernel batch and one OVSDB transaction
 * for all requests that arrive in the same event-loop turn or while the previous batch runs.
 * Containers started at once each call CreateEndpoint; one at a time, each would cost its own
 * processes (ip, the offload helper) on the path of its container start.
 */
export class VethBatcher {
  private queue: Request[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly make: (eps: DetachedEndpoint[]) => Promise<void>) {}

  /** Resolves once these veths exist (all of them, or none on failure). */
  create(eps: readonly DetachedEndpoint[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ eps: [...eps], resolve, reject });
      this.running ??= this.run().finally(() => {
        this.running = undefined;
      });
    });
  }

  private async run(): Promise<void> {
    await new Promise((r) => setImmediate(r)); // let the calls of this turn queue up
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      try {
        await this.make(batch.flatMap((r) => r.eps));
        for (const r of batch) r.resolve();
      } catch (e) {
        if (batch.length === 1) {
          batch[0]?.reject(e);
          continue;
        }
        // The batch is undone as a whole: one bad request must not fail the others.
        for (const r of batch) await this.make(r.eps).then(r.resolve, r.reject);
      }
    }
  }
}
