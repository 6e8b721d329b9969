import { AgentError } from "../common/errors.js";

export interface VlanRange {
  readonly min: number;
  readonly max: number;
}

/** "100-999" -> {min:100,max:999}; VLAN ids 1..4094 (0 and 4095 are reserved by 802.1Q). */
export function parseVlanRange(text: string, setting: string): VlanRange {
  const m = /^\s*(\d{1,4})\s*-\s*(\d{1,4})\s*$/.exec(text);
  const min = m ? Number(m[1]) : Number.NaN;
  const max = m ? Number(m[2]) : Number.NaN;
  if (!m || min < 1 || max > 4094 || min > max) {
    throw new AgentError(
      "INVALID_CONFIG",
      `${setting}: "${text}" is not a VLAN range`,
      "write it as MIN-MAX with 1 <= MIN <= MAX <= 4094, e.g. 100-999",
    );
  }
  return { min, max };
}

export function rangesOverlap(a: VlanRange, b: VlanRange): boolean {
  return a.min <= b.max && b.min <= a.max;
}

export function formatRange(r: VlanRange): string {
  return `${r.min}-${r.max}`;
}
