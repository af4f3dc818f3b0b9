// deno-lint-ignore-file no-console
/**
 * ws_viewers.ts - web-phone viewers for the media bench: V WebSockets per call to the product
 * relay's WebSocket port (relay_product.ts with `WS_VIEWERS`), each receiving the call's door
 * video and audio as binary frames, as the web phone does over the `ws` transport.
 *
 *   deno run --allow-net --allow-ffi ws_viewers.ts PORT CALLS VIEWERS SECONDS
 *
 * Connects every viewer, prints `CONNECTED`, then counts for SECONDS and prints one JSON line:
 * frames received inside the load's measuring window (byte 80 bit 0, as load.c counts),
 * latency from load.c's send time (CLOCK_MONOTONIC ns at byte 85, read here with libc's
 * `clock_gettime` through FFI: the same clock) to this receive, p50/p99/p999/max in µs.
 *
 * @module
 */

const [port = 0, calls = 0, viewers = 0, seconds = 0] = Deno.args.map(Number);

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
console.log("CONNECTED");
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
}));
for (const ws of sockets) ws.close();
Deno.exit(0);
