/**
 * One gateway per port: a second gateway started on the same box (the service runs, an
 * installer types `deno task start`) must not share the door or media port with the first, where
 * the newest socket would take the doors' traffic. It exits 1 with one line naming the port's
 * flag; the first keeps serving, and door simulators still bind the door port on their own
 * loopback addresses beside it. Inside the test namespace only.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { denoCommand, RUN_FLAGS, spawnGateway } from "./helpers/process.ts";
import { inNetns } from "./helpers/netns.ts";
import { runBounded } from "./helpers/run_bounded.ts";
import { TIME_SCALE } from "./helpers/scale.ts";
import { openUdpPort } from "../src/net/udp.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

Deno.test({
  name: "one gateway per port: a second on the door or the media port exits 1 naming the flag",
  ignore: !inNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const [door, media] = [18461, 18462];
    const dirs = await Promise.all([1, 2].map(() => Deno.makeTempDir({ prefix: "gw-twice-" })));
    const first = await spawnGateway(
      ["--data", dirs[0]!, "--door-port", String(door), "--media-port", String(media)],
      18463,
    );
    try {
      const [deno, ...pre] = denoCommand();
      // Bounded: without the check the second gateway starts, and would run until killed.
      const second = (doorPort: number, mediaPort: number, httpPort: number) =>
        runBounded(deno!, [
          ...pre,
          "run",
          ...RUN_FLAGS,
          MAIN,
          "serve",
          "--data",
          dirs[1]!,
          "--http-host",
          "127.0.0.1",
          "--http-port",
          String(httpPort),
          "--door-port",
          String(doorPort),
          "--media-port",
          String(mediaPort),
        ], 10_000 * TIME_SCALE);
      const sameDoor = await second(door, 18464, 18465);
      const sameMedia = await second(18466, media, 18467);
      for (
        const [r, line] of [
          [
            sameDoor,
            `Cannot listen on UDP ${door} (--door-port): address in use; is another gateway running?`,
          ],
          [
            sameMedia,
            `Cannot listen on UDP ${media} (--media-port): address in use; is another gateway running?`,
          ],
        ] as const
      ) {
        assertEquals(r.code, 1, r.err);
        const lines = r.err.trim().split("\n");
        assertEquals(lines.length, 1, r.err);
        assert(lines[0]!.startsWith(line), r.err);
      }
      // The first one still serves, and a door simulator binds the door port beside it.
      const res = await fetch(`${first.httpBase}/healthz`);
      assertEquals(res.status, 200, await res.text());
      const sim = await openUdpPort({ hostname: "127.0.0.2", port: door });
      sim.close();
    } finally {
      first.child.kill("SIGTERM");
      await first.child.status;
      for (const d of dirs) await Deno.remove(d, { recursive: true });
    }
  },
});
