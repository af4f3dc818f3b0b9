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
let lagN = 0;
const origin = performance.now();
/** Records the age of one door datagram (no allocation). */
export function stamp(d: Uint8Array): void {
  if (!LAG || d.length < 93 || lagN >= lags.length) return;
  const lo = (d[85]! | (d[86]! << 8) | (d[87]! << 16) | (d[88]! << 24)) >>> 0;
  const hi = (d[89]! | (d[90]! << 8) | (d[91]! << 16) | (d[92]! << 24)) >>> 0;
  const sentNs = lo + hi * 4294967296;
  lags[lagN++] = (performance.now() - origin) * 1e6 - sentNs;
}
/** Percentiles of the recorded ages, in µs, as one line. */
export function lagReport(): string {
  if (!LAG || lagN === 0) return "";
  const a = lags.slice(0, lagN).sort();
  const min = a[0]!;
  const q = (p: number) => ((a[Math.min(lagN - 1, Math.floor(p * lagN))]! - min) / 1000).toFixed(0);
  let over = 0;
  for (let i = 0; i < lagN; i++) if (a[i]! - min > 1e6) over++;
  return `lag_us n ${lagN} p50 ${q(0.5)} p99 ${q(0.99)} p999 ${q(0.999)} max ${
    q(1)
  } over1ms ${over}`;
}

