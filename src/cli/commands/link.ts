import type { Command } from "commander";
import { Argument, InvalidArgumentError, Option } from "commander";
import type {
  Impairment,
  ImpairmentDirection,
  ImpairmentView,
  InterfaceCounters,
  LinkView,
} from "../../model/views.js";
import { seg, UsageError } from "../client.js";
import { ctxOf, parseEnd, parseIntOption } from "../context.js";
import { renderTable } from "../table.js";
import { formatBps, formatKbit, parseKbit, parseMs, parsePct } from "../units.js";

export function registerLink(program: Command): void {
  const link = program.command("link").description("links between node interfaces");

  link
    .command("add")
    .description("link two interfaces (NODE:IF NODE:IF)")
    .argument("<lab>")
    .argument("<a>", "NODE:IF")
    .argument("<b>", "NODE:IF")
    .addOption(new Option("--id <id>", "link id (default: derived from the ends)"))
    .addOption(
      new Option(
        "--wire",
        "a cable: every frame crosses unchanged (802.1Q, QinQ, LLDP, LACP, STP)",
      ).conflicts("vlan"),
    )
    .addOption(new Option("--vlan", "the ends share a VLAN (tagged frames are dropped)"))
    .addHelpText(
      "after",
      "\nWithout --wire or --vlan the agent's default applies (ARCHETYPE_AGENT_LINK_MODE, vlan unless set).",
    )
    .action(
      async (
        lab: string,
        a: string,
        b: string,
        opts: { id?: string; wire?: boolean; vlan?: boolean },
        cmd: Command,
      ) => {
        parseEnd(a);
        parseEnd(b);
        const ctx = ctxOf(cmd);
        const mode = opts.wire ? "wire" : opts.vlan ? "vlan" : undefined;
        const body = { a, b, ...(opts.id === undefined ? {} : { id: opts.id }), ...(mode ? { mode } : {}) };
        const l = await ctx.client.post<LinkView>(`/labs/${seg(lab)}/links`, body);
        ctx.show(
          l,
          () =>
            `linked ${l.a} <-> ${l.b} as ${l.id} (${l.mode === "wire" ? "wire" : `vlan ${l.vlan ?? "-"}`}, ${l.state})`,
        );
      },
    );

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
    .description("a lab's links, with both ends' packet counters (from the node's side) and impairments")
    .argument("<lab>")
    .action(async (lab: string, _o, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const links = await ctx.client.get<LinkView[]>(`/labs/${seg(lab)}/links`);
      ctx.show(links, () => renderLinkCounters(links));
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

  registerImpair(link);
  registerWatch(link);
}

type Dir = "a_to_b" | "b_to_a";
const SHAPE_OPTIONS = [
  ["delay", "delay_ms"],
  ["jitter", "jitter_ms"],
  ["loss", "loss_pct"],
  ["corrupt", "corrupt_pct"],
  ["duplicate", "duplicate_pct"],
  ["reorder", "reorder_pct"],
  ["rate", "rate_kbit"],
] as const;

/** One direction as tc would say it: `delay 20ms ±5ms loss 1% rate 10Mbit`; `none`. */
export function describeDirection(d: ImpairmentDirection | undefined): string {
  if (!d || Object.keys(d).length === 0) return "none";
  const parts: string[] = [];
  if (d.delay_ms) parts.push(`delay ${d.delay_ms}ms${d.jitter_ms ? ` ±${d.jitter_ms}ms` : ""}`);
  if (d.loss_pct) parts.push(`loss ${d.loss_pct}%`);
  if (d.corrupt_pct) parts.push(`corrupt ${d.corrupt_pct}%`);
  if (d.duplicate_pct) parts.push(`duplicate ${d.duplicate_pct}%`);
  if (d.reorder_pct) parts.push(`reorder ${d.reorder_pct}%`);
  if (d.rate_kbit) parts.push(`rate ${formatKbit(d.rate_kbit)}`);
  return parts.join(" ");
}

/** A link's impairment in a table cell: `a>b delay 20ms; b>a rate 10Mbit`. */
function impairmentCell(imp: Impairment | undefined): string {
  const parts: string[] = [];
  if (imp?.a_to_b) parts.push(`a>b ${describeDirection(imp.a_to_b)}`);
  if (imp?.b_to_a) parts.push(`b>a ${describeDirection(imp.b_to_a)}`);
  return parts.join("; ");
}

function renderImpairment(v: ImpairmentView): string {
  const line = (dir: Dir, from: string, to: string) => {
    const asked = describeDirection(v[dir]);
    const applied = v.applied ? describeDirection(v.applied[dir]) : undefined;
    const note =
      applied === undefined
        ? " (pending: applied once both ends exist)"
        : applied === asked
          ? ""
          : ` (tc has: ${applied})`;
    return `  ${from} -> ${to}: ${asked}${note}`;
  };
  return [
    `link ${v.id} of lab ${v.lab}${v.in_sync ? "" : " (not in sync yet: the agent's reconcile repairs it)"}`,
    line("a_to_b", v.a, v.b),
    line("b_to_a", v.b, v.a),
  ].join("\n");
}

const sum = (c: InterfaceCounters | null | undefined, keys: readonly (keyof InterfaceCounters)[]) =>
  c ? keys.reduce((n, k) => n + c[k], 0) : undefined;

/** `archnet link ls`: links with their impairment and both ends' packet counters. */
export function renderLinkCounters(links: readonly LinkView[]): string {
  if (links.length === 0) return "no links";
  return renderTable(
    [
      "ID",
      "A",
      "B",
      "MODE",
      "VLAN",
      "STATE",
      "A RX",
      "A TX",
      "B RX",
      "B TX",
      "DROPS",
      "ERRORS",
      "IMPAIRMENT",
    ],
    links.map((l) => {
      const a = l.counters?.a;
      const b = l.counters?.b;
      const drops = (c: InterfaceCounters | null | undefined) => sum(c, ["rx_dropped", "tx_dropped"]);
      const errors = (c: InterfaceCounters | null | undefined) => sum(c, ["rx_errors", "tx_errors"]);
      const both = (f: typeof drops) => (a || b ? (f(a) ?? 0) + (f(b) ?? 0) : undefined);
      return [
        l.id,
        l.a,
        l.b,
        l.mode,
        l.vlan,
        l.state,
        a?.rx_packets,
        a?.tx_packets,
        b?.rx_packets,
        b?.tx_packets,
        both(drops),
        both(errors),
        impairmentCell(l.impairment),
      ];
    }),
  );
}

interface Rate {
  bps: number;
  pps: number;
}
interface EndRates {
  rx: Rate;
  tx: Rate;
  dropped: number;
}
interface Seen {
  c: InterfaceCounters;
  t: number;
  rates?: EndRates;
}

/** How long counters may stand still before a rate reads 0 (the switch refreshes every 5 s). */
const STILL_MS = 11_000;

/**
 * Rates of link ends from successive readings: over the time between two readings whose counters
 * differ (the switch refreshes them every 5 s, so equal readings in between say nothing).
 */
export class LinkRates {
  private readonly seen = new Map<string, Seen>();

  update(links: readonly LinkView[], now: number): Map<string, { a?: EndRates; b?: EndRates }> {
    const out = new Map<string, { a?: EndRates; b?: EndRates }>();
    for (const l of links) {
      const ends: { a?: EndRates; b?: EndRates } = {};
      for (const e of ["a", "b"] as const) {
        const c = l.counters?.[e];
        if (!c) continue;
        const key = `${l.id}/${e}`;
        const prev = this.seen.get(key);
        if (!prev) {
          this.seen.set(key, { c, t: now });
          continue;
        }
        const same = (Object.keys(c) as (keyof InterfaceCounters)[]).every((k) => c[k] === prev.c[k]);
        if (same) {
          if (now - prev.t > STILL_MS) prev.rates = idle();
          if (prev.rates) ends[e] = prev.rates;
          continue;
        }
        const dt = Math.max(now - prev.t, 1) / 1000;
        const per = (k: keyof InterfaceCounters, mul = 1) => Math.max(0, ((c[k] - prev.c[k]) * mul) / dt);
        const rates: EndRates = {
          rx: { bps: per("rx_bytes", 8), pps: per("rx_packets") },
          tx: { bps: per("tx_bytes", 8), pps: per("tx_packets") },
          dropped: per("rx_dropped") + per("tx_dropped"),
        };
        this.seen.set(key, { c, t: now, rates });
        ends[e] = rates;
      }
      out.set(l.id, ends);
    }
    return out;
  }
}

function idle(): EndRates {
  return { rx: { bps: 0, pps: 0 }, tx: { bps: 0, pps: 0 }, dropped: 0 };
}

function rateCell(r: Rate | undefined): string {
  return r ? `${formatBps(r.bps)} ${Math.round(r.pps)} pps` : "";
}

export function renderRates(
  links: readonly LinkView[],
  rates: Map<string, { a?: EndRates; b?: EndRates }>,
): string {
  if (links.length === 0) return "no links";
  return renderTable(
    ["ID", "A", "B", "STATE", "A RX", "A TX", "B RX", "B TX", "DROPS/S"],
    links.map((l) => {
      const r = rates.get(l.id) ?? {};
      const drops = r.a || r.b ? Math.round((r.a?.dropped ?? 0) + (r.b?.dropped ?? 0)) : undefined;
      return [
        l.id,
        l.a,
        l.b,
        l.state,
        rateCell(r.a?.rx),
        rateCell(r.a?.tx),
        rateCell(r.b?.rx),
        rateCell(r.b?.tx),
        drops,
      ];
    }),
  );
}

function registerImpair(link: Command): void {
  const cmd = link
    .command("impair")
    .description(
      "shape a link's traffic per direction: delay, jitter, loss, corruption, duplication, reordering (netem), rate (alone: tbf); no option: show it",
    )
    .argument("<lab>")
    .argument("<id>")
    .option("--delay <time>", "added delay, e.g. 20ms", parseMs)
    .option("--jitter <time>", "delay variation, e.g. 5ms (needs --delay)", parseMs)
    .option("--loss <pct>", "packets dropped, e.g. 1%", parsePct)
    .option("--corrupt <pct>", "packets with a bit flipped, e.g. 0.1%", parsePct)
    .option("--duplicate <pct>", "packets sent twice, e.g. 1%", parsePct)
    .option("--reorder <pct>", "packets sent ahead of the delayed ones, e.g. 5% (needs --delay)", parsePct)
    .option("--rate <rate>", "rate limit, e.g. 10mbit, 500kbit", parseKbit)
    .addOption(
      new Option("--direction <dir>", "the direction the options set (a-b: from end a to end b)")
        .choices(["both", "a-b", "b-a"])
        .default("both"),
    )
    .option("--clear", "remove the impairment (of --direction)");
  cmd.action(async (lab: string, id: string, opts: Record<string, unknown>, c: Command) => {
    const ctx = ctxOf(c);
    const path = `/labs/${seg(lab)}/links/${seg(id)}/impairment`;
    const given: ImpairmentDirection = {};
    for (const [opt, field] of SHAPE_OPTIONS) {
      if (opts[opt] !== undefined) given[field] = opts[opt] as number;
    }
    const setting = Object.keys(given).length > 0;
    if (setting && opts.clear)
      throw new UsageError("--clear takes no impairment options", "give either, not both");
    if (!setting && !opts.clear) {
      const v = await ctx.client.get<ImpairmentView>(path);
      ctx.show(v, () => renderImpairment(v));
      return;
    }
    const dirs: Dir[] =
      opts.direction === "a-b" ? ["a_to_b"] : opts.direction === "b-a" ? ["b_to_a"] : ["a_to_b", "b_to_a"];
    let v: ImpairmentView;
    if (!setting && dirs.length === 2) v = await ctx.client.delete<ImpairmentView>(path);
    else {
      // The other direction stays as it is.
      const now = dirs.length === 2 ? undefined : await ctx.client.get<ImpairmentView>(path);
      const body: Impairment = { a_to_b: now?.a_to_b ?? {}, b_to_a: now?.b_to_a ?? {} };
      for (const d of dirs) body[d] = setting ? given : {};
      v = await ctx.client.put<ImpairmentView>(path, body);
    }
    ctx.show(v, () => renderImpairment(v));
  });
}

function registerWatch(link: Command): void {
  link
    .command("watch")
    .description(
      "a lab's links with live rates, refreshed until interrupted (Ctrl-C); the switch counts every 5 s",
    )
    .argument("<lab>")
    .addOption(new Option("--interval <s>", "seconds between refreshes").default(1).argParser(parseSeconds))
    .addOption(
      new Option("--count <n>", "stop after this many refreshes").argParser(parseIntOption("--count")),
    )
    .action(async (lab: string, opts: { interval: number; count?: number }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const rates = new LinkRates();
      const tty = process.stdout.isTTY === true && !ctx.json;
      for (let i = 0; opts.count === undefined || i < opts.count; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, opts.interval * 1000));
        const links = await ctx.client.get<LinkView[]>(`/labs/${seg(lab)}/links`);
        const r = rates.update(links, Date.now());
        if (ctx.json) {
          ctx.out(
            JSON.stringify({ t: Date.now(), links: links.map((l) => ({ ...l, rates: r.get(l.id) ?? {} })) }),
          );
          continue;
        }
        const table = renderRates(links, r);
        const head = `lab ${lab} at ${new Date().toLocaleTimeString()} (rates since the switch's last refresh; it counts every 5 s)`;
        if (tty) process.stdout.write(`\x1b[H\x1b[2J${head}\n\n${table}\n\nCtrl-C ends\n`);
        else ctx.out(`${i > 0 ? "\n" : ""}${head}\n${table}`);
      }
    });
}

function parseSeconds(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || n <= 0)
    throw new InvalidArgumentError("--interval must be a number of seconds above 0");
  return n;
}
