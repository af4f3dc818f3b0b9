/**
 * Soak from the command line: `deno task soak [-- --duration 3600]` (CI: 60 s). The harness and
 * what it checks: `tests/helpers/soak.ts`.
 *
 * Runs itself inside a private network namespace (`unshare -rn`) unless `INTERCOM_IN_NETNS=1`.
 * Exit code 0: all invariants held; 1: a violation (listed); 2: bad flags.
 *
 * @module
 */

import { ensureNetns } from "../scripts/netns.ts";
import { parseBenchFlags } from "./lib/flags.ts";
import { formatReport, runSoak, SOAK_DEFAULTS, type SoakOptions } from "../tests/helpers/soak.ts";
import { eprintln, println } from "../src/print.ts";

/** Deno flags the soak runs with (re-used when it re-runs itself in a namespace). */
export const SOAK_DENO_FLAGS = ["--unstable-net", "--unstable-kv", "-A", "--v8-flags=--expose-gc"];

if (import.meta.main) {
  const values = parseBenchFlags(
    {
      duration: { type: "string" },
      doors: { type: "string" },
      rooms: { type: "string" },
      phones: { type: "string" },
      ring: { type: "string" },
      talk: { type: "string" },
      "drop-rate": { type: "string" },
      "max-rss-growth": { type: "string" },
      warmup: { type: "string" },
      seed: { type: "string" },
      "report-every": { type: "string" },
    },
    "deno task soak [-- --duration S --doors N --rooms N --phones N --ring S --talk S " +
      "--drop-rate F --max-rss-growth F --warmup S --seed N --report-every S]",
  );
  const num = (name: keyof typeof values, fallback: number, min: number, max: number) => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (typeof raw !== "string" || !Number.isFinite(n) || n < min || n > max) {
      eprintln(`Cannot use --${name} ${raw}: expected a number ${min}–${max}`);
      Deno.exit(2);
    }
    return n;
  };
  const d = SOAK_DEFAULTS;
  const durationS = num("duration", d.durationS, 1, 7 * 86400);
  const options: Partial<SoakOptions> = {
    durationS,
    doors: num("doors", d.doors, 1, 200),
    rooms: num("rooms", d.rooms, 1, 5000),
    phones: num("phones", d.phones, 1, 20_000),
    ringTimeoutS: num("ring", d.ringTimeoutS, 1, 600),
    talkTimeoutS: num("talk", d.talkTimeoutS, 1, 3600),
    dropRate: num("drop-rate", d.dropRate, 0, 1),
    maxRssGrowth: num("max-rss-growth", d.maxRssGrowth, 0, 100),
    warmupS: num("warmup", Math.min(120, Math.max(10, durationS * 0.25)), 0, 86400),
    seed: num("seed", Math.floor(Math.random() * 1e9), 0, 2 ** 32 - 1),
    reportEveryS: num("report-every", durationS > 600 ? 60 : 10, 0, 86400),
  };
  await ensureNetns(import.meta.url, SOAK_DENO_FLAGS, { phoneRoute: true });
  const report = await runSoak(options);
  for (const line of formatReport(report)) println(line);
  Deno.exit(report.ok ? 0 : 1);
}
