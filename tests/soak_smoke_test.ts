/**
 * A short soak (tests/helpers/soak.ts, which `deno task soak` runs too) in the regular suite: a
 * few doors and phones churning calls for ~10 s against the in-process gateway, with the soak's
 * invariants checked every second (a room in at most one call, no call outliving its timeouts
 * or its door, every door hang-up acknowledged, no `call` or media of another room at a phone,
 * `/healthz` ok, nothing left over after the drain). Runs only inside the private network namespace of `deno task test`.
 */

import { assert } from "./helpers/assert.ts";
import { TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { formatReport, runSoak } from "./helpers/soak.ts";
import { addPhoneRoute, PHONE_ROUTE } from "../scripts/netns.ts";

Deno.test({
  name: "soak smoke: 4 doors, 24 rooms, 40 phones churning calls for 10 s keep every invariant",
  ignore: !inNetns,
  fn: async () => {
    assert(await addPhoneRoute(), `cannot add the phone route: ${PHONE_ROUTE}`);
    const lines: string[] = [];
    const slow = TIME_SCALE > 1; // emulated run: a lighter load, the same checks
    const report = await runSoak({
      durationS: 10,
      doors: slow ? 2 : 4,
      rooms: slow ? 8 : 24,
      phones: slow ? 12 : 40,
      // Phones answer 0.2–2.5 s after the ring: under emulation a 2-s ring would time most out.
      ringTimeoutS: slow ? 4 : 2,
      talkTimeoutS: 3,
      marginS: 5 * TIME_SCALE,
      dropRate: 0.02,
      videoShare: 0.25,
      // Too short for a memory trend: the leak checks are the timers and descriptors left over.
      maxRssGrowth: Infinity,
      warmupS: 4,
      seed: Math.floor(Math.random() * 1e9),
      reportEveryS: 0,
      log: (line) => lines.push(line),
    });
    const text = [...lines, ...formatReport(report)].join("\n");
    assert(report.ok, text);
    // The floors only guard against a vacuous run; emulated aarch64 churns far fewer calls.
    assert(report.door.callsCompleted >= (slow ? 2 : 5), `too few calls completed:\n${text}`);
    assert((report.phone["got talk begin"] ?? 0) >= (slow ? 1 : 2), `too few talks:\n${text}`);
  },
});
