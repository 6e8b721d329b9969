/** Rates for people: bits per second with a unit. */
export function bps(v: number): string {
  if (v < 1) return "0 b/s";
  const units = ["b/s", "kb/s", "Mb/s", "Gb/s"];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}
