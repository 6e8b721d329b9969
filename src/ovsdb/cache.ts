import { columnKind, type DatabaseSchema, defaultValue } from "./schema.js";
import { applyUpdate2Modify, type Value } from "./value.js";

/**
 * The monitor-fed cache: table -> uuid -> row, rows holding raw wire values (every monitored
 * column, defaults filled in: ovsdb-server omits columns that hold their default value) plus
 * `_uuid`. Fed by the `monitor_cond` initial result and `update2` notifications.
 */
export type Row = { readonly _uuid: string } & { readonly [column: string]: Value };

/** `update2` row update (RFC 7047 extension, ovsdb-server(7)). */
export interface RowUpdate2 {
  initial?: Record<string, Value>;
  insert?: Record<string, Value>;
  modify?: Record<string, Value>;
  delete?: null;
}
export type TableUpdates2 = Record<string, Record<string, RowUpdate2>>;

export interface CacheChange {
  table: string;
  uuid: string;
  kind: "insert" | "modify" | "delete";
  old?: Row;
  new?: Row;
}

export class TableCache {
  private readonly tables = new Map<string, Map<string, Row>>();

  /** @param columns the monitored columns of each table */
  constructor(
    private readonly schema: DatabaseSchema,
    private readonly columns: Readonly<Record<string, readonly string[]>>,
  ) {
    for (const table of Object.keys(columns)) this.tables.set(table, new Map());
  }

  table(name: string): ReadonlyMap<string, Row> {
    return this.tables.get(name) ?? new Map();
  }

  row(table: string, uuid: string): Row | undefined {
    return this.tables.get(table)?.get(uuid);
  }

  /** Applies updates; returns the changes in the order they were applied. */
  apply(updates: TableUpdates2): CacheChange[] {
    const changes: CacheChange[] = [];
    for (const [table, rows] of Object.entries(updates)) {
      let rowsOfTable = this.tables.get(table);
      if (rowsOfTable === undefined) {
        rowsOfTable = new Map();
        this.tables.set(table, rowsOfTable);
      }
      for (const [uuid, u] of Object.entries(rows)) {
        const old = rowsOfTable.get(uuid);
        const fresh = u.initial ?? u.insert;
        if (fresh !== undefined) {
          const row = this.complete(table, uuid, fresh);
          rowsOfTable.set(uuid, row);
          changes.push(
            old === undefined
              ? { table, uuid, kind: "insert", new: row }
              : { table, uuid, kind: "modify", old, new: row },
          );
        } else if (u.modify !== undefined) {
          const row = this.modify(table, uuid, old, u.modify);
          rowsOfTable.set(uuid, row);
          changes.push(
            old === undefined
              ? { table, uuid, kind: "insert", new: row }
              : { table, uuid, kind: "modify", old, new: row },
          );
        } else if ("delete" in u) {
          if (old === undefined) continue;
          rowsOfTable.delete(uuid);
          changes.push({ table, uuid, kind: "delete", old });
        }
      }
    }
    return changes;
  }

  private complete(table: string, uuid: string, values: Record<string, Value>): Row {
    const row: Record<string, Value> = {};
    const tableSchema = this.schema.tables[table];
    for (const c of this.columns[table] ?? []) {
      const s = tableSchema?.columns[c];
      if (s !== undefined) row[c] = defaultValue(s);
    }
    Object.assign(row, values);
    row._uuid = uuid;
    return row as Row;
  }

  private modify(table: string, uuid: string, old: Row | undefined, diff: Record<string, Value>): Row {
    const base = old ?? this.complete(table, uuid, {});
    const row: Record<string, Value> = { ...base };
    const tableSchema = this.schema.tables[table];
    for (const [c, d] of Object.entries(diff)) {
      const s = tableSchema?.columns[c];
      row[c] = applyUpdate2Modify(base[c], d, s === undefined ? "scalar" : columnKind(s));
    }
    return row as Row;
  }
}
