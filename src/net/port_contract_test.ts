// The DatagramPort contract, run against every implementation: the real UDP port (loopback,
// only inside the test namespace) and the in-memory one the unit tests use. What the gateway's
// loops rely on holds for both, so a test that passes on MemoryNetwork means the same on a socket.
import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { inNetns } from "../../tests/helpers/netns.ts";
import { MemoryNetwork, nullLogger } from "../testing/mod.ts";
import { receivePool } from "./buffer_pool.ts";
import type { DatagramPort, Endpoint } from "./port.ts";
import { receiveLoop } from "./receive_loop.ts";
import { openUdpPort } from "./udp.ts";

const HOST = "127.0.0.1";

/** One implementation: `open` binds a fresh port on {@linkcode HOST} (all on one network). */
interface Implementation {
  name: string;
  /** False where the implementation cannot run here (UDP outside the namespace). */
  runs: boolean;
  network(): { open(options?: { pooled?: boolean }): Promise<DatagramPort> };
}

const IMPLEMENTATIONS: readonly Implementation[] = [
  {
    name: "udp",
    runs: inNetns,
    network: () => ({
      open: (o = {}) => openUdpPort({ hostname: HOST, port: 0, pooled: o.pooled ?? false }),
    }),
  },
  {
    name: "memory",
    runs: true,
    network: () => {
      const net = new MemoryNetwork();
      let next = 40000;
      return { open: () => Promise.resolve(net.bind(HOST, next++)) };
    },
  },
];

/** `p`, or a rejection after `ms` (the timer is cleared either way). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Cannot finish ${what}: ${ms} ms passed`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Lets sends in flight settle (the runtime completes them on a later turn). */
const settle = () => new Promise((r) => setTimeout(r, 20));

const bytes = (...xs: number[]) => new Uint8Array(xs);
const sameEndpoint = (a: Endpoint, b: Endpoint) =>
  assertEquals([a.hostname, a.port], [
    b.hostname,
    b.port,
  ]);

/** Opens `n` ports, runs `fn`, closes them all. */
async function withPorts(
  impl: Implementation,
  opts: { pooled?: boolean }[],
  fn: (...ports: DatagramPort[]) => Promise<void>,
): Promise<void> {
  const net = impl.network();
  const ports: DatagramPort[] = [];
  try {
    for (const o of opts) ports.push(await net.open(o));
    await fn(...ports);
  } finally {
    for (const p of ports) p.close();
    await settle();
  }
}

for (const impl of IMPLEMENTATIONS) {
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({ name: `port contract (${impl.name}): ${name}`, ignore: !impl.runs, fn });

  test("local is a bound address the others reach it at; from is the sender's local", async () => {
    await withPorts(impl, [{}, {}], async (a, b) => {
      assertEquals(a.local.hostname, HOST);
      assert(Number.isInteger(a.local.port) && a.local.port > 0, `port ${a.local.port}`);
      assert(a.local.port !== b.local.port);
      a.send(bytes(1, 2, 3), b.local);
      const [data, from] = await within(b.receive(), 2000, "receive");
      assertEquals([...data], [1, 2, 3]);
      sameEndpoint(from, a.local);
      b.release(data);
      b.send(bytes(4), from);
      const [back, from2] = await within(a.receive(), 2000, "receive back");
      assertEquals([...back], [4]);
      sameEndpoint(from2, b.local);
      a.release(back);
    });
  });

  test("every datagram arrives whole and apart, empty and 1,400-byte ones too", async () => {
    await withPorts(impl, [{}, {}], async (a, b) => {
      const sent = [bytes(), new Uint8Array(1400).fill(7), bytes(9, 9)];
      for (const d of sent) a.send(d, b.local);
      const got: number[][] = [];
      for (let i = 0; i < sent.length; i++) {
        const [data] = await within(b.receive(), 2000, `receive ${i}`);
        got.push([...data]);
        b.release(data);
      }
      const key = (x: number[]) => `${x.length}:${x.join(",")}`;
      assertEquals(got.map(key).sort(), sent.map((d) => key([...d])).sort());
      assertEquals([a.sendErrors, b.sendErrors], [0, 0]);
    });
  });

  test("close rejects a pending receive and every later one; closed and close() idempotent", async () => {
    await withPorts(impl, [{}], async (a) => {
      assertEquals(a.closed, false);
      const pending = a.receive();
      a.close();
      a.close();
      assertEquals(a.closed, true);
      await within(assertRejects(() => pending), 2000, "the pending receive");
      await within(assertRejects(() => a.receive()), 2000, "a receive after close");
    });
  });

  test("datagrams not yet received when the port closes are dropped", async () => {
    await withPorts(impl, [{}, {}], async (a, b) => {
      a.send(bytes(1), b.local);
      await settle(); // arrived, not received
      b.close();
      await within(assertRejects(() => b.receive()), 2000, "a receive after close");
    });
  });

  test("close ends a receive loop: it resolves, and what came before was handled", async () => {
    await withPorts(impl, [{}, {}], async (a, b) => {
      const handled: number[] = [];
      let gotFirst: () => void = () => {};
      const first = new Promise<void>((r) => (gotFirst = r));
      const loop = receiveLoop(b, (data) => {
        handled.push(data[0]!);
        gotFirst();
      }, nullLogger);
      a.send(bytes(5), b.local);
      await within(first, 2000, "the first datagram");
      b.close();
      await within(loop, 2000, "the receive loop");
      assertEquals(handled, [5]);
    });
  });

  test("sending after close throws nothing, is counted as a send error and delivers nothing", async () => {
    await withPorts(impl, [{}, {}], async (a, b) => {
      a.close();
      a.send(bytes(1), b.local);
      assertEquals(a.sendErrors, 1);
      const pending = b.receive();
      pending.catch(() => {}); // rejected when b closes
      const first = await Promise.race([
        pending.then(() => "a datagram"),
        settle().then(() => "none"),
      ]);
      assertEquals(first, "none");
    });
  });

  test("pooled: bytes forwarded then released at once arrive intact; every buffer comes back", async () => {
    const leasedBefore = receivePool.leased;
    await withPorts(impl, [{}, { pooled: true }, {}], async (src, fwd, dst) => {
      const n = 50;
      const forwarder = (async () => {
        for (;;) {
          const [data] = await fwd.receive();
          fwd.send(data, dst.local);
          fwd.release(data); // before the send has settled: the pool must keep the bytes
        }
      })().catch(() => {});
      for (let i = 0; i < n; i++) src.send(new Uint8Array(600).fill(i), fwd.local);
      const got = new Set<number>();
      while (got.size < n) {
        const [data] = await within(dst.receive(), 2000, `forwarded datagram ${got.size}`);
        assert(data.length === 600 && data.every((x) => x === data[0]), "bytes changed in flight");
        got.add(data[0]!);
        dst.release(data);
      }
      fwd.close();
      await forwarder;
    });
    assertEquals(receivePool.leased, leasedBefore, "a pooled buffer was not given back");
  });
}
