import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { inNetns } from "../../tests/helpers/netns.ts";
import { TIME_SCALE } from "../../tests/helpers/scale.ts";
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
      // Paced for the forwarder: an emulated one (qemu-user, TIME_SCALE 4) reads a quarter as fast.
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 2 * TIME_SCALE));
    }
    // The forwarder runs until its port closes: wait for the receiver only (at most 5 s, scaled).
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      receiver,
      new Promise((r) => (timer = setTimeout(r, 5000 * TIME_SCALE))),
    ]);
    clearTimeout(timer);
    assert(got.length >= n * 0.95, `received ${got.length} of ${n}`);
    // The forwarder drains what still sits in its socket (slowly under emulation), then waits.
    for (let i = 0; i < 40 * TIME_SCALE && receivePool.leased !== 1; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
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

/** The error `fn` rejects with (fails the test when it resolves). */
async function rejection(fn: () => Promise<{ close(): void }>): Promise<Error> {
  try {
    (await fn()).close();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

/** A UDP port that is free now (bound and released). */
function freePort(): number {
  const c = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (c.addr as Deno.NetAddr).port;
  c.close();
  return port;
}

Deno.test("share specific: a second socket on every address is refused; a simulator's address is not", async () => {
  const port = freePort();
  const gateway = await openUdpPort({ port, share: "specific" });
  try {
    assert(
      (await rejection(() => openUdpPort({ port, share: "specific" }))) instanceof
        Deno.errors.AddrInUse,
    );
    // Without the probe the kernel lets a second SO_REUSEADDR socket take the port (and the
    // first one's unicast traffic): what share "any" still allows.
    const thief = await openUdpPort({ port });
    thief.close();
    const door = await openUdpPort({ hostname: "127.0.0.2", port });
    door.close();
  } finally {
    gateway.close();
  }
});

Deno.test("share specific: refused beside an older holder of every address, fine beside a door simulator", async () => {
  const port = freePort();
  const older = await openUdpPort({ port });
  assert(
    (await rejection(() => openUdpPort({ port, share: "specific" }))) instanceof
      Deno.errors.AddrInUse,
  );
  older.close();
  const door = await openUdpPort({ hostname: "127.0.0.2", port });
  try {
    const gateway = await openUdpPort({ port, share: "specific" });
    gateway.close();
  } finally {
    door.close();
  }
});

Deno.test("share none: nobody else binds the port, on any address", async () => {
  const port = freePort();
  const media = await openUdpPort({ port, share: "none" });
  try {
    assert((await rejection(() => openUdpPort({ port }))) instanceof Deno.errors.AddrInUse);
    assert(
      (await rejection(() => openUdpPort({ hostname: "127.0.0.2", port }))) instanceof
        Deno.errors.AddrInUse,
    );
  } finally {
    media.close();
  }
});

Deno.test({
  name: "multicast: joined on each interface that takes it; fails only when none does",
  ignore: !inNetns,
  fn: async () => {
    // The namespace has lo only: 127.0.0.1 and 0.0.0.0 (routed to lo) are the same interface,
    // so the second join is refused, and 10.9.9.9 is no interface at all.
    const port = await openUdpPort({
      hostname: "0.0.0.0",
      port: 0,
      multicast: { group: "238.9.9.7", interface: ["127.0.0.1", "0.0.0.0", "10.9.9.9"] },
    });
    try {
      assertEquals(port.multicast?.joined, ["127.0.0.1"]);
      assertEquals(port.multicast?.failed.map((f) => f.interface), ["0.0.0.0", "10.9.9.9"]);
    } finally {
      port.close();
    }
    const e = await rejection(() =>
      openUdpPort({ port: 0, multicast: { group: "238.9.9.7", interface: ["10.9.9.9"] } })
    );
    assert(/^Cannot join multicast group 238\.9\.9\.7: .*os error 19/.test(e.message), e.message);
  },
});
