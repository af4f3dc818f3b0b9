/**
 * lag.ts - in-relay lag stamps for the bench relays (`LAG=1` in the environment): the age of
 * each door datagram when JS handles it, i.e. now minus the CLOCK_MONOTONIC send time load.c
 * wrote at byte 85, less the smallest age seen (the clocks share the epoch only up to an
 * offset). Sees where a packet waited: before JS got it (receive lag) or after (send path).
 *
 * @module
 */
/** Recording on. */
export const LAG = Deno.env.get("LAG") === "1";
const lags = new Float64Array(LAG ? 1 << 20 : 0);
/** performance.now() of each stamp: gaps between them are the stalls. */
const seen = new Float64Array(LAG ? 1 << 20 : 0);
let lagN = 0;
const origin = performance.now();
/** Records the age of one door datagram (no allocation). */
export function stamp(d: Uint8Array): void {
  if (!LAG || d.length < 93 || lagN >= lags.length) return;
  const lo = (d[85]! | (d[86]! << 8) | (d[87]! << 16) | (d[88]! << 24)) >>> 0;
  const hi = (d[89]! | (d[90]! << 8) | (d[91]! << 16) | (d[92]! << 24)) >>> 0;
  const sentNs = lo + hi * 4294967296;
  const now = performance.now();
  seen[lagN] = now;
  lags[lagN++] = (now - origin) * 1e6 - sentNs;
}
const other = new Float64Array(LAG ? 1 << 20 : 0);
let otherN = 0;
/** Records when a datagram of the other direction (phone -> door) was handled. */
export function stampOther(): void {
  if (LAG && otherN < other.length) other[otherN++] = performance.now();
}

/** Percentiles of the recorded ages, in µs, as one line. */
export function lagReport(): string {
  if (!LAG || lagN === 0) return "";
  const a = lags.slice(0, lagN).sort();
  const min = a[0]!;
  const q = (p: number) => ((a[Math.min(lagN - 1, Math.floor(p * lagN))]! - min) / 1000).toFixed(0);
  let over = 0;
  for (let i = 0; i < lagN; i++) if (a[i]! - min > 1e6) over++;
  const gaps: [number, number][] = [];
  for (let i = 1; i < lagN; i++) {
    const g = seen[i]! - seen[i - 1]!;
    if (g > 1.5) gaps.push([seen[i - 1]!, g]);
  }
  gaps.sort((x, y) => y[1] - x[1]);
  // per gap: how many phone -> door datagrams were handled inside it (0: the thread stalled)
  const inside = (at: number, g: number) => {
    let n = 0;
    for (let i = 0; i < otherN; i++) if (other[i]! > at && other[i]! < at + g) n++;
    return n;
  };
  const top = gaps.slice(0, 8).map(([at, g]) =>
    `${at.toFixed(0)}+${g.toFixed(1)}${otherN ? `/${inside(at, g)}` : ""}`
  ).join(",");
  return `gaps>1.5ms ${gaps.length} [${top}] lag_us n ${lagN} p50 ${q(0.5)} p99 ${q(0.99)} p999 ${
    q(0.999)
  } max ${q(1)} over1ms ${over}`;
}
