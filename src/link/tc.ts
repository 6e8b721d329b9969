import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { AgentError } from "../common/errors.js";
import { CommandError, run } from "../common/exec.js";
import type { ImpairmentDirection } from "../model/records.js";
import { parseBatchFailures } from "./ip.js";
import { describeNetns, type NetnsRef, netnsPath } from "./netns.js";

/**
 * Traffic control of one device's egress: what an impaired link direction gets on the host end
 * that faces the receiving node. netem for delay, jitter, loss, corruption, duplication and
 * reordering (with its own rate when one is asked too), tbf for a rate alone. Every change is
 * one `tc -batch` for many devices; the qdisc is replaced in place (never deleted first), so
 * traffic is never unimpaired in between.
 */
export type QdiscShape = ImpairmentDirection;

/** The fields only netem does (a rate alone is tbf's). */
export const NETEM_FIELDS = [
  "delay_ms",
  "jitter_ms",
  "loss_pct",
  "corrupt_pct",
  "duplicate_pct",
  "reorder_pct",
] as const satisfies readonly (keyof QdiscShape)[];

export const SHAPE_FIELDS = [...NETEM_FIELDS, "rate_kbit"] as const;

/** netem's queue (packets): deep enough for a long delay at a high rate. */
const NETEM_LIMIT = 10_000;
/** tbf's queue, in time at its rate: TCP keeps the rate without a bloated buffer. */
const TBF_LATENCY_MS = 100;

export function isEmptyShape(s: QdiscShape | undefined): boolean {
  return s === undefined || SHAPE_FIELDS.every((k) => !s[k]);
}

/**
 * A shape as one canonical string (fields in a fixed order, zeros left out; "" for none): two
 * shapes asking the same are the same string, so it can be stored and compared as text.
 */
export function shapeText(s: QdiscShape | undefined): string {
  const fields = SHAPE_FIELDS.filter((k) => s?.[k]).map((k) => [k, s?.[k]] as const);
  return fields.length === 0 ? "" : JSON.stringify(Object.fromEntries(fields));
}

/** A shape back from `shapeText` (anything else, or "", is none). */
export function parseShapeText(text: string): QdiscShape {
  try {
    return text === "" ? {} : shapeFrom(JSON.parse(text));
  } catch {
    return {};
  }
}

/** The known, positive numeric fields of a value (JSON read back from a store): the rest is dropped. */
export function shapeFrom(v: unknown): QdiscShape {
  const out: QdiscShape = {};
  if (typeof v !== "object" || v === null) return out;
  for (const k of SHAPE_FIELDS) {
    const n = (v as Record<string, unknown>)[k];
    if (typeof n === "number" && Number.isFinite(n) && n > 0) out[k] = n;
  }
  return out;
}

export function needsNetem(s: QdiscShape | undefined): boolean {
  return s !== undefined && NETEM_FIELDS.some((k) => !!s[k]);
}

/** A decimal without exponent, at most `places` decimals (tc reads no `1e-7`). */
function decimal(n: number, places: number): string {
  return String(Number(n.toFixed(places)));
}

/** tbf's bucket: a few ms at the rate, and at least two frames of the device's MTU. */
export function tbfBurst(rateKbit: number, mtu: number): number {
  return Math.max(Math.ceil((rateKbit * 1000) / 8 / 250), 2 * (mtu + 18));
}

/**
 * The `tc -batch` line giving `dev` exactly this shape (none: the device's default qdisc back).
 * Every netem option is given, zeros included: netem keeps options a change leaves out.
 */
