// deno-lint-ignore-file no-console
/**
 * relay_deno.ts - the benchmark relay in Deno, in several forms (see README.md).
 *
 *   deno run --unstable-net --allow-net [--allow-ffi --allow-read] relay_deno.ts \
 *     MODE PORT_A PORT_B DOOR_BASE PHONE_BASE CALLS [K]
 *
 * MODE:
 *   naive    `for await (... of conn)` + `await send()` per datagram (one loop per socket)
 *   bufloop  one loop per socket, own reused 2 KiB buffer, `await send()`
 *   pumps    K loops per socket, each with its own buffer, each awaiting its send
 *   fire     fast_udp.ts forwardDatagrams(): K receives outstanding (default 1), sends not awaited
 *   workers  one Worker per direction, each running `fire` on its own socket pair
 *   ffi      libc recvmmsg/sendmmsg through Deno.dlopen (batching, routing in JS)
 *   ffi-thread  C forwarder thread from .build/libfwd.so (fwd_thread.c); JS only sets routes
 *
 * @module
 */
import { forwardDatagrams } from "./fast_udp.ts";

const [mode = "fire", ...rest] = Deno.args;
const [pa = 0, pb = 0, doorBase = 0, phoneBase = 0, calls = 0, kOpt] = rest.map(Number);
/** receives outstanding per socket (pumps, fire, workers); fire defaults to fast_udp's default */
const kArg = kOpt ?? 1;
const HOST = "127.0.0.1";

/** source port -> destination address, one table per direction */
function tables(): [Map<number, Deno.NetAddr>, Map<number, Deno.NetAddr>] {
  const aToB = new Map<number, Deno.NetAddr>();
  const bToA = new Map<number, Deno.NetAddr>();
  for (let i = 0; i < calls; i++) {
    aToB.set(doorBase + i, { transport: "udp", hostname: HOST, port: phoneBase + i });
    bToA.set(phoneBase + i, { transport: "udp", hostname: HOST, port: doorBase + i });
  }
  return [aToB, bToA];
}

function listen(port: number): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname: HOST, port });
}

async function naive(src: Deno.DatagramConn, out: Deno.DatagramConn, t: Map<number, Deno.NetAddr>) {
  for await (const [data, from] of src) {
    const to = t.get((from as Deno.NetAddr).port);
    if (to) await out.send(data, to);
  }
}

async function loop(src: Deno.DatagramConn, out: Deno.DatagramConn, t: Map<number, Deno.NetAddr>) {
  const buf = new Uint8Array(2048);
  for (;;) {
    const [data, from] = await src.receive(buf);
    const to = t.get((from as Deno.NetAddr).port);
    if (to) await out.send(data, to);
  }
}

const isWorker =
  typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined";

if (isWorker) {
  // Worker side of mode "workers": one direction.  Sockets cannot be shared
  // between isolates, so each worker binds its *send* port with reuseAddress
  // first, then (when told) its *receive* port with reuseAddress.  On Linux the
  // last socket bound to a SO_REUSEADDR port receives its unicast traffic, so the
  // earlier send-only socket never sees packets, but datagrams still leave from
  // the right source port (A or B), as with the other relays.
  const scope = globalThis as unknown as {
    onmessage: (e: MessageEvent) => void;
    postMessage: (m: unknown) => void;
  };
  let out: Deno.DatagramConn | undefined;
  scope.onmessage = (e: MessageEvent) => {
    const c = e.data as {
      step: string;
      recvPort: number;
      sendPort: number;
      srcBase: number;
      dstBase: number;
      calls: number;
      k: number;
    };
    if (c.step === "send") {
      out = Deno.listenDatagram({
        transport: "udp",
        hostname: HOST,
        port: c.sendPort,
        reuseAddress: true,
      });
    } else {
      const t = new Map<number, Deno.NetAddr>();
      for (let i = 0; i < c.calls; i++) {
        t.set(c.srcBase + i, { transport: "udp", hostname: HOST, port: c.dstBase + i });
      }
      const inSock = Deno.listenDatagram({
        transport: "udp",
        hostname: HOST,
        port: c.recvPort,
        reuseAddress: true,
      });
      forwardDatagrams(inSock, out!, (_d, f) => t.get(f.port), { concurrency: c.k });
    }
    scope.postMessage("ok");
  };
} else if (mode === "workers") {
  const spec = [
    { recvPort: pa, sendPort: pb, srcBase: doorBase, dstBase: phoneBase, calls, k: kArg },
    { recvPort: pb, sendPort: pa, srcBase: phoneBase, dstBase: doorBase, calls, k: kArg },
  ];
  const workers = spec.map(() => new Worker(import.meta.url, { type: "module" }));
  const step = (name: string) =>
    Promise.all(workers.map((w, i) =>
      new Promise<void>((res) => {
        w.onmessage = () => res();
        w.postMessage({ ...spec[i], step: name });
      })
    ));
  await step("send");
  await step("recv");
  console.log("READY");
} else if (mode === "ffi-thread") {
  const lib = Deno.dlopen(new URL("./.build/libfwd.so", import.meta.url), {
    fwd_start: { parameters: ["u16", "u16"], result: "i32" },
    fwd_route: { parameters: ["i32", "u16", "u16"], result: "i32" },
  });
  const rc = lib.symbols.fwd_start(pa, pb);
  if (rc !== 0) throw new Error(`fwd_start: ${rc}`);
  for (let i = 0; i < calls; i++) {
    lib.symbols.fwd_route(0, doorBase + i, phoneBase + i);
    lib.symbols.fwd_route(1, phoneBase + i, doorBase + i);
  }
  setInterval(() => {}, 1 << 30); // keep the process alive; the thread does the work
  console.log("READY");
} else if (mode === "ffi") {
  const { ffiRelay } = await import("./relay_deno_ffi.ts");
  ffiRelay(pa, pb, doorBase, phoneBase, calls);
  console.log("READY");
} else {
  const a = listen(pa);
  const b = listen(pb);
  const [aToB, bToA] = tables();
  const fromA = (_d: Uint8Array, f: Deno.NetAddr) => aToB.get(f.port);
  const fromB = (_d: Uint8Array, f: Deno.NetAddr) => bToA.get(f.port);
  switch (mode) {
    case "naive":
      naive(a, b, aToB);
      naive(b, a, bToA);
      break;
    case "bufloop":
      loop(a, b, aToB);
      loop(b, a, bToA);
      break;
    case "pumps":
      for (let i = 0; i < kArg; i++) {
        loop(a, b, aToB);
        loop(b, a, bToA);
      }
      break;
    case "fire":
      forwardDatagrams(a, b, fromA, kOpt === undefined ? {} : { concurrency: kOpt });
      forwardDatagrams(b, a, fromB, kOpt === undefined ? {} : { concurrency: kOpt });
      break;
    default:
      console.error(`unknown mode ${mode}`);
      Deno.exit(2);
  }
  console.log("READY");
}
