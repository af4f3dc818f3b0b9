/**
 * Tests for fast_udp.ts.  bench/ is excluded from the project's `deno test` config, so run:
 *   deno test --no-config --unstable-net --allow-net bench/media/fast_udp_test.ts
 * @module
 */
import { forwardDatagrams } from "./fast_udp.ts";

const HOST = "127.0.0.1";
const listen = () => Deno.listenDatagram({ transport: "udp", hostname: HOST, port: 0 });
const port = (c: Deno.DatagramConn) => (c.addr as Deno.NetAddr).port;
const addr = (p: number): Deno.NetAddr => ({ transport: "udp", hostname: HOST, port: p });

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

Deno.test("forwards routed datagrams intact and in order, drops unrouted ones", async () => {
  const relayIn = listen();
  const relayOut = listen();
  const sender = listen();
  const stranger = listen();
  const sink = listen();
  const fwd = forwardDatagrams(
    relayIn,
    relayOut,
    (_d, from) => from.port === port(sender) ? addr(port(sink)) : undefined,
    { maxInFlight: 4 },
  );

  const N = 500;
  const got: number[] = [];
  const receiving = (async () => {
    const buf = new Uint8Array(2048);
    while (got.length < N) {
      const [d] = await sink.receive(buf);
      // every byte carries the sequence number: catches buffer reuse before a send completed
      const seq = d[0]! | (d[1]! << 8);
      assert(d.length === 200 + (seq % 50), `length of ${seq}`);
      for (let i = 2; i < d.length; i++) assert(d[i] === (seq & 0xff), `byte ${i} of ${seq}`);
      got.push(seq);
    }
  })();
  for (let s = 0; s < N; s++) {
    const p = new Uint8Array(200 + (s % 50)).fill(s & 0xff);
    p[0] = s & 0xff;
    p[1] = s >> 8;
    await sender.send(p, addr(port(relayIn)));
    if (s % 100 === 0) await stranger.send(new Uint8Array(10), addr(port(relayIn)));
    if (s % 50 === 0) await new Promise((r) => setTimeout(r, 1)); // stay under socket buffers
  }
  await receiving;
  assert(got.every((v, i) => v === i), "order");
  assert(fwd.stats.forwarded === N, `forwarded ${fwd.stats.forwarded}`);
  assert(fwd.stats.unrouted === 5, `unrouted ${fwd.stats.unrouted}`);

  relayIn.close();
  await fwd.done;
  assert(fwd.stats.inFlight === 0, "in flight after done");
  for (const c of [relayOut, sender, stranger, sink]) c.close();
});

Deno.test("a failing route destination counts send errors and keeps forwarding", async () => {
  const relayIn = listen();
  const relayOut = listen();
  const sender = listen();
  const sink = listen();
  let errors = 0;
  let n = 0;
  const fwd = forwardDatagrams(
    relayIn,
    relayOut,
    // every other datagram goes to port 0, which the OS refuses
    () => (n++ % 2 ? addr(port(sink)) : addr(0)),
    { onSendError: () => errors++ },
  );
  for (let i = 0; i < 10; i++) await sender.send(new Uint8Array([i]), addr(port(relayIn)));
  const buf = new Uint8Array(64);
  for (let i = 0; i < 5; i++) await sink.receive(buf);
  relayIn.close();
  await fwd.done;
  assert(fwd.stats.sendErrors === 5 && errors === 5, `errors ${fwd.stats.sendErrors}`);
  for (const c of [relayOut, sender, sink]) c.close();
});