export function qdiscLine(dev: string, s: QdiscShape | undefined, mtu: number): string[] {
  const head = ["qdisc", "replace", "dev", dev, "root"];
  if (isEmptyShape(s)) return ["qdisc", "del", "dev", dev, "root"];
  const v = s as QdiscShape;
  if (!needsNetem(v)) {
    const rate = v.rate_kbit as number;
    return [
      ...head,
      "tbf",
      "rate",
      `${rate}kbit`,
      "burst",
      String(tbfBurst(rate, mtu)),
      "latency",
      `${TBF_LATENCY_MS}ms`,
    ];
  }
  const ms = (x: number | undefined) => `${decimal(x ?? 0, 3)}ms`;
  const pct = (x: number | undefined) => `${decimal(x ?? 0, 4)}%`;
  return [
    ...head,
    "netem",
    "limit",
    String(NETEM_LIMIT),
    "delay",
    ms(v.delay_ms),
    ms(v.jitter_ms),
    "loss",
    pct(v.loss_pct),
    "duplicate",
    pct(v.duplicate_pct),
    "reorder",
    pct(v.reorder_pct),
    "corrupt",
    pct(v.corrupt_pct),
    "rate",
    v.rate_kbit ? `${v.rate_kbit}kbit` : "0bit",
  ];
}

/** What a device's root qdisc does: a shape (netem, tbf), nothing (a default), or another kind. */
export type RootQdisc =
  | { kind: "none" }
  | { kind: "shape"; shape: QdiscShape }
  | { kind: "other"; qdisc: string };

/** Qdiscs a device has without anyone asking (veths: noqueue). */
const DEFAULTS = new Set(["noqueue", "pfifo_fast", "fq_codel", "mq", "fq", "pfifo", "sfq", "cake"]);

interface TcQdiscJson {
  kind?: string;
  dev?: string;
  root?: boolean;
  options?: Record<string, unknown>;
}

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const sub = (o: Record<string, unknown> | undefined, k: string): Record<string, unknown> | undefined => {
  const v = o?.[k];
  return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
};

/** One `tc -json` qdisc entry read back as a shape (tc prints seconds, fractions and bytes/s). */
export function parseRootQdisc(q: TcQdiscJson): RootQdisc {
  const kind = q.kind ?? "";
  const o = q.options;
  if (kind === "tbf") {
    return { kind: "shape", shape: { rate_kbit: Math.round((num(o?.rate) * 8) / 1000) } };
  }
  if (kind !== "netem")
    return DEFAULTS.has(kind) || kind === "" ? { kind: "none" } : { kind: "other", qdisc: kind };
  const shape: QdiscShape = {};
  const put = (k: keyof QdiscShape, v: number) => {
    if (v > 0) shape[k] = v;
  };
  const delay = sub(o, "delay");
  put("delay_ms", Number((num(delay?.delay) * 1000).toFixed(3)));
  put("jitter_ms", Number((num(delay?.jitter) * 1000).toFixed(3)));
  put("loss_pct", Number((num(sub(o, "loss-random")?.loss) * 100).toFixed(4)));
  put("duplicate_pct", Number((num(sub(o, "duplicate")?.duplicate) * 100).toFixed(4)));
  put("corrupt_pct", Number((num(sub(o, "corrupt")?.corrupt) * 100).toFixed(4)));
  // Reordering happens only with a gap (tc sets 1 when a reorder is asked).
  if (num(o?.gap) > 0) put("reorder_pct", Number((num(sub(o, "reorder")?.reorder) * 100).toFixed(4)));
  put("rate_kbit", Math.round((num(sub(o, "rate")?.rate) * 8) / 1000));
  return { kind: "shape", shape };
}

/**
 * Whether what a device has is the shape wanted, within what the kernel keeps of it (delays in
 * scheduler ticks: 1.5 ms reads back as 1.499 ms).
 */
export function sameShape(want: QdiscShape | undefined, have: RootQdisc | undefined): boolean {
  if (isEmptyShape(want)) return have === undefined || have.kind === "none";
  if (have?.kind !== "shape") return false;
  const w = want as QdiscShape;
  // tbf and netem are different qdiscs even for the same figures.
  if (needsNetem(w) !== needsNetem(have.shape)) return false;
  return SHAPE_FIELDS.every((k) => {
    const a = w[k] ?? 0;
    const b = have.shape[k] ?? 0;
    if (k === "delay_ms" || k === "jitter_ms") return Math.abs(a - b) <= 0.005 + a * 0.001;
    if (k === "rate_kbit") return Math.abs(a - b) <= 1;
    return Math.abs(a - b) <= 0.0005;
  });
}

