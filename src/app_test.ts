// The composition root: a failure at any step closes what was opened before it (checked by the
// test sanitizers, on here explicitly), and a started gateway closes everything on shutdown.
import { assert, assertEquals, assertRejects } from "../tests/helpers/assert.ts";
import { inNetns } from "../tests/helpers/netns.ts";
import { startApp } from "./app.ts";
import { type Config, parseConfig } from "./config.ts";
import { nullLogger } from "./log.ts";

async function config(overrides: Partial<Config> = {}): Promise<Config> {
  return {
    ...parseConfig([], {}),
    httpHost: "127.0.0.1",
    httpPort: 0,
    mediaPort: 0,
    data: await Deno.makeTempDir({ prefix: "gw-app-" }),
    ...overrides,
  };
}

const sanitize = { sanitizeOps: true, sanitizeResources: true } as const;

Deno.test({
  name: "app: a bad TLS key path fails the start and leaves no open resource",
  ignore: !inNetns,
  ...sanitize,
  fn: async () => {
    const c = await config({ tlsCert: "/nonexistent/cert.pem", tlsKey: "/nonexistent/key.pem" });
    await assertRejects(() => startApp(c, { logger: nullLogger }));
    // The door port is free again: a second start binds it.
    const ok = await startApp({ ...c, tlsCert: undefined, tlsKey: undefined }, {
      logger: nullLogger,
    });
    await ok.shutdown();
    await Deno.remove(c.data, { recursive: true });
  },
});

Deno.test({
  name: "app: a port in use fails the start and closes the store and the sockets opened first",
  ignore: !inNetns,
  ...sanitize,
  fn: async () => {
    const c = await config();
    // The HTTP port is opened last: hold it, so the store and both UDP sockets are open when
    // the start fails.
    const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      await assertRejects(() =>
        startApp({ ...c, httpPort: (tcp.addr as Deno.NetAddr).port }, { logger: nullLogger })
      );
    } finally {
      tcp.close();
    }
    await Deno.remove(c.data, { recursive: true });
  },
});

Deno.test({
  name: "app: shutdown closes server, sockets, timers and store; live state reads the parts",
  ignore: !inNetns,
  ...sanitize,
  fn: async () => {
    const c = await config();
    const app = await startApp(c, { logger: nullLogger });
    assertEquals([app.live.calls(), app.live.phones(), app.live.doors()], [[], [], []]);
    const h = app.health();
    assert(h.ok);
    assertEquals([h.calls, h.phones], [0, 0]);
    await app.shutdown();
    assertEquals(app.health().ok, false);
    await Deno.remove(c.data, { recursive: true });
  },
});
