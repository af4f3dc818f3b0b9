// deno-lint-ignore-file no-console
/**
 * relay_product.ts - the gateway's own media path under the bench's relay interface
 * (see README.md), wired as `src/app.ts` wires it:
 *
 *   door port  openUdpPort({ pooled: true }) on 127.0.0.1:PORT_A, read by DoorTransport
 *              (media fast path -> MediaRelay.onDoorMedia)
 *   media port openUdpPort({ pooled: true }) on 127.0.0.1:PORT_B, read by receiveLoop
 *              -> MediaRelay.onPhoneDatagram
 *   MediaRelay sendToPhone = mediaPort.send, sendToDoor = doorPort.send
 *
 *   deno run --unstable-net --allow-net relay_product.ts \
 *     PORT_A PORT_B DOOR_BASE PHONE_BASE CALLS [DOOR_IP_BASE]
 *
 * The product finds a door's call by the door's IP, so call i's door is
 * DOOR_IP_BASE + i (default 127.0.1.1, 127.0.1.2, ...) at port DOOR_BASE + i; run the
 * load generator with `--door-ip-base` set to the same address. Each call is opened
 * talking (`route(callId, [uid], uid)`: door media to the phone, the phone's audio to
 * the door) and its phone is latched at 127.0.0.1:(PHONE_BASE + i) through the product's
 * control-datagram path (`enable_video` with the call's key), fed in directly.
 *
 * On SIGTERM/SIGINT it prints the relay's counters to stderr (the bench kills with SIGKILL).
 *
 * @module
 */
import { systemClock } from "../../src/clock.ts";
import { createLogger } from "../../src/log.ts";
import { Metrics } from "../../src/metrics.ts";
import { openUdpPort } from "../../src/net/udp.ts";
import { receiveLoop } from "../../src/net/receive_loop.ts";
import { DoorTransport } from "../../src/door/transport.ts";
import { MediaRelay } from "../../src/media/relay.ts";
import type { LiveCallInfo } from "../../src/call/ports.ts";
import { LAG, lagReport, stamp } from "./lag.ts";

const [pa = 0, pb = 0, doorBase = 0, phoneBase = 0, calls = 0] = Deno.args.map(Number);
const doorIpBase = Deno.args[5] ?? "127.0.1.1";
const HOST = "127.0.0.1";

/** `base + i` as a dotted IPv4 address, kept inside 127.0.0.0/8. */
function ipPlus(base: string, i: number): string {
  const [a = 0, b = 0, c = 0, d = 0] = base.split(".").map(Number);
  const n = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d + i;
  if (n >>> 24 !== 127) throw new Error(`door IP ${base} + ${i} leaves 127.0.0.0/8`);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

const logger = createLogger({ level: "warn", sink: (line) => console.error(line) });
const metrics = new Metrics();
const doorPort = await openUdpPort({ hostname: HOST, port: pa, pooled: true });
const mediaPort = await openUdpPort({ hostname: HOST, port: pb, pooled: true });

const relay = new MediaRelay({
  logger,
  metrics,
  sendToPhone: (bytes, to) => mediaPort.send(bytes, to),
  sendToDoor: (bytes, to) => doorPort.send(bytes, to),
});
const transport = new DoorTransport({
  port: doorPort,
  clock: systemClock,
  logger,
  metrics,
  isOnline: () => true,
  localIpFor: () => HOST,
  onEvent: () => {},
  onMedia: LAG
    ? (bytes, from) => {
      stamp(bytes);
      relay.onDoorMedia(bytes, from);
    }
    : (bytes, from) => relay.onDoorMedia(bytes, from),
});

const enc = new TextEncoder();
for (let i = 0; i < calls; i++) {
  const callId = `bench-call-${i}`;
  const uid = `phone-${i}`;
  const mediaKey = crypto.randomUUID();
  const doorIp = ipPlus(doorIpBase, i);
  const info: LiveCallInfo = {
    callId,
    mediaKeyOf: (u) => (u === uid ? mediaKey : undefined),
    roomKey: String(10001080900 + i),
    door: { hostname: doorIp, port: doorBase + i },
    parties: {
      caller: "M00010100",
      callerIp: doorIp,
      callee: `S${String(10001080900 + i).padStart(11, "0")}`,
      calleeIp: HOST,
    },
    doorAddress: "M00010100",
  };
  relay.open(info);
  relay.route(callId, [uid], uid); // talking: video to this phone, its audio to the door
  const control = enc.encode(
    JSON.stringify({ order: "enable_video", uid, callId, mediaKey }),
  );
  relay.onPhoneDatagram(control, { hostname: HOST, port: phoneBase + i });
}
const t = relay.totals;
const unlatched = Object.values(t.dropped).reduce((a, b) => a + b, 0);
if (unlatched > 0) throw new Error(`setup: ${JSON.stringify(t.dropped)}`);

transport.listen();
void receiveLoop(mediaPort, (bytes, from) => relay.onPhoneDatagram(bytes, from), logger);

const report = () => {
  const d = Object.entries(t.dropped).filter(([, n]) => n > 0);
  console.error(
    `relay_product: doorIn ${t.doorIn} toPhones ${t.toPhones} phoneIn ${t.phoneIn} ` +
      `toDoor ${t.toDoor} dropped ${JSON.stringify(Object.fromEntries(d))} ` +
      `sendErrors door ${doorPort.sendErrors} media ${mediaPort.sendErrors} ${lagReport()}`,
  );
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", report);
Deno.addSignalListener("SIGINT", report);
console.log("READY");
