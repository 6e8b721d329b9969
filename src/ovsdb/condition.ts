import type { Value } from "./value.js";

/** A `where` clause element (RFC 7047 section 5.1): `[column, function, value]`. */
export type ConditionFunction = "<" | "<=" | "==" | "!=" | ">=" | ">" | "includes" | "excludes";
export type Condition = [column: string, fn: ConditionFunction, value: Value];

export function eq(column: string, value: Value): Condition {
  return [column, "==", value];
}

export function ne(column: string, value: Value): Condition {
  return [column, "!=", value];
}

export function includes(column: string, value: Value): Condition {
  return [column, "includes", value];
}

export function excludes(column: string, value: Value): Condition {
  return [column, "excludes", value];
}

/** The row whose `_uuid` is `uuid`. */
export function eqUuid(uuid: string): Condition {
  return ["_uuid", "==", ["uuid", uuid]];
}
