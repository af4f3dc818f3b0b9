/**
 * `/metrics` on the phone port: loopback only by default, else `--metrics-allow` addresses or
 * `Authorization: Bearer <--metrics-token>`; and no per-call label in it.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { createHandler } from "../src/phone/handler.ts";
import { accessRule } from "../src/http/access.ts";
import { Metrics } from "../src/metrics.ts";
import type { PhoneHub } from "../src/phone/hub.ts";
import type { PhoneService } from "../src/phone/service.ts";
import type { RequestInfo } from "../src/http/server.ts";

const TOKEN = "0123456789abcdef-metrics";

function from(ip: string): RequestInfo {
  return {
    remoteAddr: { transport: "tcp", hostname: ip, port: 40000 },
    upgradeWebSocket: () => {
      throw new TypeError("not here");
    },
  };
}

Deno.test("/metrics: loopback, --metrics-allow or the bearer token; 403 for anyone else", async () => {
  const metrics = new Metrics();
  const handler = createHandler({
    hub: {} as PhoneHub,
    service: {} as PhoneService,
    metrics,
    health: () => ({ ok: true }),
    version: "test",
    metricsAccess: accessRule(["192.168.1.0/24"], TOKEN),
  });
  const get = async (ip: string, auth?: string) => {
    const res = await handler(
      new Request("http://gw/metrics", auth ? { headers: { authorization: auth } } : {}),
      from(ip),
    );
    await res.body?.cancel();
    return res.status;
  };
  assertEquals(await get("127.0.0.1"), 200);
  assertEquals(await get("192.168.1.40"), 200);
  assertEquals(await get("203.0.113.9"), 403);
  assertEquals(await get("203.0.113.9", `Bearer ${TOKEN}`), 200);
  assertEquals(await get("203.0.113.9", "Bearer wrong-token-0123456789"), 403);
  assertEquals(metrics.get("http_metrics_refused_total"), 2);
  // /healthz stays open to all (the phones' installer checks it).
  const h = await handler(new Request("http://gw/healthz"), from("203.0.113.9"));
  assertEquals(h.status, 200);
  await h.body?.cancel();
});

Deno.test(
  "/metrics served over the gateway's own server to loopback, with the new counters",
  { ignore: !inNetns },
  async () => {
    const gw = await startTestGateway({ metricsToken: TOKEN, metricsAllow: [] });
    try {
      const text = await (await fetch(`${gw.httpBase}/metrics`)).text();
      for (
        const name of ["http_connections_open", "http_connections_refused_total", "media_calls"]
      ) {
        assert(text.includes(name), name);
      }
      assert(!text.includes("callId"), "no per-call label");
    } finally {
      await gw.close();
    }
  },
);
