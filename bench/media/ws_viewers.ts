// deno-lint-ignore-file no-console
/**
 * ws_viewers.ts - web-phone viewers for the media bench: V WebSockets per call to the product
 * relay's WebSocket port (relay_product.ts with `WS_VIEWERS`), each receiving the call's door
 * video and audio as binary frames, as the web phone does over the `ws` transport.
 *
 *   deno run --allow-net --allow-ffi --allow-read ws_viewers.ts PORT CALLS VIEWERS SECONDS \
 *     [WARMUP DURATION]
 *
 * Connects every viewer, prints `CONNECTED`, then counts for SECONDS and prints one JSON line:
 * frames received inside the load's measuring window (byte 80 bit 0, as load.c counts),
 * latency from load.c's send time (CLOCK_MONOTONIC ns at byte 85, read here with libc's
 * `clock_gettime` through FFI: the same clock) to this receive, p50/p99/p999/max in µs.
 *
 * With WARMUP and DURATION, the first viewer of each call also talks, as a web phone does during
 * talk: one CALLDOWN audio packet per binary frame (the product's `encodeMedia`, 64-byte payload,
 * 141 B, as load.c's phone audio), 125 a second per call, spread evenly over the calls (one
 * sequence with interval 8 ms / CALLS, sent from a 1 ms timer, late frames at once), bench fields
 * in the payload with kind 3 and the send time at byte 85. A frame is skipped and counted when
 * more than 64 KiB are unsent on the socket (as the web phone's `sendBinary`), never queued.
 * It prints `CONNECTED <T0>`: the schedule's start (CLOCK_MONOTONIC ns, 0.5 s ahead), to give
 * load.c as `--start-at`; frames due in [T0 + WARMUP, T0 + WARMUP + DURATION) are counted and the
 * talkers stop at its end. The JSON line adds `talk_due` (counted frames due), `talk_sent`,
 * `talk_skipped` (counted frames skipped for back-pressure) and `talk_late_max_us`.
 *
 * @module
 */

import { encodeMedia } from "../../src/protocol/media.ts";

const [port = 0, calls = 0, viewers = 0, seconds = 0, warmup = NaN, duration = NaN] = Deno.args
  .map(Number);
const talk = warmup === warmup && duration === duration;

const libc = Deno.dlopen("libc.so.6", {
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
});
const ts = new BigInt64Array(2);
const tsBytes = new Uint8Array(ts.buffer);
/** CLOCK_MONOTONIC in ns, as a double (exact below 2^53 ns = 104 days of uptime). */
function monoNs(): number {
  libc.symbols.clock_gettime(1, tsBytes);
  return Number(ts[0]!) * 1e9 + Number(ts[1]!);
}

const lat = new Float64Array(1 << 22);
let latN = 0;
let counted = 0;
let total = 0;
let bad = 0;

function onFrame(d: Uint8Array): void {
  total++;
  if (d.length < 93) return void bad++;
  if ((d[80]! & 1) === 0) return;
  counted++;
  const lo = (d[85]! | (d[86]! << 8) | (d[87]! << 16) | (d[88]! << 24)) >>> 0;
  const hi = (d[89]! | (d[90]! << 8) | (d[91]! << 16) | (d[92]! << 24)) >>> 0;
  if (latN < lat.length) lat[latN++] = monoNs() - (lo + hi * 4294967296);
}

const sockets: WebSocket[] = [];
await Promise.all(
  Array.from({ length: calls * viewers }, (_, j) =>
    new Promise<void>((resolve, reject) => {
      const call = Math.floor(j / viewers);
      const ws = new WebSocket(`ws://127.0.0.1:${port}/?call=${call}&viewer=${j % viewers}`);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`viewer ${j}: WebSocket error`));
      ws.onmessage = (e) => onFrame(new Uint8Array(e.data as ArrayBuffer));
      sockets.push(ws);
    })),
);
let talkDue = 0;
let talkSent = 0;
let talkSkipped = 0;
let talkLateMax = 0;
if (talk) {
  const t0 = monoNs() + 500e6;
  console.log(`CONNECTED ${t0}`);
  startTalkers(t0);
} else console.log("CONNECTED");
await new Promise((r) => setTimeout(r, seconds * 1000));
const a = lat.slice(0, latN).sort();
const q = (p: number) => (latN ? a[Math.min(latN - 1, Math.floor(p * latN))]! / 1000 : -1);
console.log(JSON.stringify({
  viewers: calls * viewers,
  recv_counted: counted,
  recv_total: total,
  bad,
  p50_us: q(0.5),
  p99_us: q(0.99),
  p999_us: q(0.999),
  max_us: q(1),
  ...(talk
    ? {
      talk_due: talkDue,
      talk_sent: talkSent,
      talk_skipped: talkSkipped,
      talk_late_max_us: talkLateMax / 1000,
    }
    : {}),
}));
for (const ws of sockets) ws.close();
Deno.exit(0);

/**
 * The talkers: viewer 0 of each call sends its audio from now on, one periodic sequence over the
 * calls with interval 8 ms / CALLS from `t0` on (frames before `t0` fill the relay's talker path
 * first), until the end of the counted window.
 */
function startTalkers(t0: number): void {
  const template = encodeMedia({
    op: 8,
    caller: "S00010108090",
    callerIp: "127.0.0.1",
    callee: "M00010100",
    calleeIp: "127.0.1.1",
    timestamp: 0,
    dataType: 1,
    frameNo: 0,
    payload: new Uint8Array(64),
  });
  const step = 8e6 / calls;
  const countFrom = t0 + warmup * 1e9;
  const end = countFrom + duration * 1e9;
  const seq = new Uint32Array(calls);
  const talkers = sockets.filter((_, j) => j % viewers === 0);
  // the sequence starts 0.2 s before t0: the talker path is warm when the window opens
  let next = t0 - 200e6;
  let i = 0;
  const timer = setInterval(() => {
    const now = monoNs();
    while (next <= now && next < end) {
      const counted = next >= countFrom;
      const late = now - next;
      if (counted && late > talkLateMax) talkLateMax = late;
      const s = seq[i]!++;
      const ws = talkers[i]!;
      if (counted) talkDue++;
      if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > 65536) {
        if (counted) talkSkipped++;
      } else {
        const f = template.slice();
        f[57] = (s * 8) & 255, f[58] = ((s * 8) >>> 8) & 255; // media timestamp (rewritten)
        f[63] = (s + 1) & 255, f[64] = ((s + 1) >>> 8) & 255; // frame number (rewritten)
        f[77] = i & 255, f[78] = i >>> 8, f[79] = 3, f[80] = counted ? 1 : 0;
        f[81] = s & 255, f[82] = (s >>> 8) & 255, f[83] = (s >>> 16) & 255, f[84] = s >>> 24;
        const t = monoNs();
        const lo = t % 4294967296;
        const hi = Math.floor(t / 4294967296);
        f[85] = lo & 255, f[86] = (lo >>> 8) & 255, f[87] = (lo >>> 16) & 255, f[88] = lo >>> 24;
        f[89] = hi & 255, f[90] = (hi >>> 8) & 255, f[91] = (hi >>> 16) & 255, f[92] = hi >>> 24;
        ws.send(f);
        if (counted) talkSent++;
      }
      next += step;
      if (++i === calls) i = 0;
    }
    if (next >= end) clearInterval(timer);
  }, 1);
}
