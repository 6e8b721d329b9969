/**
 * OVSDB wire values (RFC 7047 section 5.1): atoms, `["uuid", u]`, `["named-uuid", n]`,
 * `["set", [...]]` and `["map", [[k, v], ...]]`, with builders and decoders.
 */
export type Uuid = ["uuid", string];
export type NamedUuid = ["named-uuid", string];
export type Atom = string | number | boolean | Uuid | NamedUuid;
export type OvsSet = ["set", Atom[]];
export type OvsMap = ["map", [Atom, Atom][]];
export type Value = Atom | OvsSet | OvsMap;

export function uuid(u: string): Uuid {
  return ["uuid", u];
}

/** A reference, inside one transaction, to a row inserted with `uuid-name` = `name`. */
export function namedUuid(name: string): NamedUuid {
  return ["named-uuid", name];
}

export function set(values: readonly Atom[]): OvsSet {
  return ["set", [...values]];
}

export function map(record: Readonly<Record<string, string | number | boolean>>): OvsMap {
  return ["map", Object.entries(record)];
}

function isTagged(v: unknown, tag: string): v is [string, unknown] {
  return Array.isArray(v) && v.length === 2 && v[0] === tag;
}

export function isSet(v: unknown): v is OvsSet {
  return isTagged(v, "set") && Array.isArray(v[1]);
}

export function isMap(v: unknown): v is OvsMap {
  return isTagged(v, "map") && Array.isArray(v[1]);
}

export function isUuid(v: unknown): v is Uuid {
  return isTagged(v, "uuid") && typeof v[1] === "string";
}

/** A uuid atom becomes its string; other atoms are returned as they are. */
function plainAtom(a: Atom): string | number | boolean {
  if (typeof a === "object") return a[1];
  return a;
}

/** The elements of a set column: a single atom is a one-element set; uuids become strings. */
export function decodeSet<T extends string | number | boolean = string>(v: Value | undefined): T[] {
  if (v === undefined) return [];
  if (isSet(v)) return v[1].map((a) => plainAtom(a) as T);
  if (isMap(v)) return [];
  return [plainAtom(v) as T];
}

/** A map column with string keys and values (numbers and uuids are turned into strings). */
export function decodeMap(v: Value | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isMap(v)) return out;
  for (const [k, val] of v[1]) out[String(plainAtom(k))] = String(plainAtom(val));
  return out;
}

/** A map column with integer values, such as `Interface.statistics`. */
export function decodeIntMap(v: Value | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (!isMap(v)) return out;
  for (const [k, val] of v[1]) out[String(plainAtom(k))] = Number(plainAtom(val));
  return out;
}

export function decodeUuid(v: Value | undefined): string {
  if (isUuid(v)) return v[1];
  throw new TypeError(`not a uuid: ${JSON.stringify(v)}`);
}

/** An optional column (a set with max 1): the empty set is `undefined`. */
export function decodeOptional<T extends string | number | boolean = string>(
  v: Value | undefined,
): T | undefined {
  return decodeSet<T>(v)[0];
}

/** A stable key for an atom so atoms can be compared and used in Maps. */
export function atomKey(a: Atom): string {
  if (typeof a === "object") return `${a[0]}:${a[1]}`;
  return `${typeof a}:${String(a)}`;
}

/** How a column's value changes in an `update2` "modify" (derived from the schema). */
export type ColumnKind = "scalar" | "set" | "map";

/**
 * Applies the diff of an `update2` "modify" to a column's old value (RFC 7047 extension, see
 * ovsdb-server(7)):
 * - set columns with max > 1: the diff lists elements to toggle (absent -> add, present -> remove);
 * - map columns: for each pair, key absent -> insert, same value -> delete, other value -> replace;
 * - scalars and optional scalars (sets with max 1, e.g. `Port.tag`): the diff is the new value
 *   (ovsdb-server 3.1 sends `200` or `["set",[]]`, not a toggle).
 */
export function applyUpdate2Modify(oldValue: Value | undefined, diff: Value, kind: ColumnKind): Value {
  if (kind === "scalar") return diff;
  if (kind === "set") {
    const elements = new Map<string, Atom>();
    for (const a of atomsOf(oldValue)) elements.set(atomKey(a), a);
    for (const a of atomsOf(diff)) {
      const k = atomKey(a);
      if (elements.has(k)) elements.delete(k);
      else elements.set(k, a);
    }
    return ["set", [...elements.values()]];
  }
  const pairs = new Map<string, [Atom, Atom]>();
  if (isMap(oldValue)) for (const p of oldValue[1]) pairs.set(atomKey(p[0]), p);
  if (isMap(diff)) {
    for (const [k, v] of diff[1]) {
      const key = atomKey(k);
      const old = pairs.get(key);
      if (old !== undefined && atomKey(old[1]) === atomKey(v)) pairs.delete(key);
      else pairs.set(key, [k, v]);
    }
  }
  return ["map", [...pairs.values()]];
}

function atomsOf(v: Value | undefined): Atom[] {
  if (v === undefined || isMap(v)) return [];
  if (isSet(v)) return v[1];
  return [v];
}
