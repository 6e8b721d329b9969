import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type Durability, readJson, setAside } from "../common/atomic-file.js";
import { type Logger, silentLogger } from "../common/log.js";
import type {
  LabRecord,
  OverlayRecord,
  PluginEndpointRecord,
  PluginNetworkRecord,
} from "../model/records.js";
import { DocumentWriter } from "./document-writer.js";

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

/** Items of the collections other than labs are only checked to be objects. */
const isRecord = <T>(v: unknown): v is T => isObject(v);

const isLab = (v: unknown): v is LabRecord =>
  isObject(v) &&
  typeof v.lab === "string" &&
  typeof v.group === "number" &&
  isObject(v.nodes) &&
  isObject(v.links);

/**
 * A keyed collection kept as one small JSON file per item in a directory: a change writes only
 * its own item (atomically), so its cost does not grow with the collection (overlay attach and
 * Docker's CreateEndpoint sit on latency-critical paths). A change shows at once (the checks of
 * the next request see it) and its promise resolves once it is on disk; a write that fails
 * puts back what the disk still has, unless a later change of that item is on its way.
 */
class FileCollection<T> {
  private readonly items = new Map<string, T>();
  /** Key -> what its file holds, while changes of it are on their way to disk. */
  private readonly onDisk = new Map<string, T | undefined>();
  /** Key -> number of its latest change on its way. */
  private readonly latest = new Map<string, number>();
  private changes = 0;

  constructor(
    private readonly dir: string,
    private readonly writer: DocumentWriter,
    private readonly loader: Loader,
    valid: (v: unknown) => v is T,
    private readonly durability: Durability,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const [name, item] of loadDir(dir, valid, loader)) this.items.set(decodeURIComponent(name), item);
  }
  /** Earlier versions kept the whole collection in DIR.json: its items become files. */
  async migrate(): Promise<void> {
    const legacy = `${this.dir}.json`;
    if (!existsSync(legacy)) return; // nothing to move (and no flush at every start)
    for (const [k, v] of Object.entries(loadFile(legacy, isObject, this.loader) ?? {})) {
      if (!this.items.has(k)) await this.set(k, v as T);
    }
    await this.writer.write(legacy, null, "power-loss");
  }
  get(key: string): T | undefined {
    return this.items.get(key);
  }
  values(): T[] {
    return [...this.items.values()];
  }
  /** Stores an item; `durability` overrides the collection's for this change. */
  set(key: string, value: T, durability = this.durability): Promise<void> {
    return this.change(key, value, durability);
  }
  delete(key: string): Promise<void> {
    if (!this.items.has(key) && !this.latest.has(key)) return Promise.resolve();
    return this.change(key, undefined, this.durability);
  }
  private async change(key: string, value: T | undefined, durability: Durability): Promise<void> {
    if (!this.latest.has(key)) this.onDisk.set(key, this.items.get(key));
    const n = ++this.changes;
    this.latest.set(key, n);
    this.show(key, value);
    const file = join(this.dir, `${encodeURIComponent(key)}.json`);
    try {
      await this.writer.write(file, value === undefined ? null : JSON.stringify(value), durability);
      this.onDisk.set(key, value);
    } catch (e) {
      if (this.latest.get(key) === n) this.show(key, this.onDisk.get(key));
      throw e;
    } finally {
      if (this.latest.get(key) === n) {
        this.latest.delete(key);
        this.onDisk.delete(key);
      }
    }
  }
  private show(key: string, value: T | undefined): void {
    if (value === undefined) this.items.delete(key);
    else this.items.set(key, value);
  }
}

/**
 * The agent's durable desired state: one file per lab (big labs rewrite only their own file),
 * per overlay link, and per Docker plugin network and endpoint. A change is seen at once and
 * stored off the event loop before its promise resolves: flushed to disk (power loss keeps it),
 * except for records of what a power loss ends anyway (plugin endpoints and spare veths), which
 * only outlive the agent. A write that fails rejects with STATE_WRITE_FAILED and changes
 * nothing. Callers pass records they own; the store keeps the objects it was given.
 */
export class StateStore {
  private readonly labRecords: FileCollection<LabRecord>;
  readonly overlays: FileCollection<OverlayRecord>;
  readonly pluginNetworks: FileCollection<PluginNetworkRecord>;
  readonly pluginEndpoints: FileCollection<PluginEndpointRecord>;
  /** Damaged files moved aside while loading (their new paths). */
  readonly setAside: readonly string[];

  /** Loads the state kept in `dir` (created when missing). */
  static async open(dir: string, opts: { logger?: Logger } = {}): Promise<StateStore> {
    const store = new StateStore(dir, { logger: opts.logger ?? silentLogger(), setAside: [] });
    for (const c of [store.overlays, store.pluginNetworks, store.pluginEndpoints]) await c.migrate();
    return store;
  }

  private constructor(
    readonly dir: string,
    loader: Loader,
  ) {
    this.setAside = loader.setAside;
    const writer = new DocumentWriter();
    const collection = <T>(name: string, valid: (v: unknown) => v is T, durability: Durability) =>
      new FileCollection<T>(join(dir, name), writer, loader, valid, durability);
    // Lab ids are validated names: a lab's file is its id.
    this.labRecords = collection("labs", isLab, "power-loss");
    this.overlays = collection("overlays", isRecord<OverlayRecord>, "power-loss");
    this.pluginNetworks = collection("plugin-networks", isRecord<PluginNetworkRecord>, "power-loss");
    // An endpoint is a veth Docker asked for: neither outlives the machine (after a reboot
    // Docker makes new endpoints, and recover() drops records whose veth is gone), while
    // Docker waits for every change of them while it starts a container.
    this.pluginEndpoints = collection("plugin-endpoints", isRecord<PluginEndpointRecord>, "crash");
  }

  labs(): LabRecord[] {
    return this.labRecords.values();
  }

  lab(id: string): LabRecord | undefined {
    return this.labRecords.get(id);
  }

  saveLab(rec: LabRecord): Promise<void> {
    return this.labRecords.set(rec.lab, rec);
  }

  deleteLab(id: string): Promise<void> {
    return this.labRecords.delete(id);
  }
}
