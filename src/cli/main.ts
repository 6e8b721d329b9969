#!/usr/bin/env node
/** `archnet`: the agent (`serve`), host checks, and a client of the agent's HTTP API. */
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { isAgentError } from "../common/errors.js";
import { ClientError, DEFAULT_URL, UsageError } from "./client.js";
import { registerCapture } from "./commands/capture.js";
import { registerCarrier } from "./commands/carrier.js";
import { registerCentral } from "./commands/central.js";
import { registerCleanup } from "./commands/cleanup.js";
import { registerHost } from "./commands/host.js";
import { registerLab } from "./commands/lab.js";
import { registerLink } from "./commands/link.js";
import { registerOverlay } from "./commands/overlay.js";
import { registerServe } from "./commands/serve.js";
import { registerStatus } from "./commands/status.js";

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

export function buildProgram(): Command {
  const program = new Command("archnet")
    .description("archetype-network: lab container networking on one OVS bridge")
    .version(VERSION, "-V, --version")
    .addOption(new Option("--url <url>", "the agent's API").env("ARCHETYPE_AGENT_URL").default(DEFAULT_URL))
    .addOption(
      new Option("--token <token>", "the agent's secret (other users see it in ps: prefer the variable)").env(
        "ARCHETYPE_AGENT_SECRET",
      ),
    )
    .addOption(
      new Option("--token-file <file>", "file holding the agent's secret").env("ARCHETYPE_AGENT_SECRET_FILE"),
    )
    .option("--json", "print the agent's raw JSON answer")
    .showHelpAfterError("(run archnet --help for usage)")
    .exitOverride();
  registerServe(program);
  registerCentral(program);
  registerStatus(program);
  registerHost(program);
  registerLab(program);
  registerLink(program);
  registerCarrier(program);
  registerCapture(program);
  registerOverlay(program);
  registerCleanup(program);
  return program;
}

function fail(message: string, hint: string | undefined, code: number): void {
  process.stderr.write(`error: ${message}\n`);
  if (hint) process.stderr.write(`hint: ${hint}\n`);
  process.exitCode = code;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander printed the message; help and --version are not errors
      process.exitCode = e.exitCode === 0 ? 0 : 2;
    } else if (e instanceof UsageError) {
      fail(e.message, e.hint, 2);
    } else if (e instanceof ClientError) {
      fail(e.message, e.hint, 1);
    } else if (isAgentError(e)) {
      fail(e.message, e.hint, e.code === "INVALID_CONFIG" ? 2 : 1);
    } else {
      fail(e instanceof Error ? e.message : String(e), undefined, 1);
    }
  }
}

await main(process.argv);
