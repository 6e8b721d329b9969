import { Argument, type Command } from "commander";
import type { InterfaceView } from "../../model/views.js";
import { seg } from "../client.js";
import { ctxOf, parseEnd } from "../context.js";

export function registerCarrier(program: Command): void {
  program
    .command("carrier")
    .description("set an interface's carrier (down: the node sees NO-CARRIER)")
    .argument("<lab>")
    .argument("<end>", "NODE:IF")
    .addArgument(new Argument("<state>").choices(["up", "down"]))
    .action(async (lab: string, end: string, state: string, _o, cmd: Command) => {
      const { node, iface } = parseEnd(end);
      const ctx = ctxOf(cmd);
      const i = await ctx.client.put<InterfaceView>(
        `/labs/${seg(lab)}/nodes/${seg(node)}/interfaces/${seg(iface)}/carrier`,
        { state },
      );
      ctx.show(i, () => `${end} carrier ${i.carrier}`);
    });
}
