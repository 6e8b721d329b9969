import { type Durability, removeFile, writeAtomic } from "../common/atomic-file.js";

/** What becomes of a file: its new content, or null to remove it. */
type Change = string | null;

interface Queued {
  change: Change;
  durability: Durability;
  done: Promise<void>;
}

/**
 * Whole-file changes, one at a time per file and in the order asked. Changes asked while their
 * file is being written are made together once it is done (the last one wins, as durable as the
 * most durable of them), so a burst of changes to one record costs two writes, not one each, and
 * the event loop never waits for the disk. Every caller learns when its change (or a later one)
 * is stored, or why not.
 */
export class DocumentWriter {
  /** Path -> the write under way (never rejects: callers see errors through their own promise). */
  private readonly busy = new Map<string, Promise<void>>();
  /** Path -> the change that runs after it. */
  private readonly next = new Map<string, Queued>();

  write(path: string, change: Change, durability: Durability): Promise<void> {
    const queued = this.next.get(path);
    if (queued) {
      queued.change = change;
      if (durability === "power-loss") queued.durability = durability;
      return queued.done;
    }
    const before = this.busy.get(path) ?? Promise.resolve();
    const q = { change, durability } as Queued;
    this.next.set(path, q);
    q.done = before.then(() => {
      this.next.delete(path); // changes asked from now on wait for this one
      return q.change === null ? removeFile(path, q.durability) : writeAtomic(path, q.change, q.durability);
    });
    const tail: Promise<void> = q.done
      .catch(() => undefined)
      .finally(() => {
        if (this.busy.get(path) === tail) this.busy.delete(path);
      });
    this.busy.set(path, tail);
    return q.done;
  }
}
