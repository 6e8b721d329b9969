import type { Command } from "commander";
import type { LabSummary, SwitchStatusView, TunnelView } from "../../model/views.js";
import { ctxOf } from "../context.js";
import { renderTable } from "../table.js";

interface Health {
  status: string;
  version: string;
  backend: string;
  datapath: string | null;
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("the agent's health and a summary of the switch")
    .action(async (_o, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const health = await ctx.client.get<Health>("/health");
      const [ovs, labs, overlay] = await Promise.all([
        ctx.client.get<SwitchStatusView>("/ovs/status"),
        ctx.client.get<LabSummary[]>("/labs"),
        ctx.client.get<{ tunnels: TunnelView[] }>("/overlay/status"),
      ]);
      ctx.show({ health, ovs, labs, overlay }, () => {
        const down = ovs.ports.filter((p) => p.link_state !== null && p.link_state !== "up").length;
        return renderTable(
          ["", ""],
          [
            ["agent", `${ctx.client.base} (version ${health.version}, ${health.status})`],
            ["backend", health.backend],
            ["datapath", health.datapath],
            ["bridge", `${ovs.bridge ?? "-"} (fail_mode ${ovs.fail_mode ?? "-"})`],
            ["switch", ovs.connected ? "connected" : "NOT CONNECTED"],
            ["ports", `${ovs.ports.length}${down > 0 ? ` (${down} not up)` : ""}`],
            ["labs", `${labs.length} (${labs.reduce((n, l) => n + l.links, 0)} links)`],
            ["overlay", `${overlay.tunnels.length} tunnels`],
          ],
        )
          .split("\n")
          .slice(1)
          .join("\n");
      });
    });
}
