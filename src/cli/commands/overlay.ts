import { type Command, Option } from "commander";
import type { OverlaySpec, TunnelView } from "../../model/views.js";
import { seg } from "../client.js";
import { ctxOf, parseEnd, parseIntOption } from "../context.js";
import { renderTable } from "../table.js";

export function renderTunnels(tunnels: readonly TunnelView[]): string {
  if (tunnels.length === 0) return "no overlay links";
  return renderTable(
    ["LAB", "LINK", "END", "VNI", "VLAN", "PORT", "LOCAL", "REMOTE", "STATE", "RX", "TX", "DROPS"],
    tunnels.map((t) => [
      t.lab,
      t.link,
      `${t.node}:${t.interface}`,
      t.vni,
      t.vlan,
      t.port,
      t.local_ip,
      t.remote_ip,
      t.state,
      t.rx_packets,
      t.tx_packets,
      t.drops,
    ]),
  );
}

export function registerOverlay(program: Command): void {
  const overlay = program.command("overlay").description("cross-host VXLAN links");

  overlay
    .command("ls")
    .description("every overlay link and its counters")
    .action(async (_o, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const answer = await ctx.client.get<{ tunnels: TunnelView[] }>("/overlay/status");
      ctx.show(answer, () => renderTunnels(answer.tunnels));
    });

  overlay
    .command("add")
    .description("attach NODE:IF of a lab to a VXLAN tunnel (run on both hosts with the same link and VNI)")
    .argument("<lab>")
    .argument("<link>", "link id, the same on both hosts")
    .argument("<end>", "the local NODE:IF")
    .addOption(
      new Option("--vni <n>", "VXLAN network identifier")
        .argParser(parseIntOption("--vni"))
        .makeOptionMandatory(),
    )
    .addOption(new Option("--local-ip <ip>", "this host's tunnel IPv4 address").makeOptionMandatory())
    .addOption(new Option("--remote-ip <ip>", "the other host's tunnel IPv4 address").makeOptionMandatory())
    .addOption(new Option("--mtu <n>", "MTU of the node's interface").argParser(parseIntOption("--mtu")))
    .option("--no-wait", "answer once committed, before ovs-vswitchd has created the VXLAN port")
    .action(
      async (
        lab: string,
        link: string,
        end: string,
        opts: { vni: number; localIp: string; remoteIp: string; mtu?: number; wait: boolean },
        cmd: Command,
      ) => {
        const { node, iface } = parseEnd(end);
        const ctx = ctxOf(cmd);
        const spec: OverlaySpec = {
          lab,
          link,
          node,
          interface: iface,
          vni: opts.vni,
          local_ip: opts.localIp,
          remote_ip: opts.remoteIp,
          ...(opts.mtu === undefined ? {} : { mtu: opts.mtu }),
        };
        const t = await ctx.client.post<TunnelView>(`/overlay/links${opts.wait ? "?wait=true" : ""}`, spec);
        ctx.show(t, () => renderTunnels([t]));
      },
    );

  overlay
    .command("rm")
    .description("detach an overlay link")
    .argument("<lab>")
    .argument("<link>")
    .action(async (lab: string, link: string, _o, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const answer = await ctx.client.delete<unknown>(`/overlay/links/${seg(lab)}/${seg(link)}`);
      ctx.show(answer, () => `removed overlay link ${link} of lab ${lab}`);
    });
}
