import type { Command } from "commander";
import type { OrphanView } from "../../model/views.js";
import { ctxOf } from "../context.js";
import { renderTable } from "../table.js";

const renderOrphans = (list: readonly OrphanView[]): string =>
  renderTable(
    ["KIND", "NAME", "REASON"],
    list.map((o) => [o.kind, o.name, o.reason]),
  );

export function registerCleanup(program: Command): void {
  program
    .command("cleanup")
    .description("remove orphaned interfaces, ports and records")
    .option("--dry-run", "only list what is orphaned")
    .action(async (opts: { dryRun?: boolean }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      if (opts.dryRun) {
        const answer = await ctx.client.get<{ orphans: OrphanView[] }>("/cleanup/audit");
        ctx.show(answer, () =>
          answer.orphans.length === 0
            ? "nothing is orphaned"
            : `${answer.orphans.length} orphaned (dry run, nothing removed):\n${renderOrphans(answer.orphans)}`,
        );
        return;
      }
      const answer = await ctx.client.post<{ removed: OrphanView[] }>("/cleanup/run");
      ctx.show(answer, () =>
        answer.removed.length === 0
          ? "nothing to remove"
          : `removed ${answer.removed.length}:\n${renderOrphans(answer.removed)}`,
      );
    });
}
