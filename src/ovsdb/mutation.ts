import type { Atom, OvsMap, OvsSet, Value } from "./value.js";

/** A `mutate` mutation (RFC 7047 section 5.1): `[column, mutator, value]`. */
export type Mutator = "+=" | "-=" | "*=" | "/=" | "%=" | "insert" | "delete";
export type Mutation = [column: string, mutator: Mutator, value: Value];

/** Adds elements to a set column (or pairs to a map column when given a map). */
export function setInsert(column: string, value: Atom | OvsSet | OvsMap): Mutation {
  return [column, "insert", value];
}

/** Removes elements from a set column (or, for a map column, pairs by map or keys by set). */
export function setDelete(column: string, value: Atom | OvsSet | OvsMap): Mutation {
  return [column, "delete", value];
}

/** Sets keys of a map column that are absent (existing keys are kept, as RFC 7047 says). */
export function mapInsert(column: string, record: Readonly<Record<string, string>>): Mutation {
  return [column, "insert", ["map", Object.entries(record)]];
}

/** Removes keys from a map column, whatever their values. */
export function mapDeleteKeys(column: string, keys: readonly string[]): Mutation {
  return [column, "delete", ["set", [...keys]]];
}

/**
 * Sets these keys of a map column to these values, whatever they were, and leaves its other keys
 * as they are (RFC 7047's insert keeps existing keys: they are deleted first, in the same op).
 */
export function mapSetKeys(column: string, record: Readonly<Record<string, string>>): Mutation[] {
  return [mapDeleteKeys(column, Object.keys(record)), mapInsert(column, record)];
}

/** Sets one key of a map column, or removes it when `value` is undefined. */
export function mapSetKey(column: string, key: string, value: string | undefined): Mutation[] {
  return value === undefined ? [mapDeleteKeys(column, [key])] : mapSetKeys(column, { [key]: value });
}

export function add(column: string, n: number): Mutation {
  return [column, "+=", n];
}

export function sub(column: string, n: number): Mutation {
  return [column, "-=", n];
}
