import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { readJson, removeFile, writeAtomic } from "./atomic-file.js";
import type { LabRecord, OverlayRecord, PluginEndpointRecord, PluginNetworkRecord } from "./records.js";

/**
 * A keyed collection kept as one small JSON file per item in a directory: a change writes only
 * its own item (atomically), so its cost does not grow with the collection (overlay attach and
 * Docker's CreateEndpoint sit on latency-critical paths).
 */
class FileCollection<T> {
  private readonly items = new Map<string, T>();
  constructor(
    private readonly dir: string,
    private readonly fsync: boolean,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const f of readdirSync(dir)) {
      if (!f.endsWith(".json")) continue; // leftovers of an interrupted write are ignored
      const item = readJson<T>(join(dir, f));
      if (item !== undefined) this.items.set(decodeURIComponent(f.slice(0, -".json".length)), item);
    }
    // Earlier versions kept the whole collection in DIR.json.
    const legacy = `${dir}.json`;
    for (const [k, v] of Object.entries(readJson<Record<string, T>>(legacy) ?? {})) {
      if (!this.items.has(k)) this.set(k, v);
    }
    removeFile(legacy);
  }
  get(key: string): T | undefined {
    return this.items.get(key);
  }
  values(): T[] {
    return [...this.items.values()];
  }
  set(key: string, value: T): void {
    this.items.set(key, value);
    writeAtomic(this.file(key), JSON.stringify(value), this.fsync);
  }
  delete(key: string): void {
    if (this.items.delete(key)) removeFile(this.file(key));
  }
  private file(key: string): string {
    return join(this.dir, `${encodeURIComponent(key)}.json`);
  }
}

/**
 * The agent's durable desired state: one file per lab (big labs rewrite only their own file),
 * per overlay link, and per Docker plugin network and endpoint.
 * Callers pass records they own; the store keeps the objects it was given.
 */
export class StateStore {
  private readonly labsDir: string;
  private readonly labMap = new Map<string, LabRecord>();
  readonly overlays: FileCollection<OverlayRecord>;
  readonly pluginNetworks: FileCollection<PluginNetworkRecord>;
  readonly pluginEndpoints: FileCollection<PluginEndpointRecord>;

  constructor(
    readonly dir: string,
    private readonly fsync = false,
  ) {
    this.labsDir = join(dir, "labs");
    mkdirSync(this.labsDir, { recursive: true, mode: 0o700 });
    for (const f of readdirSync(this.labsDir)) {
      if (!f.endsWith(".json")) continue; // leftovers of an interrupted write are ignored
      const rec = readJson<LabRecord>(join(this.labsDir, f));
      if (rec) this.labMap.set(rec.lab, rec);
    }
    this.overlays = new FileCollection(join(dir, "overlays"), fsync);
    this.pluginNetworks = new FileCollection(join(dir, "plugin-networks"), fsync);
    this.pluginEndpoints = new FileCollection(join(dir, "plugin-endpoints"), fsync);
  }

  labs(): LabRecord[] {
    return [...this.labMap.values()];
  }

  lab(id: string): LabRecord | undefined {
    return this.labMap.get(id);
  }

  /** Persists a lab record (lab ids are validated names, safe as file names). */
  saveLab(rec: LabRecord): void {
    this.labMap.set(rec.lab, rec);
    writeAtomic(this.labFile(rec.lab), JSON.stringify(rec), this.fsync);
  }

  deleteLab(id: string): void {
    this.labMap.delete(id);
    removeFile(this.labFile(id));
  }

  private labFile(id: string): string {
    return join(this.labsDir, `${id}.json`);
  }
}
