import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import {
  connectionCaps,
  ConnectionCounter,
  FD_HEADROOM_MIN,
  PROBE_MAX,
  probeFreeDescriptors,
} from "./caps.ts";

Deno.test("connection caps stay below the descriptor limit with headroom", () => {
  for (const limit of [256, 512, 1024, 2000, 20_000, 65_536, 1_048_576]) {
    const caps = connectionCaps(limit);
    assert(caps.total + FD_HEADROOM_MIN <= Math.max(limit, 16 + FD_HEADROOM_MIN), `${limit}`);
    assert(caps.perIp <= caps.total, `${limit}`);
  }
  assertEquals(connectionCaps(2000), { total: 1744, perIp: 872 });
  assertEquals(connectionCaps(65_536), { total: 16_384, perIp: 1024 });
  assertEquals(connectionCaps(undefined), connectionCaps(1024));
});

Deno.test("the systemd unit's LimitNOFILE leaves the caps their headroom", async () => {
  const unit = await Deno.readTextFile(
    new URL("../../deploy/intercom-gateway.service", import.meta.url),
  );
  const limit = Number(/^LimitNOFILE=(\d+)$/m.exec(unit)?.[1]);
  // What the probe finds free at start: the limit less the runtime's, KV's and the doors' own.
  const caps = connectionCaps(limit - 64);
  // Every connection cap reached at once still leaves the doors, KV and the runtime 1/8.
  assert(caps.total <= limit * 7 / 8, `${caps.total} of ${limit}`);
  assertEquals(caps, { total: 16_384, perIp: 1024 });
});

Deno.test("descriptor probe: counts what can be opened, up to its bound, and closes them", () => {
  assertEquals(probeFreeDescriptors(50), 50);
  assertEquals(probeFreeDescriptors(50), 50);
  assertEquals(connectionCaps(PROBE_MAX).total, 16_384);
});

Deno.test("connection counter: per IP and in total, places given back", () => {
  const c = new ConnectionCounter({ total: 3, perIp: 2 });
  assertEquals([c.open("a"), c.open("a"), c.open("a")], ["ok", "ok", "per_ip"]);
  assertEquals([c.open("b"), c.open("c")], ["ok", "total"]);
  c.close("a");
  assertEquals([c.total, c.open("c")], [2, "ok"]);
  c.close("nobody");
  assertEquals(c.total, 3);
  c.lowerTotal(2);
  assertEquals([c.cap, c.open("d")], [2, "total"]);
  c.lowerTotal(100);
  assertEquals(c.cap, 2);
});
