import { type Command, Option } from "commander";
import { createLogger } from "../../common/log.js";
import { loadConfig, SETTINGS } from "../../config/config.js";

export function registerServe(program: Command): void {
  const serve = program
    .command("serve")
    .description(
      "run the agent in the foreground (settings: flags > environment > --config file > defaults; " +
        "the secret: ARCHETYPE_AGENT_SECRET or --secret-file)",
    )
    .option("--config <file>", 'JSON file of settings, e.g. {"ARCHETYPE_AGENT_BRIDGE": "arch-ovs"}');
  // settings without a flag (the secret) come from the environment or a file only
  const flags = SETTINGS.flatMap(({ flag, describe, env }) => {
    if (flag === undefined) return [];
    const option = new Option(`--${flag} <value>`, `${describe} [${env}]`);
    serve.addOption(option);
    return [{ flag, key: option.attributeName() }];
  });

  serve.action(async (opts: Record<string, string | undefined>) => {
    const config = loadConfig({
      file: opts.config,
      env: process.env,
      flags: Object.fromEntries(flags.map((f) => [f.flag, opts[f.key]])),
    });
    const logger = createLogger(config.logLevel);
    const { startAgent } = await import("../../agent.js");
    const agent = await startAgent(config, { logger });
    process.stdout.write(`archnet: agent listening on ${agent.address} (backend ${config.backend})\n`);
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          process.stderr.write(`archnet: ${signal} again, exiting now\n`);
          process.exit(1);
        }
        stopping = true;
        logger.info({ signal }, "stopping");
        agent.close().then(
          () => resolve(),
          (e: unknown) => {
            logger.error({ err: e }, "error while stopping");
            process.exitCode = 1;
            resolve();
          },
        );
      };
      process.on("SIGINT", () => stop("SIGINT"));
      process.on("SIGTERM", () => stop("SIGTERM"));
    });
    process.stdout.write("archnet: stopped\n");
  });
}
