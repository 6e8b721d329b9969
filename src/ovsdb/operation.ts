import type { Condition } from "./condition.js";
import type { Mutation } from "./mutation.js";
import type { Uuid, Value } from "./value.js";

/** Database operations (RFC 7047 section 5.2) as plain data, sent together by `transact`. */
export type RowData = Record<string, Value>;

export interface InsertOp {
  op: "insert";
  table: string;
  row: RowData;
  "uuid-name"?: string;
}
export interface SelectOp {
  op: "select";
  table: string;
  where: Condition[];
  columns?: string[];
}
export interface UpdateOp {
  op: "update";
  table: string;
  where: Condition[];
  row: RowData;
}
export interface MutateOp {
  op: "mutate";
  table: string;
  where: Condition[];
  mutations: Mutation[];
}
export interface DeleteOp {
  op: "delete";
  table: string;
  where: Condition[];
}
export interface WaitOp {
  op: "wait";
  table: string;
  where: Condition[];
  columns: string[];
  until: "==" | "!=";
  rows: RowData[];
  timeout?: number;
}
export interface CommentOp {
  op: "comment";
  comment: string;
}
export interface AssertOp {
  op: "assert";
  lock: string;
}

export type Operation = InsertOp | SelectOp | UpdateOp | MutateOp | DeleteOp | WaitOp | CommentOp | AssertOp;

/** One element of a transact result; `error`/`details` are set when the operation failed. */
export interface OperationResult {
  uuid?: Uuid;
  count?: number;
  rows?: RowData[];
  error?: string;
  details?: string;
}

export function insert(table: string, row: RowData, uuidName?: string): InsertOp {
  return uuidName === undefined
    ? { op: "insert", table, row }
    : { op: "insert", table, row, "uuid-name": uuidName };
}

export function select(table: string, where: Condition[], columns?: string[]): SelectOp {
  return columns === undefined ? { op: "select", table, where } : { op: "select", table, where, columns };
}

export function update(table: string, where: Condition[], row: RowData): UpdateOp {
  return { op: "update", table, where, row };
}

export function mutate(table: string, where: Condition[], mutations: Mutation[]): MutateOp {
  return { op: "mutate", table, where, mutations };
}

export function del(table: string, where: Condition[]): DeleteOp {
  return { op: "delete", table, where };
}

/** Aborts the transaction unless the selected rows' `columns` are (`==`) or are not (`!=`) `rows`. */
export function wait(
  table: string,
  where: Condition[],
  columns: string[],
  until: "==" | "!=",
  rows: RowData[],
  timeout?: number,
): WaitOp {
  const op: WaitOp = { op: "wait", table, where, columns, until, rows };
  if (timeout !== undefined) op.timeout = timeout;
  return op;
}

/** Written to the server's log with the transaction. */
export function comment(text: string): CommentOp {
  return { op: "comment", comment: text };
}