function tcCommand(args: readonly string[], netns: NetnsRef | undefined): [string, string[]] {
  return netns ? ["nsenter", [`--net=${netnsPath(netns)}`, "tc", ...args]] : ["tc", [...args]];
}

/** The root qdisc of every device of the namespace, by device name (one `tc` process). */
export async function listRootQdiscs(netns: NetnsRef | undefined): Promise<Map<string, RootQdisc>> {
  const [file, argv] = tcCommand(["-json", "qdisc", "show"], netns);
  const { stdout } = await run(file, argv);
  const text = stdout.trim();
  const out = new Map<string, RootQdisc>();
  for (const q of (text === "" ? [] : JSON.parse(text)) as TcQdiscJson[]) {
    if (q.root && q.dev) out.set(q.dev, parseRootQdisc(q));
  }
  return out;
}

/** The root qdisc of one device. */
export async function rootQdisc(dev: string, netns: NetnsRef | undefined): Promise<RootQdisc> {
  const [file, argv] = tcCommand(["-json", "qdisc", "show", "dev", dev], netns);
  const { stdout } = await run(file, argv, { okCodes: [1] });
  const text = stdout.trim();
  const root = ((text === "" ? [] : JSON.parse(text)) as TcQdiscJson[]).find((q) => q.root);
  return root ? parseRootQdisc(root) : { kind: "none" };
}

/** What tc says when the kernel lacks a qdisc kind. */
const UNKNOWN_KIND = /Specified qdisc kind is unknown|Unknown qdisc/i;
/** Deleting a root qdisc that is the device's default already. */
const NOTHING_TO_DELETE =
  /Cannot delete qdisc with handle of zero|Invalid handle|No such file or directory|Cannot find device/i;

/**
 * Runs qdisc lines in one `tc -force -batch -` (inside `netns`): every line is tried, a line
 * removing a qdisc that is not there is fine. A kernel without the qdisc kind is NOT_SUPPORTED.
 */
export async function tcBatch(
  lines: readonly (readonly string[])[],
  netns: NetnsRef | undefined,
): Promise<void> {
  if (lines.length === 0) return;
  const input = `${lines.map((l) => l.join(" ")).join("\n")}\n`;
  const [file, argv] = tcCommand(["-force", "-batch", "-"], netns);
  try {
    await run(file, argv, { input });
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    const failures = parseBatchFailures(e.stderr).filter(
      (f) => !(lines[f.line]?.[1] === "del" && NOTHING_TO_DELETE.test(f.message)),
    );
    if (failures.length === 0 && /Command failed/.test(e.stderr)) return;
    const first = failures[0];
    const where = netns ? ` in ${describeNetns(netns)}` : "";
    const what = first ? `${lines[first.line]?.join(" ")}: ${first.message}` : e.stderr.trim();
    if (UNKNOWN_KIND.test(first?.message ?? e.stderr)) {
      throw new AgentError(
        "NOT_SUPPORTED",
        `the kernel has no such queueing discipline (${what})`,
        "load its module (modprobe sch_netem, modprobe sch_tbf)",
      );
    }
    throw new AgentError("COMMAND_FAILED", `tc -batch${where} failed: ${what}`);
  }
}

let netemWhy: string | undefined | null = null;

/**
 * Why the kernel has no netem, or undefined when it has it: loaded, built in, or a module the
 * kernel loads on first use. Read once (files, no process).
 */
export function netemMissing(): string | undefined {
  if (netemWhy !== null) return netemWhy;
  const kernel = release();
  const has = (file: string) => {
    try {
      return readFileSync(`/lib/modules/${kernel}/${file}`, "utf8").includes("/sch_netem.ko");
    } catch {
      return false;
    }
  };
  netemWhy =
    existsSync("/sys/module/sch_netem") || has("modules.builtin") || has("modules.dep")
      ? undefined
      : `the kernel (${kernel}) has no netem: sch_netem is not loaded, built in or installed as a module`;
  return netemWhy;
}
