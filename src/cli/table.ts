/** Aligned text tables for human output. */
export type Cell = string | number | boolean | null | undefined;

const text = (c: Cell): string => (c === null || c === undefined || c === "" ? "-" : String(c));

/** Columns padded to their widest cell, two spaces apart; no trailing spaces. */
export function renderTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const cells = [headers.map(String), ...rows.map((r) => headers.map((_, i) => text(r[i])))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
