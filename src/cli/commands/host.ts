import { type Command, Option } from "commander";
import { hostChecks, statusOf } from "../host-check.js";
import { renderTable } from "../table.js";

export function registerHost(program: Command): void {
  const host = program.command("host").description("this host (no agent needed)");
  host
    .command("check")
    .description("check that this host can run the agent; exit 1 if something required is missing")
    .addOption(
      new Option("--backend <backend>", "the backend to check for")
        .choices(["ovs", "local", "ovn"])
        .env("ARCHETYPE_AGENT_BACKEND")
        .default("ovs"),
    )
    .action(async (opts: { backend: "ovs" | "local" | "ovn" }, cmd: Command) => {
      const json = cmd.optsWithGlobals<{ json?: boolean }>().json === true;
      const checks = await hostChecks(opts.backend);
      const missing = checks.filter((c) => statusOf(c) === "MISSING");
      if (json) {
        process.stdout.write(`${JSON.stringify({ ok: missing.length === 0, checks }, null, 2)}\n`);
      } else {
        const table = renderTable(
          ["CHECK", "STATUS", "DETAIL", "WHAT TO DO"],
          checks.map((c) => [c.name, statusOf(c), c.detail, c.ok ? "" : c.fix]),
        );
        const verdict =
          missing.length === 0
            ? "this host can run the agent"
            : `missing: ${missing.map((c) => c.name).join(", ")} (see WHAT TO DO)`;
        process.stdout.write(`${table}\n\n${verdict}\n`);
      }
      if (missing.length > 0) process.exitCode = 1;
    });
}
