import type { CacheChange, Row } from "./cache.js";

/**
 * Decoded rows of one table, kept beside the raw cache: a row is decoded the first time it is
 * read after a change (so frequent `statistics` updates cost nothing until someone reads), and
 * an index by `name` makes lookups by name O(1). Decoded rows are shared and frozen: do not modify.
 */
export class DecodedView<T> {
  private readonly rows = new Map<string, { raw: Row; decoded?: T }>();
  private readonly byName = new Map<string, string>();

  constructor(private readonly decode: (row: Row) => T) {}

  apply(change: CacheChange): void {
    const oldName = change.old?.name;
    if (typeof oldName === "string" && this.byName.get(oldName) === change.uuid) this.byName.delete(oldName);
    if (change.new === undefined) {
      this.rows.delete(change.uuid);
      return;
    }
    this.rows.set(change.uuid, { raw: change.new });
    const name = change.new.name;
    if (typeof name === "string") this.byName.set(name, change.uuid);
  }

  clear(): void {
    this.rows.clear();
    this.byName.clear();
  }

  get size(): number {
    return this.rows.size;
  }

  get(uuid: string): T | undefined {
    const entry = this.rows.get(uuid);
    if (entry === undefined) return undefined;
    if (entry.decoded === undefined) entry.decoded = Object.freeze(this.decode(entry.raw));
    return entry.decoded;
  }

  getByName(name: string): T | undefined {
    const uuid = this.byName.get(name);
    return uuid === undefined ? undefined : this.get(uuid);
  }

  all(): T[] {
    const out: T[] = [];
    for (const uuid of this.rows.keys()) out.push(this.get(uuid)!);
    return out;
  }
}
