/**
 * `deno task demo`: one narrated call for a newcomer. The gateway, a simulated door station and a
 * simulated phone run in a private network namespace (nothing leaves the machine): the visitor
 * presses the room, the phone rings and sees the door's video, answers, talks, opens the door and
 * hangs up. Each line says who spoke: [door], [phone] or [gateway].
 *
 * @module
 */

import { startApp } from "../src/app.ts";
import { parseConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { openUdpPort } from "../src/net/udp.ts";
import { DoorSim } from "../src/sim/door_sim.ts";
import { formatEvent, formatSummary } from "../src/sim/door_cli.ts";
import { PhoneSim } from "../src/sim/phone_sim.ts";
import { formatPhoneEvent } from "../src/sim/phone_cli.ts";
import { println } from "../src/print.ts";
import { PRODUCT_PERMS } from "./deno_flags.ts";
import { ensureNetns } from "./netns.ts";

// Re-run inside a private network namespace with multicast routed on loopback.
await ensureNetns(import.meta.url, PRODUCT_PERMS);

const t0 = performance.now();
const stamp = () => `+${((performance.now() - t0) / 1000).toFixed(2).padStart(5)}s`;
const say = (who: string, text: string) => println(`${stamp()}  ${who.padEnd(9)} ${text}`);

const data = await Deno.makeTempDir({ prefix: "intercom-demo-" });
const logger = createLogger({
  level: "info",
  format: "text",
  sink: (line) => say("[gateway]", line.replace(/^\S+ INFO {2}/, "")),
});
const config = Object.freeze({
  ...parseConfig([], {}),
  data,
  httpHost: "127.0.0.1",
  httpPort: 0,
  mediaPort: 0,
});
const app = await startApp(config, { logger, version: "demo" });

println("");
println(
  "A visitor at door M00010100 (127.0.0.2) presses room 0809: the phone bound to Y00010108090",
);
println("rings, watches the door's camera, answers after 1 s, talks, opens the door, hangs up.");
println("");
const { token } = await app.bindings.add({
  uid: "359608060142756",
  roomAddress: "Y00010108090",
  community: "花苑",
});
say("[setup]", "bound phone 359608060142756 to room Y00010108090 (花苑); token issued");

const phone = new PhoneSim({
  url: `ws://127.0.0.1:${app.addresses.http.port}/phone`,
  uid: "359608060142756",
  token,
  roomAddress: "Y00010108090",
  community: "花苑",
  script: {
    answer: "talk",
    talkAfterS: 1,
    unlockAfterS: 1,
    hangupAfterS: 2.5,
    enableVideo: "udp",
    sendAudio: true,
  },
  onEvent: (e) => {
    const line = formatPhoneEvent(e);
    if (line) say("[phone]", line.replace(/^\S+\s+/, ""));
  },
});
await phone.start();
await phone.waitFor("login ok", 5000);

const door = new DoorSim({
  socket: await openUdpPort({ hostname: "127.0.0.2", port: 8302 }),
  room: "0809",
  fps: 15,
  onEvent: (e) => {
    const line = formatEvent(e, {
      group: "238.9.9.1",
      port: 8302,
      fps: 15,
      keepaliveWindowMs: 6000,
      lockGuardMs: 5000,
    });
    if (line) say("[door]", line);
  },
});
const summary = await door.start();
await new Promise((r) => setTimeout(r, 300));
say("[door]", formatSummary(summary));
const c = phone.counters;
say(
  "[phone]",
  `received ${c.videoPackets} video packets and ${c.audioIn} audio packets; sent ${c.audioOut} audio packets`,
);
const record = (await app.records.recent(1))[0];
say("[gateway]", `call record: ${JSON.stringify(record)}`);
await phone.close();
await app.shutdown();
await Deno.remove(data, { recursive: true });
Deno.exit(summary.completed ? 0 : 1);
