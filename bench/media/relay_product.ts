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
 * With `WS_VIEWERS=V` (and `WS_PORT`, default 47099) each call also has V web-phone viewers in its
 * video set, fed over the gateway's own ServerWebSocket with the WebSocket transport's sink
 * (a copy per frame, skipped and counted above WS_MEDIA_SKIP_BYTES unsent): ws_viewers.ts.
 * With `WS_TALK=1` as well, each call's talker is its first viewer (`ws-i-0`) instead of the UDP
 * phone: its binary frames go to `MediaRelay.wsAudio`, as `PhoneService.onBinary` hands them on
 * (the bench has no hub, so no `heard`), and are forwarded to the door by the product's talker
 * path (pacing, CALLDOWN rewrite, door socket). The UDP phone still gets the door's media.
 *
 * With `RELAY_ENGINE=native` (and `--allow-ffi --allow-read`) the two ports are the native media
 * engine's (`--media-engine native`, src/media/native/engine.ts, library from dist/native) and
 * the relay hands it its routes, as src/app.ts wires it.
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
import { LAG, lagReport, stamp, stampOther } from "./lag.ts";

// Bench-only: V8 flags set at run time (RELAY_V8_FLAGS), to compare with --v8-flags.
const runtimeFlags = Deno.env.get("RELAY_V8_FLAGS");
if (runtimeFlags) (await import("node:v8")).setFlagsFromString(runtimeFlags);

const [pa = 0, pb = 0, doorBase = 0, phoneBase = 0, calls = 0] = Deno.args.map(Number);
const doorIpBase = Deno.args[5] ?? "127.0.1.1";
/** Web-phone viewers per call (WebSocket transport), served on WS_PORT. */
const wsViewers = Number(Deno.env.get("WS_VIEWERS") ?? 0);
const wsPort = Number(Deno.env.get("WS_PORT") ?? 47099);
/** The first viewer of each call is its talker (phone audio over the WebSocket). */
const wsTalk = wsViewers > 0 && Deno.env.get("WS_TALK") === "1";
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
const engine = Deno.env.get("RELAY_ENGINE") === "native"
  ? (await import("../../src/media/native/engine.ts")).openNativeEngine({
    library: `${
      new URL("../../dist/native/", import.meta.url).pathname
    }libintercom_media.${Deno.build.arch}.so`,
    doorPort: pa,
    mediaPort: pb,
    doorReuse: true,
    magic: "XXXCID",
  })
  : undefined;
const doorPort = engine?.door ?? await openUdpPort({ hostname: HOST, port: pa, pooled: true });
const mediaPort = engine?.media ?? await openUdpPort({ hostname: HOST, port: pb, pooled: true });

const relay = new MediaRelay({
  offload: engine,
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
  // talking: video to this phone (and the call's web-phone viewers), its audio to the door
  relay.route(
    callId,
    [uid, ...Array.from({ length: wsViewers }, (_, k) => `ws-${i}-${k}`)],
    wsTalk ? `ws-${i}-0` : uid,
  );
  const control = enc.encode(
    JSON.stringify({ order: "enable_video", uid, callId, mediaKey }),
  );
  relay.onPhoneDatagram(control, { hostname: HOST, port: phoneBase + i });
}
const t = relay.totals;
const unlatched = Object.values(t.dropped).reduce((a, b) => a + b, 0);
if (unlatched > 0) throw new Error(`setup: ${JSON.stringify(t.dropped)}`);

transport.listen();
void receiveLoop(
  mediaPort,
  LAG
    ? (bytes, from) => {
      stampOther();
      relay.onPhoneDatagram(bytes, from);
    }
    : (bytes, from) => relay.onPhoneDatagram(bytes, from),
  logger,
);

// ---- web-phone viewers (WS_VIEWERS per call, on WS_PORT): the WebSocket transport's sink
let wsSkipped = 0;
let wsSent = 0;
// Imported only with viewers: the relay's heap (and so its major GCs) stays as without them.
const ws = wsViewers > 0
  ? {
    ...(await import("../../src/http/websocket.ts")),
    ...(await import("../../src/http/server.ts")),
    ...(await import("../../src/phone/service.ts")),
  }
  : undefined;
if (wsViewers > 0) {
  const listener = Deno.listen({ hostname: HOST, port: wsPort });
  (async () => {
    for await (const conn of listener) void serveViewer(conn);
  })();
}

/** A minimal upgrade (the bench's viewers only), then the gateway's own ServerWebSocket. */
async function serveViewer(conn: Deno.Conn): Promise<void> {
  const { acceptKey, ServerWebSocket, WS_DEFAULTS, WS_MEDIA_SKIP_BYTES } = ws!;
  // No Nagle, as the product's server sets on every accepted connection (src/http/server.ts):
  // else each frame waits for the viewer's delayed ACK of the previous one (up to 40 ms).
  (conn as Deno.TcpConn).setNoDelay(true);
  let got = new Uint8Array(0);
  const chunk = new Uint8Array(4096);
  let end = -1;
  while (end < 0) {
    const n = await conn.read(chunk);
    if (n === null) return conn.close();
    const next = new Uint8Array(got.length + n);
    next.set(got);
    next.set(chunk.subarray(0, n), got.length);
    got = next;
    end = new TextDecoder().decode(got).indexOf("\r\n\r\n");
  }
  const head = new TextDecoder().decode(got.subarray(0, end));
  const key = head.match(/sec-websocket-key:\s*(\S+)/i)?.[1] ?? "";
  const [, call = "0", viewer = "0"] = head.match(/call=(\d+)&viewer=(\d+)/) ?? [];
  await conn.write(enc.encode(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${await acceptKey(key)}\r\n\r\n`,
  ));
  const socket = new ServerWebSocket({ ...WS_DEFAULTS, clock: systemClock });
  let open = true;
  const uid = `ws-${call}-${viewer}`;
  // As the phone handler and PhoneService.onBinary: binary frames are the phone's audio.
  socket.onmessage = (data) => {
    if (typeof data !== "string") relay.wsAudio(uid, data);
  };
  // As PhoneService's `enable_video` with transport "ws" (src/phone/service.ts).
  relay.enableWs(`bench-call-${call}`, uid, (bytes) => {
    if (!open) return;
    if (socket.bufferedAmount > WS_MEDIA_SKIP_BYTES) {
      wsSkipped++;
      return;
    }
    wsSent++;
    socket.send(bytes.slice());
  }, () => open);
  await socket.run(conn, got.subarray(end + 4));
  open = false;
}

const report = () => {
  const d = Object.entries(t.dropped).filter(([, n]) => n > 0);
  console.error(
    `relay_product: doorIn ${t.doorIn} toPhones ${t.toPhones} phoneIn ${t.phoneIn} ` +
      `toDoor ${t.toDoor} dropped ${JSON.stringify(Object.fromEntries(d))} ` +
      `sendErrors door ${doorPort.sendErrors} media ${mediaPort.sendErrors} ` +
      `ws sent ${wsSent} skipped ${wsSkipped} ${lagReport()}`,
  );
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", report);
Deno.addSignalListener("SIGINT", report);
console.log("READY");
