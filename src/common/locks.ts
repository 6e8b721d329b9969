/**
 * Serialises work per key (a lab), and lets one exclusive task (a cleanup pass, a full
 * reconcile) run alone: it waits for the keyed work in flight and holds new work back.
 */
export class Locks {
  private readonly tails = new Map<string, Promise<unknown>>();
  private gate: Promise<unknown> = Promise.resolve();

  /** Runs fn after earlier work on the same key (and any exclusive task) has finished. */
  withKey<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const gate = this.gate;
    const run = Promise.all([prev, gate]).then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }

  /** Runs fn alone: after all keyed work in flight, before any keyed work queued later. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const inFlight = [...this.tails.values(), this.gate];
    const run = Promise.all(inFlight).then(fn);
    this.gate = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}
