import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { openUdpPort } from "./udp.ts";
import { receivePool } from "./buffer_pool.ts";

Deno.test("pooled ports: forwarded bytes stay intact while buffers are reused; every buffer comes back", async () => {
  const a = await openUdpPort({ hostname: "127.0.0.1", port: 0, pooled: true });
  const b = await openUdpPort({ hostname: "127.0.0.1", port: 0, pooled: true });
  const c = await openUdpPort({ hostname: "127.0.0.1", port: 0 });
  let forwarder: Promise<void> = Promise.resolve();
  let receiver: Promise<void> = Promise.resolve();
  try {
    const n = 500;
    // c → a, a forwards each datagram to b without copying, then releases it at once.
    forwarder = (async () => {
      for (;;) {
        const [data] = await a.receive();
        a.send(data, b.local);
        a.release(data);
      }
    })().catch(() => {});
    const got: number[] = [];
    receiver = (async () => {
      while (got.length < n) {
        const [data] = await b.receive();
        const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
        assert(
          data.length === 1200 && data.every((x, i) => i < 4 || x === (v.getUint32(0) & 0xff)),
        );
        got.push(v.getUint32(0));
        b.release(data);
      }
    })().catch(() => {});
    for (let i = 0; i < n; i++) {
      const d = new Uint8Array(1200).fill(i & 0xff);
      new DataView(d.buffer).setUint32(0, i);
      c.send(d, a.local);
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 2));
    }
    // The forwarder runs until its port closes: wait for the receiver only (at most 5 s).
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([receiver, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    assert(got.length >= n * 0.95, `received ${got.length} of ${n}`);
    await new Promise((r) => setTimeout(r, 50));
    assertEquals(receivePool.leased, 1, "only the forwarder's pending receive holds a buffer");
  } finally {
    a.close();
    b.close();
    c.close();
    await Promise.all([forwarder, receiver]);
  }
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(receivePool.leased, 0);
});
