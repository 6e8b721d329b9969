import type { ColumnKind, Value } from "./value.js";

/** The parts of a database schema (RFC 7047 section 3.2) that the client uses. */
export type AtomicType = "integer" | "real" | "boolean" | "string" | "uuid";

export interface BaseType {
  type: AtomicType;
  [constraint: string]: unknown;
}

export interface ColumnType {
  key: AtomicType | BaseType;
  value?: AtomicType | BaseType;
  min?: number;
  max?: number | "unlimited";
}

export interface ColumnSchema {
  type: AtomicType | ColumnType;
  ephemeral?: boolean;
  mutable?: boolean;
}

export interface TableSchema {
  columns: Record<string, ColumnSchema>;
  isRoot?: boolean;
  maxRows?: number;
  indexes?: string[][];
}

export interface DatabaseSchema {
  name: string;
  version: string;
  cksum?: string;
  tables: Record<string, TableSchema>;
}

function fullType(t: AtomicType | ColumnType): ColumnType {
  return typeof t === "string" ? { key: t } : t;
}

function atomicOf(b: AtomicType | BaseType): AtomicType {
  return typeof b === "string" ? b : b.type;
}

/** map if the column has a value type, set if it may hold more than one element, else scalar. */
export function columnKind(column: ColumnSchema): ColumnKind {
  const t = fullType(column.type);
  if (t.value !== undefined) return "map";
  const max = t.max ?? 1;
  return max === "unlimited" || max > 1 ? "set" : "scalar";
}

/** The value a column holds when a row does not mention it (update2 omits default values). */
export function defaultValue(column: ColumnSchema): Value {
  const t = fullType(column.type);
  if (t.value !== undefined) return ["map", []];
  const min = t.min ?? 1;
  if (min === 0) return ["set", []];
  switch (atomicOf(t.key)) {
    case "integer":
    case "real":
      return 0;
    case "boolean":
      return false;
    case "uuid":
      return ["uuid", "00000000-0000-0000-0000-000000000000"];
    default:
      return "";
  }
}
