/**
 * How much slower the machine running the suite is: `INTERCOM_TEST_SCALE` (the aarch64 run under
 * qemu-user sets 4). Real-time waits are multiplied by it; property tests run fewer cases.
 *
 * @module
 */

/** Multiplier for real-time waits (1 natively). */
export const TIME_SCALE = Number(Deno.env.get("INTERCOM_TEST_SCALE") ?? "1") || 1;

/**
 * Cases for one property test: `n` natively, `n / TIME_SCALE` (at least 20) under emulation. The
 * seed is fixed, so the emulated run checks a prefix of the same cases the native run checks.
 */
export function runs(n: number): number {
  return TIME_SCALE > 1 ? Math.max(20, Math.round(n / TIME_SCALE)) : n;
}
