/**
 * A gateway that cannot start (HTTP port taken, TLS files missing) fails `startApp` and leaves
 * nothing open behind it: the sanitizers (on for the whole suite) fail these tests on a UDP
 * socket, the KV store, the HTTP listener or the presence timer left over. Inside the test
 * namespace only (the door port 8302 and its multicast group).
 */

import { assertRejects } from "./helpers/assert.ts";
import { startTestGateway } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";

Deno.test({
  name: "start failure: an HTTP port in use rejects and leaves no socket, KV or timer open",
  ignore: !inNetns,
  fn: async () => {
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      await assertRejects(() => startTestGateway({ httpPort: taken.addr.port }));
    } finally {
      taken.close();
    }
  },
});

Deno.test({
  name: "start failure: a missing TLS certificate rejects and leaves nothing open",
  ignore: !inNetns,
  fn: async () => {
    await assertRejects(() =>
      startTestGateway({ tlsCert: "/nonexistent/cert.pem", tlsKey: "/nonexistent/key.pem" })
    );
  },
});

Deno.test({
  name: "start failure: afterwards a gateway starts on the same ports and stops cleanly",
  ignore: !inNetns,
  fn: async () => {
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = taken.addr.port;
    try {
      await assertRejects(() => startTestGateway({ httpPort: port }));
    } finally {
      taken.close();
    }
    const gw = await startTestGateway({ httpPort: port });
    await gw.close();
  },
});
