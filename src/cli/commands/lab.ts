import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { LabChanges, LabSpec, LabSummary, LabView, LinkView } from "../../model/views.js";
import { seg, UsageError } from "../client.js";
import { ctxOf } from "../context.js";
import { renderTable } from "../table.js";

export function renderLinks(links: readonly LinkView[]): string {
  if (links.length === 0) return "no links";
  return renderTable(
    ["ID", "A", "B", "MODE", "VLAN", "STATE"],
    links.map((l) => [l.id, l.a, l.b, l.mode, l.vlan, l.state]),
  );
}

export function renderLab(lab: LabView): string {
  const rows = lab.nodes.flatMap((n) =>
    n.interfaces.length === 0
      ? [[n.name, n.netns, "", "", "", "", "", ""]]
      : n.interfaces.map((i) => [
          n.name,
          n.netns ?? n.origin,
          i.name,
          i.host_port,
          i.mtu,
          i.vlan,
          // Why a cable the API left in is down: "up (peer_down)", "up (no_carrier)".
          !i.present
            ? "absent"
            : i.carrier === "up" && i.oper_state !== "up"
              ? `up (${i.oper_state})`
              : i.carrier,
          i.link,
        ]),
  );
  const nodes =
    rows.length === 0
      ? "no nodes"
      : renderTable(["NODE", "NETNS", "INTERFACE", "HOST PORT", "MTU", "VLAN", "CARRIER", "LINK"], rows);
  const lost = lab.nodes
    .filter((n) => n.state === "lost")
    .map((n) => `\nnode ${n.name} is lost: ${n.reason}`);
  return `lab ${lab.lab}: ${lab.nodes.length} nodes, ${lab.links.length} links\n\n${nodes}${lost.join("")}\n\n${renderLinks(lab.links)}`;
}

function renderChanges(c: LabChanges): string {
  const parts: string[] = [];
  const add = (label: string, list: string[]) => {
    if (list.length > 0) parts.push(`${label}: ${list.join(", ")}`);
  };
  add("nodes added", c.nodes_added);
  add("nodes removed", c.nodes_removed);
  add("interfaces added", c.interfaces_added);
  add("interfaces removed", c.interfaces_removed);
  add("links added", c.links_added);
  add("links removed", c.links_removed);
  add("overlay links detached", c.overlays_detached);
  return parts.length === 0 ? "no changes" : parts.join("\n");
}

function readSpec(file: string): LabSpec {
  let text: string;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as LabSpec;
  } catch (e) {
    throw new UsageError(
      `${file === "-" ? "stdin" : file} is not JSON: ${(e as Error).message}`,
      'e.g. {"nodes":[],"links":[]}',
    );
  }
}

export function registerLab(program: Command): void {
  const lab = program.command("lab").description("labs: list, show, apply, remove");

  lab
    .command("ls")
    .description("list labs")
    .action(async (_o, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const labs = await ctx.client.get<LabSummary[]>("/labs");
      ctx.show(labs, () =>
        labs.length === 0
          ? "no labs"
          : renderTable(
              ["LAB", "NODES", "LINKS"],
              labs.map((l) => [l.lab, l.nodes, l.links]),
            ),
      );
    });

  lab
    .command("show")
    .description("a lab's nodes, interfaces and links")
    .argument("<lab>")
    .action(async (name: string, _o, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const view = await ctx.client.get<LabView>(`/labs/${seg(name)}`);
      ctx.show(view, () => renderLab(view));
    });

  lab
    .command("rm")
    .description("remove a lab and everything of it")
    .argument("<lab>")
    .action(async (name: string, _o, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const answer = await ctx.client.delete<unknown>(`/labs/${seg(name)}`);
      ctx.show(answer, () => `removed lab ${name}`);
    });

  lab
    .command("apply")
    .description("converge a lab to a JSON spec (declarative: what is absent is removed)")
    .argument("<lab>")
    .argument("<file>", "JSON file of {nodes, links}, or - for stdin")
    .action(async (name: string, file: string, _o, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const spec = readSpec(file);
      const answer = await ctx.client.put<LabView & { changes: LabChanges }>(`/labs/${seg(name)}`, spec);
      ctx.show(answer, () => `${renderChanges(answer.changes)}\n\n${renderLab(answer)}`);
    });
}
