/** Command-line values with units, as tc writes them: `20ms`, `1%`, `10mbit`. */
import { InvalidArgumentError } from "commander";

const TIME: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };
const RATE: Record<string, number> = { kbit: 1, mbit: 1000, gbit: 1_000_000 };

/** `20ms`, `1.5ms`, `500us`, `1s`, or a number of ms. */
export function parseMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(us|ms|s)?$/i.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`"${text}" is not a time (e.g. 20ms, 1.5ms, 500us, 1s)`);
  return Number((Number(m[1]) * (TIME[(m[2] ?? "ms").toLowerCase()] ?? 1)).toFixed(3));
}

/** `1%`, `0.5%`, or a number of percent. */
export function parsePct(text: string): number {
  const m = /^(\d+(?:\.\d+)?)%?$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`"${text}" is not a percentage (e.g. 1%, 0.5%)`);
  return Number(m[1]);
}

/** `10mbit`, `500kbit`, `1gbit`, or a number of kbit/s; answered in kbit/s (1000 bit/s). */
export function parseKbit(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(kbit|mbit|gbit)?$/i.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`"${text}" is not a rate (e.g. 10mbit, 500kbit, 1gbit)`);
  const kbit = Number(m[1]) * (RATE[(m[2] ?? "kbit").toLowerCase()] ?? 1);
  if (!Number.isInteger(kbit)) throw new InvalidArgumentError(`"${text}" is not a whole number of kbit/s`);
  return kbit;
}

/** bit/s as `12.3 Mbit/s`. */
export function formatBps(bps: number): string {
  if (bps >= 1e9) return `${(bps / 1e9).toFixed(2)} Gbit/s`;
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mbit/s`;
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(1)} kbit/s`;
  return `${Math.round(bps)} bit/s`;
}

/** kbit/s as tc writes rates: `10Mbit`, `500kbit`. */
export function formatKbit(kbit: number): string {
  if (kbit >= 1_000_000 && kbit % 1_000_000 === 0) return `${kbit / 1_000_000}Gbit`;
  if (kbit >= 1000 && kbit % 1000 === 0) return `${kbit / 1000}Mbit`;
  return `${kbit}kbit`;
}
