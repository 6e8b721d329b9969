import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { readJson, removeFile, setAside, writeAtomic } from "../common/atomic-file.js";
import { type Logger, silentLogger } from "../common/log.js";
import type {
  LabRecord,
  OverlayRecord,
  PluginEndpointRecord,
  PluginNetworkRecord,
} from "../model/records.js";

/** Where the store reports what it could not load, and what was set aside. */
interface Loader {
  logger: Logger;
  setAside: string[];
}

/**
 * The documents of `*.json` files in `dir` (leftovers of an interrupted write are other names
 * and ignored). A file that is empty, truncated or not the document expected is moved aside
 * and reported, and the rest loads: one damaged file must not keep the agent from starting.
 */
function loadDir<T>(dir: string, valid: (v: unknown) => v is T, loader: Loader): [string, T][] {
  const out: [string, T][] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".json")) continue;
    const doc = loadFile(join(dir, f), valid, loader);
    if (doc !== undefined) out.push([f.slice(0, -".json".length), doc]);
  }
  return out;
}

function loadFile<T>(path: string, valid: (v: unknown) => v is T, loader: Loader): T | undefined {
  let reason: string;
  try {
    const doc = readJson(path);
    if (doc === undefined || valid(doc)) return doc as T | undefined;
    reason = "not the document expected";
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    reason = `not valid JSON (${e.message})`;
  }
  let movedTo: string | undefined;
  try {
    movedTo = setAside(path);
    loader.setAside.push(movedTo);
  } catch (e) {
    loader.logger.error({ file: path, err: (e as Error).message }, "state: cannot move a damaged file aside");
  }
  loader.logger.warn(
    { file: path, movedTo, reason },
    `state: ${path} is damaged and was set aside${movedTo ? ` as ${movedTo}` : ""}; the agent runs ` +
      "without what it described. PUT the lab (or attach the overlay link) again, or repair the kept " +
      "copy, rename it back and restart",
  );
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const isLab = (v: unknown): v is LabRecord =>
  isObject(v) &&
  typeof v.lab === "string" &&
  typeof v.group === "number" &&
  isObject(v.nodes) &&
  isObject(v.links);

/**
 * A keyed collection kept as one small JSON file per item in a directory: a change writes only
 * its own item (atomically), so its cost does not grow with the collection (overlay attach and
 * Docker's CreateEndpoint sit on latency-critical paths). Memory follows the disk: a write that
 * fails leaves the collection as it was.
 */
class FileCollection<T> {
  private readonly items = new Map<string, T>();
  constructor(
    private readonly dir: string,
    loader: Loader,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const [name, item] of loadDir(dir, isObject, loader)) {
      this.items.set(decodeURIComponent(name), item as T);
    }
    // Earlier versions kept the whole collection in DIR.json.
    const legacy = `${dir}.json`;
    for (const [k, v] of Object.entries(loadFile(legacy, isObject, loader) ?? {})) {
      if (!this.items.has(k)) this.set(k, v as T);
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
    writeAtomic(this.file(key), JSON.stringify(value));
    this.items.set(key, value);
  }
  delete(key: string): void {
    if (!this.items.has(key)) return;
    removeFile(this.file(key));
    this.items.delete(key);
  }
  private file(key: string): string {
    return join(this.dir, `${encodeURIComponent(key)}.json`);
  }
}

/**
 * The agent's durable desired state: one file per lab (big labs rewrite only their own file),
 * per overlay link, and per Docker plugin network and endpoint. Every write is flushed to disk
 * before it returns (power loss keeps it); a write that fails throws STATE_WRITE_FAILED and
 * changes nothing. Callers pass records they own; the store keeps the objects it was given.
 */
export class StateStore {
  private readonly labsDir: string;
  private readonly labMap = new Map<string, LabRecord>();
  readonly overlays: FileCollection<OverlayRecord>;
  readonly pluginNetworks: FileCollection<PluginNetworkRecord>;
  readonly pluginEndpoints: FileCollection<PluginEndpointRecord>;
  /** Damaged files moved aside while loading (their new paths). */
  readonly setAside: readonly string[];

  constructor(
    readonly dir: string,
    opts: { logger?: Logger } = {},
  ) {
    const loader: Loader = { logger: opts.logger ?? silentLogger(), setAside: [] };
    this.setAside = loader.setAside;
    this.labsDir = join(dir, "labs");
    mkdirSync(this.labsDir, { recursive: true, mode: 0o700 });
    for (const [, rec] of loadDir(this.labsDir, isLab, loader)) this.labMap.set(rec.lab, rec);
    this.overlays = new FileCollection(join(dir, "overlays"), loader);
    this.pluginNetworks = new FileCollection(join(dir, "plugin-networks"), loader);
    this.pluginEndpoints = new FileCollection(join(dir, "plugin-endpoints"), loader);
  }

  labs(): LabRecord[] {
    return [...this.labMap.values()];
  }

  lab(id: string): LabRecord | undefined {
    return this.labMap.get(id);
  }

  /** Persists a lab record (lab ids are validated names, safe as file names). */
  saveLab(rec: LabRecord): void {
    writeAtomic(this.labFile(rec.lab), JSON.stringify(rec));
    this.labMap.set(rec.lab, rec);
  }

  deleteLab(id: string): void {
    removeFile(this.labFile(id));
    this.labMap.delete(id);
  }

  private labFile(id: string): string {
    return join(this.labsDir, `${id}.json`);
  }
}
