import { toAgentError } from "../common/errors.js";
import type { Logger } from "../common/log.js";

/**
 * Removes the host ends of plugin endpoints in the background, in batches: Docker calls
 * DeleteEndpoint once per network, one after the other, while it stops or removes a container;
 * the answer need not wait for OVS and the kernel. What a crash leaves queued has no record any
 * more and is removed by the orphan cleanup.
 */
export class PortReaper {
  private readonly queue = new Set<string>();
  private running: Promise<void> | undefined;

  constructor(
    private readonly remove: (hostPorts: string[]) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  add(hostPorts: readonly string[]): void {
    for (const p of hostPorts) this.queue.add(p);
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves once everything queued so far (and after) is removed. */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    // Let the calls of a burst queue up first: one batch for them all.
    await new Promise((r) => setImmediate(r));
    while (this.queue.size > 0) {
      const batch = [...this.queue];
      this.queue.clear();
      await this.remove(batch).catch((e) =>
        this.logger.warn(
          { ports: batch, err: toAgentError(e).message },
          "removing plugin ports failed; the orphan cleanup removes them",
        ),
      );
    }
  }
}
