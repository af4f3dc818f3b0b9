import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { connectionCaps, ConnectionCounter, FD_HEADROOM_MIN, parseNofile } from "./caps.ts";

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
  const caps = connectionCaps(limit);
  // Every connection cap reached at once still leaves the doors, KV and the runtime 1/8.
  assert(caps.total <= limit * 7 / 8, `${caps.total} of ${limit}`);
  assertEquals(caps, { total: 16_384, perIp: 1024 });
});

Deno.test("/proc/self/limits: the soft Max open files", () => {
  const text = "Limit                     Soft Limit           Hard Limit           Units\n" +
    "Max processes             63422                63422                processes\n" +
    "Max open files            2000                 4096                 files\n";
  assertEquals(parseNofile(text), 2000);
  assertEquals(parseNofile("nothing"), undefined);
});

Deno.test("connection counter: per IP and in total, places given back", () => {
  const c = new ConnectionCounter({ total: 3, perIp: 2 });
  assertEquals([c.open("a"), c.open("a"), c.open("a")], ["ok", "ok", "per_ip"]);
  assertEquals([c.open("b"), c.open("c")], ["ok", "total"]);
  c.close("a");
  assertEquals([c.total, c.open("c")], [2, "ok"]);
  c.close("nobody");
  assertEquals(c.total, 3);
});
