import type { Command } from "commander";
import { Argument, Option } from "commander";
import type { LinkView } from "../../model/views.js";
import { seg } from "../client.js";
import { ctxOf, parseEnd } from "../context.js";
import { renderLinks } from "./lab.js";

export function registerLink(program: Command): void {
  const link = program.command("link").description("links between node interfaces");

  link
    .command("add")
    .description("link two interfaces (NODE:IF NODE:IF)")
    .argument("<lab>")
    .argument("<a>", "NODE:IF")
    .argument("<b>", "NODE:IF")
    .addOption(new Option("--id <id>", "link id (default: derived from the ends)"))
    .action(async (lab: string, a: string, b: string, opts: { id?: string }, cmd: Command) => {
      parseEnd(a);
      parseEnd(b);
      const ctx = ctxOf(cmd);
      const body = opts.id === undefined ? { a, b } : { a, b, id: opts.id };
      const l = await ctx.client.post<LinkView>(`/labs/${seg(lab)}/links`, body);
      ctx.show(l, () => `linked ${l.a} <-> ${l.b} as ${l.id} (vlan ${l.vlan ?? "-"}, ${l.state})`);
    });

  link
    .command("rm")
    .description("remove a link (both ends are isolated again)")
    .argument("<lab>")
    .argument("<id>")
    .action(async (lab: string, id: string, _o, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const answer = await ctx.client.delete<unknown>(`/labs/${seg(lab)}/links/${seg(id)}`);
      ctx.show(answer, () => `removed link ${id} of lab ${lab}`);
    });

  link
    .command("ls")
    .description("a lab's links")
    .argument("<lab>")
    .action(async (lab: string, _o, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const links = await ctx.client.get<LinkView[]>(`/labs/${seg(lab)}/links`);
      ctx.show(links, () => renderLinks(links));
    });

  link
    .command("carrier")
    .description("set the carrier of both ends of a link")
    .argument("<lab>")
    .argument("<id>")
    .addArgument(new Argument("<state>").choices(["up", "down"]))
    .action(async (lab: string, id: string, state: string, _o, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const l = await ctx.client.put<LinkView>(`/labs/${seg(lab)}/links/${seg(id)}/carrier`, { state });
      ctx.show(l, () => `link ${l.id} (${l.a} <-> ${l.b}) carrier ${state}: ${l.state}`);
    });
}
