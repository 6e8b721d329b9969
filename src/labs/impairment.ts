import { capability, type NetworkBackend } from "../backends/network-backend.js";
import { AgentError } from "../common/errors.js";
import { NETEM_FIELDS, SHAPE_FIELDS, shapeText } from "../link/index.js";
import type { Impairment, ImpairmentDirection } from "../model/records.js";

/**
 * Impairments as the API takes them: validated field by field (a bad one is a typed 400 before
 * anything changes), rounded to what tc applies, zeros dropped. Absent means none.
 */
export const DIRECTIONS = ["a_to_b", "b_to_a"] as const;
export type Direction = (typeof DIRECTIONS)[number];

interface FieldRule {
  max: number;
  /** Decimals kept (tc's resolution): 0 = whole numbers only. */
  places: number;
  min?: number;
  what: string;
}

export const FIELD_RULES: Record<keyof ImpairmentDirection, FieldRule> = {
  delay_ms: { max: 60_000, places: 3, what: "milliseconds" },
  jitter_ms: { max: 60_000, places: 3, what: "milliseconds" },
  loss_pct: { max: 100, places: 4, what: "percent" },
  corrupt_pct: { max: 100, places: 4, what: "percent" },
  duplicate_pct: { max: 100, places: 4, what: "percent" },
  reorder_pct: { max: 100, places: 4, what: "percent" },
  rate_kbit: { min: 8, max: 100_000_000, places: 0, what: "kbit/s (1 kbit = 1000 bits)" },
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function bad(message: string): AgentError {
  return new AgentError(
    "BAD_REQUEST",
    message,
    'e.g. {"a_to_b": {"delay_ms": 20, "loss_pct": 1}, "b_to_a": {"rate_kbit": 10000}}',
  );
}

function validateDirection(v: unknown, where: string): ImpairmentDirection | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) throw bad(`${where} must be an object of impairment fields`);
  const out: ImpairmentDirection = {};
  for (const [k, raw] of Object.entries(v)) {
    const rule = FIELD_RULES[k as keyof ImpairmentDirection];
    if (!Object.hasOwn(FIELD_RULES, k) || !rule) {
      throw bad(`${where}.${k} is not an impairment field (${SHAPE_FIELDS.join(", ")})`);
    }
    const min = rule.min ?? 0;
    const range = rule.places === 0 ? "a whole number" : "a number";
    if (typeof raw !== "number" || !Number.isFinite(raw) || raw < 0 || raw > rule.max) {
      throw bad(
        `${where}.${k} must be ${range} from ${rule.min === undefined ? 0 : `0 (none) or ${min}`} to ${rule.max} (${rule.what}), got ${JSON.stringify(raw)}`,
      );
    }
    if (rule.places === 0 && !Number.isInteger(raw))
      throw bad(`${where}.${k} must be a whole number, got ${raw}`);
    if (raw !== 0 && raw < min) throw bad(`${where}.${k} must be 0 (none) or at least ${min}, got ${raw}`);
    const rounded = Number(raw.toFixed(rule.places));
    if (rounded > 0) out[k as keyof ImpairmentDirection] = rounded;
  }
  if (out.jitter_ms && !out.delay_ms)
    throw bad(`${where}.jitter_ms needs a delay_ms (jitter varies the delay)`);
  if (out.reorder_pct && !out.delay_ms) {
    throw bad(`${where}.reorder_pct needs a delay_ms (reordered packets are the ones sent without it)`);
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** The impairment of a body, normalized; undefined when it asks for none. */
export function validateImpairment(v: unknown, where = "impairment"): Impairment | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw bad(`${where} must be an object {a_to_b, b_to_a}`);
  for (const k of Object.keys(v)) {
    if (!(DIRECTIONS as readonly string[]).includes(k)) {
      throw bad(`${where}.${k} is not a direction (a_to_b, b_to_a)`);
    }
  }
  const out: Impairment = {};
  for (const d of DIRECTIONS) {
    const dir = validateDirection(v[d], `${where}.${d}`);
    if (dir) out[d] = dir;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** The fields of an impairment that need netem, as `a_to_b.delay_ms` (empty: tbf does it all). */
export function netemFieldsOf(imp: Impairment | undefined): string[] {
  return DIRECTIONS.flatMap((d) =>
    NETEM_FIELDS.filter((k) => (imp?.[d]?.[k] ?? 0) > 0).map((k) => `${d}.${k}`),
  );
}

export function sameImpairment(x: Impairment | undefined, y: Impairment | undefined): boolean {
  return DIRECTIONS.every((d) => shapeText(x?.[d]) === shapeText(y?.[d]));
}

/**
 * Refuses (NOT_SUPPORTED, 501) impairments the backend cannot apply, before anything changes:
 * any without the "impairment" capability, those needing netem where the kernel has none.
 */
export function requireShaping(
  backend: NetworkBackend,
  impairments: readonly (Impairment | undefined)[],
): void {
  if (impairments.every((i) => i === undefined)) return;
  refuseWithoutNetem(capability(backend, "impairment").netemMissing(), impairments);
}

/** NOT_SUPPORTED (501) for the impairments that need netem when `missing` says why it is absent. */
export function refuseWithoutNetem(
  missing: string | undefined,
  impairments: readonly (Impairment | undefined)[],
): void {
  const netem = [...new Set(impairments.flatMap(netemFieldsOf))];
  if (netem.length === 0 || !missing) return;
  throw new AgentError(
    "NOT_SUPPORTED",
    `${netem.join(", ")}: ${missing}; nothing was changed`,
    "load sch_netem (modprobe sch_netem), or ask for rate_kbit alone",
  );
}
