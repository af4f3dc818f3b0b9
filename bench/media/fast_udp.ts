/**
 * fast_udp.ts - the fastest pure-Deno UDP forwarding loop measured in bench/media
 * (figures in docs/performance.md).  Self-contained, no imports; needs `--unstable-net`.
 *
 * What matters with `Deno.DatagramConn` (Deno 2.9.6), by effect:
 * 1. Pass your own buffer: `receive(buf)`.  `receive()` without one, and therefore
 *    `for await (... of conn)`, allocates a fresh zeroed 65,507-byte `Uint8Array` per
 *    datagram (~1.4 GB/s of garbage at 22,500 pkt/s): 1.1-1.6x Node's CPU per packet and
 *    GC stalls that lose packets.  The datagram returned is a subarray of `buf`.
 * 2. Do not await `send()` on the receive path.  CPU-neutral here, but a slow send
 *    (full socket buffer, name resolution) no longer stalls every other call's
 *    packets.  An unawaited send still reads `buf`, so a buffer goes back to the
 *    pool only when its send settles; in-flight sends are bounded.
 * 3. Keep ONE `receive()` outstanding per socket (`concurrency: 1`, the default).
 *    More looks attractive but every datagram wakes all pending receives and the
 *    losers each make a `recvfrom` that returns EAGAIN: at 8 outstanding the
 *    syscalls per relayed packet double (3.5 -> 6.7) and CPU per packet rises 10-30%.
 * 4. Precompute destination `Deno.NetAddr` objects; route with a `Map` lookup.
 *
 * @example
 * ```ts
 * const door = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 47100 });
 * const phone = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 47101 });
 * const routes = new Map<number, Deno.NetAddr>(); // door source port -> phone address
 * const fwd = forwardDatagrams(door, phone, (_data, from) => routes.get(from.port));
 * // ... later: door.close(); await fwd.done;
 * ```
 *
 * @module
 */

/** Picks the destination for one datagram, or `undefined` to drop it. */
export type RouteFn = (data: Uint8Array, from: Deno.NetAddr) => Deno.NetAddr | undefined;

/** Tuning knobs for {@linkcode forwardDatagrams}. */
export interface ForwardOptions {
  /**
   * Number of `receive()` calls kept outstanding on the source socket. Default 1;
   * values above 2 cost extra `recvfrom` syscalls (see module docs).
   */
  concurrency?: number;
  /**
   * Maximum unsettled `send()` calls. When reached, the pump that hit the limit
   * awaits its own send before receiving again (backpressure, not drops). Default 256.
   */
  maxInFlight?: number;
  /** Receive buffer size in bytes; larger datagrams are truncated. Default 2048. */
  bufferSize?: number;
  /** Called for every failed send (the datagram is lost). Default: count only. */
  onSendError?: (err: unknown) => void;
}

/** Live counters of one forwarder. */
export interface ForwardStats {
  /** Datagrams received. */
  received: number;
  /** Datagrams handed to `send()`. */
  forwarded: number;
  /** Datagrams the route function dropped. */
  unrouted: number;
  /** Sends that rejected. */
  sendErrors: number;
  /** Sends not yet settled. */
  inFlight: number;
}

/** Handle returned by {@linkcode forwardDatagrams}. */
export interface Forwarder {
  /** Live counters. */
  readonly stats: ForwardStats;
  /** Resolves once every pump stopped (source socket closed) and sends settled. */
  readonly done: Promise<void>;
}

/**
 * Forwards every datagram received on `src` out of `out` to `route(data, from)`,
 * keeping `concurrency` receives outstanding and not awaiting sends.  Datagrams
 * leave in the order they were received when `concurrency` is 1 (sends are
 * issued in receive order; no reordering was seen at 2..8 either).
 * Stops when `src` is closed (its pending receives reject).
 * `src` and `out` may be the same socket.
 */
export function forwardDatagrams(
  src: Deno.DatagramConn,
  out: Deno.DatagramConn,
  route: RouteFn,
  opts: ForwardOptions = {},
): Forwarder {
  const concurrency = opts.concurrency ?? 1;
  const maxInFlight = opts.maxInFlight ?? 256;
  const bufferSize = opts.bufferSize ?? 2048;
  const onSendError = opts.onSendError;
  const stats: ForwardStats = {
    received: 0,
    forwarded: 0,
    unrouted: 0,
    sendErrors: 0,
    inFlight: 0,
  };
  const pool: Uint8Array[] = [];
  let idle: (() => void) | undefined;

  const settle = (buf: Uint8Array): void => {
    stats.inFlight--;
    pool.push(buf);
    if (idle !== undefined && stats.inFlight === 0) idle();
  };

  async function pump(): Promise<void> {
    for (;;) {
      const buf = pool.pop() ?? new Uint8Array(bufferSize);
      let data: Uint8Array;
      let from: Deno.Addr;
      try {
        [data, from] = await src.receive(buf);
      } catch {
        pool.push(buf);
        return; // socket closed
      }
      stats.received++;
      const to = route(data, from as Deno.NetAddr);
      if (to === undefined) {
        stats.unrouted++;
        pool.push(buf);
        continue;
      }
      stats.forwarded++;
      stats.inFlight++;
      const p = out.send(data, to).then(
        () => settle(buf),
        (err) => {
          stats.sendErrors++;
          onSendError?.(err);
          settle(buf);
        },
      );
      if (stats.inFlight > maxInFlight) await p;
    }
  }

  const pumps: Promise<void>[] = [];
  for (let i = 0; i < concurrency; i++) pumps.push(pump());
  const done = Promise.all(pumps).then(() =>
    stats.inFlight === 0 ? undefined : new Promise<void>((resolve) => {
      idle = resolve;
    })
  );
  return { stats, done };
}
