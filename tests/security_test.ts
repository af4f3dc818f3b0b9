/**
 * Security end to end: TLS serving (wss/https), no secret in any log line, every unlock attempt
 * audited, and a phone that is not bound to the room cannot open its door.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, openPhone, sleep } from "./helpers/sims.ts";
import { PhoneSim } from "../src/sim/phone_sim.ts";
import { memoryLogger } from "../src/testing/mod.ts";
import { startApp } from "../src/app.ts";
import { parseConfig } from "../src/config.ts";

const opts = { ignore: !inNetns };
const TLS = new URL("./fixtures/tls/", import.meta.url).pathname;

Deno.test(
  "--tls-cert/--tls-key: the gateway serves https (and so wss) with that certificate",
  opts,
  async () => {
    const data = await Deno.makeTempDir();
    const config = Object.freeze({
      ...parseConfig(["--tls-cert", `${TLS}cert.pem`, "--tls-key", `${TLS}key.pem`], {}),
      data,
      httpHost: "127.0.0.1",
      httpPort: 0,
      mediaPort: 0,
    });
    const logger = memoryLogger("info");
    const app = await startApp(config, { logger });
    const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${TLS}ca.pem`)] });
    try {
      const res = await fetch(`https://localhost:${app.addresses.http.port}/healthz`, { client });
      assertEquals([res.status, (await res.json()).ok], [200, true]);
      assert(
        String(logger.records[0]?.http).startsWith("https://"),
        JSON.stringify(logger.records[0]),
      );
      // Plain HTTP on the TLS port does not get through.
      const plain = await fetch(`http://127.0.0.1:${app.addresses.http.port}/healthz`).then(
        (r) => r.status,
        () => 0,
      );
      assert(plain !== 200);
    } finally {
      client.close();
      await app.shutdown();
      await Deno.remove(data, { recursive: true });
    }
  },
);

Deno.test("no token or media key reaches a log line, even at debug level", opts, async () => {
  const logger = memoryLogger("debug");
  const gw = await startTestGateway({ logLevel: "debug" }, { logger });
  const token = await gw.bind("p1", "Y00010108090");
  const phone = new PhoneSim({
    url: gw.url,
    uid: "p1",
    token,
    roomAddress: "Y00010108090",
    community: "花苑",
    script: { answer: "talk", talkAfterS: 0.2, unlockAfterS: 0.2, hangupAfterS: 0.8 },
  });
  const door = await openDoor();
  try {
    await phone.start();
    await phone.waitFor("login ok", 5000);
    await door.start();
    await sleep(200);
    const call = phone.messagesIn("call")[0] as unknown as { mediaKey: string };
    const text = logger.records.map((r) => JSON.stringify(r)).join("\n");
    assert(
      text.includes("phone logged in") && text.includes("call ended"),
      "the call is in the log",
    );
    assert(!text.includes(token), "token in a log line");
    assert(!text.includes(call.mediaKey), "mediaKey in a log line");
  } finally {
    await door.close();
    await phone.close();
    await gw.close();
  }
});

Deno.test(
  "unlock by a phone not bound to the room: refused, door untouched, attempt audited",
  opts,
  async () => {
    await sleep(700 * TIME_SCALE); // let the previous test's door finish lingering on 127.0.0.2:8302
    const gw = await startTestGateway();
    const resident = await openPhone(gw, "resident", { answer: "callok" });
    // A phone bound to another room of the building tries to open this room's door.
    const other = await openPhone(gw, "neighbour", {}, "Y00010108091");
    const door = await openDoor({ ringTimeoutS: 10 });
    try {
      void door.start();
      await door.when("answered");
      other.send({
        order: "unlock",
        uid: "neighbour",
        roomAddress: "Y00010108090",
        community: "花苑",
        doorAddress: "M00010100",
      });
      other.send({
        order: "unlock",
        uid: "neighbour",
        roomAddress: "Y00010108091",
        community: "花苑",
        doorAddress: "M00010100",
      });
      const deadline = Date.now() + 3000 * TIME_SCALE;
      while (other.messagesIn("error").length < 2 && Date.now() < deadline) await sleep(50);
      await sleep(300);
      assertEquals(
        door.counters.confirmsReceived >= 0 &&
          door.events.filter((e) => e.type === "lock_opened").length,
        0,
      );
      const codes = other.messagesIn("error").map((m) => (m as unknown as { code: string }).code);
      assertEquals(codes, ["not_bound", "not_in_call"]);
      const audit = await gw.app.records.recentUnlocks(10);
      assertEquals(audit.map((a) => a.result).sort(), ["not_bound", "not_in_call"]);
    } finally {
      await door.close();
      await resident.close();
      await other.close();
      await gw.close();
    }
  },
);
