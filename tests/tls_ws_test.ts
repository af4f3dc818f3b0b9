/**
 * WebSockets over TLS on the gateway's own server: the handshake, a reply, and the 1009 limit on a
 * fragmented message, all inside the TLS stream.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { inNetns } from "./helpers/netns.ts";
import { within } from "./helpers/wait.ts";
import { clientFrame, OPCODE, RawWs } from "./helpers/raw_ws.ts";
import { TIME_SCALE } from "./helpers/scale.ts";
import { startApp } from "../src/app.ts";
import { parseConfig } from "../src/config.ts";
import { nullLogger } from "../src/testing/mod.ts";

const TLS = new URL("./fixtures/tls/", import.meta.url).pathname;

Deno.test("wss: a phone socket over TLS gets its replies and the 1009 limit", {
  ignore: !inNetns,
}, async () => {
  const data = await Deno.makeTempDir();
  const config = Object.freeze({
    ...parseConfig(["--tls-cert", `${TLS}cert.pem`, "--tls-key", `${TLS}key.pem`], {}),
    data,
    httpHost: "127.0.0.1",
    httpPort: 0,
    mediaPort: 0,
  });
  const app = await startApp(config, { logger: nullLogger });
  const port = app.addresses.http.port;
  const caCerts = [await Deno.readTextFile(`${TLS}ca.pem`)];
  const ws = await RawWs.open(
    port,
    "localhost",
    () => Deno.connectTls({ hostname: "localhost", port, caCerts }),
  );
  try {
    await ws.sendText("{}");
    const reply = await ws.next();
    assert(reply && new TextDecoder().decode(reply.payload).includes("bad_request"));
    const chunk = new Uint8Array(40 * 1024);
    await ws.write(clientFrame(OPCODE.text, chunk, { fin: false }));
    await ws.write(clientFrame(OPCODE.continuation, chunk, { fin: false }));
    assertEquals(await within(ws.closeCode(), 3000 * TIME_SCALE), 1009);
  } finally {
    ws.close();
    await app.shutdown();
    await Deno.remove(data, { recursive: true });
  }
});
