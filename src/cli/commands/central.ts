import type { Command } from "commander";
import { createLogger } from "../../common/log.js";

const collect = (v: string, all: string[]) => [...all, v];
/** Loopback only unless told: the hosts' agents need an address they reach (--nb-listen). */
const DEFAULT_NB_LISTEN = "ptcp:6641:127.0.0.1";
const DEFAULT_SB_LISTEN = "ptcp:6642:127.0.0.1";

export function registerCentral(program: Command): void {
  const central = program
    .command("central")
    .description("OVN's central part for the ovn backend (on one host of a multi-host lab)");
  central
    .command("serve")
    .description(
      "run OVN's northbound and southbound databases and ovn-northd in the foreground (they stop with it); " +
        "point every host's agent at them with ARCHETYPE_AGENT_OVN_NB / ARCHETYPE_AGENT_OVN_SB",
    )
    .option("--dir <dir>", "where the databases, sockets and logs live", "/var/lib/archetype-network/central")
    .option(
      "--nb-listen <listener>",
      `where the hosts reach the NB database (repeatable; default ${DEFAULT_NB_LISTEN})`,
      collect,
      [],
    )
    .option(
      "--sb-listen <listener>",
      `where the hosts reach the SB database (repeatable; default ${DEFAULT_SB_LISTEN})`,
      collect,
      [],
    )
    .option("--log-level <level>", "trace, debug, info, warn or error", "info")
    .action(async (opts: { dir: string; nbListen: string[]; sbListen: string[]; logLevel: string }) => {
      const logger = createLogger(opts.logLevel);
      const { startCentral } = await import("../../central/central.js");
      const nbListen = opts.nbListen.length > 0 ? opts.nbListen : [DEFAULT_NB_LISTEN];
      const sbListen = opts.sbListen.length > 0 ? opts.sbListen : [DEFAULT_SB_LISTEN];
      const c = await startCentral({ dir: opts.dir, nbListen, sbListen, logger });
      process.stdout.write(
        `archnet: OVN central running: NB ${[c.nb, ...nbListen].join(", ")}; ` +
          `SB ${[c.sb, ...sbListen].join(", ")}; logs in ${opts.dir}\n`,
      );
      const why = await new Promise<string | undefined>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, "stopping");
          resolve(undefined);
        };
        process.once("SIGINT", () => stop("SIGINT"));
        process.once("SIGTERM", () => stop("SIGTERM"));
        c.exited.then(resolve);
      });
      await c.close();
      if (why !== undefined) {
        process.stderr.write(`archnet: ${why}\n`);
        process.exitCode = 1;
      }
      process.stdout.write("archnet: OVN central stopped\n");
    });
}
