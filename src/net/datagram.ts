/**
 * The datagram port: the one interface the gateway's UDP logic talks to, with an adapter over
 * `Deno.listenDatagram` and an in-memory network for tests.
 *
 * @module
 */

/** A UDP peer. */
export interface Endpoint {
  readonly hostname: string;
  readonly port: number;
}

/** A bound UDP socket. */
export interface DatagramPort {
  /** The bound address. */
  readonly local: Endpoint;
  /**
   * Sends without waiting; a failure is counted in {@linkcode DatagramPort.sendErrors}, never
   * thrown. The bytes must not change until the next turn of the event loop.
   */
  send(data: Uint8Array, to: Endpoint): void;
  /** The next datagram; rejects once the port is closed. */
  receive(): Promise<[Uint8Array, Endpoint]>;
  /**
   * Hands a received datagram's buffer back (pooled ports reuse it once every send of those
   * bytes has settled). Call it when done with the bytes; a no-op for unpooled ports.
   */
  release(data: Uint8Array): void;
  /** Closes the port; pending receives reject. Idempotent. */
  close(): void;
  /** Sends that failed (unreachable, closed, …). */
  readonly sendErrors: number;
  /** True once closed. */
  readonly closed: boolean;
}

/** Options of {@linkcode openUdpPort}. */
export interface UdpPortOptions {
  /** @default {"0.0.0.0"} */
  hostname?: string;
  port: number;
  /** Multicast group to join, with the interface address to join on. */
  multicast?: { group: string; interface: string };
  /**
   * Receive into pooled buffers (no allocation per datagram); the consumer must
   * {@linkcode DatagramPort.release} every datagram. @default false
   */
  pooled?: boolean;
}

/** Largest datagram a port receives whole; longer ones are truncated (and fail to decode). */
export const RECEIVE_BUFFER_SIZE = 2048;

/**
 * Receive buffers shared by every pooled port, reference-counted: one for the receiver, one per
 * send in flight (the runtime reads the bytes after `send` returns). A buffer goes back to the
 * pool when its count reaches zero. This is what keeps the media path free of per-packet
 * allocation (`receive()` without a buffer allocates 64 KiB per datagram).
 */
class BufferPool {
  #free: Uint8Array[] = [];
  #refs = new Map<ArrayBufferLike, { buf: Uint8Array; n: number }>();

  /** A buffer with one reference (the receiver's). */
  lease(): Uint8Array {
    const buf = this.#free.pop() ?? new Uint8Array(RECEIVE_BUFFER_SIZE);
    this.#refs.set(buf.buffer, { buf, n: 1 });
    return buf;
  }

  /** Adds a reference if `data` lies in a pooled buffer; true when it does. */
  retain(data: Uint8Array): boolean {
    const r = this.#refs.get(data.buffer);
    if (!r) return false;
    r.n++;
    return true;
  }

  /** Drops a reference; the buffer is free again at zero. */
  release(data: Uint8Array): void {
    const r = this.#refs.get(data.buffer);
    if (!r || --r.n > 0) return;
    this.#refs.delete(data.buffer);
    if (this.#free.length < 1024) this.#free.push(r.buf);
  }

  /** Buffers leased and not yet free (leak checks). */
  get leased(): number {
    return this.#refs.size;
  }
}

/** The process-wide pool of receive buffers. */
export const receivePool: BufferPool = new BufferPool();

/** `"host:port"`: the key used for endpoints in maps. */
export function endpointKey(e: Endpoint): string {
  return `${e.hostname}:${e.port}`;
}

class DenoDatagramPort implements DatagramPort {
  readonly local: Endpoint;
  #conn: Deno.DatagramConn;
  #closed = false;
  #sendErrors = 0;
  #membership: Deno.MulticastV4Membership | undefined;

  #pooled: boolean;

  constructor(conn: Deno.DatagramConn, pooled: boolean) {
    this.#conn = conn;
    this.#pooled = pooled;
    const addr = conn.addr as Deno.NetAddr;
    this.local = { hostname: addr.hostname, port: addr.port };
  }

  set membership(m: Deno.MulticastV4Membership) {
    this.#membership = m;
  }

  get sendErrors(): number {
    return this.#sendErrors;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(data: Uint8Array, to: Endpoint): void {
    if (this.#closed) {
      this.#sendErrors++;
      return;
    }
    const pooled = receivePool.retain(data);
    const sent = this.#conn.send(data, { transport: "udp", hostname: to.hostname, port: to.port });
    sent.then(
      () => pooled && receivePool.release(data),
      () => {
        this.#sendErrors++;
        if (pooled) receivePool.release(data);
      },
    );
  }

  async receive(): Promise<[Uint8Array, Endpoint]> {
    const buf = this.#pooled ? receivePool.lease() : new Uint8Array(RECEIVE_BUFFER_SIZE);
    let data: Uint8Array;
    let addr: Deno.Addr;
    try {
      [data, addr] = await this.#conn.receive(buf);
    } catch (e) {
      if (this.#pooled) receivePool.release(buf);
      throw e;
    }
    const a = addr as Deno.NetAddr;
    return [data, { hostname: a.hostname, port: a.port }];
  }

  release(data: Uint8Array): void {
    if (this.#pooled) receivePool.release(data);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#membership?.leave().catch(() => {});
    try {
      this.#conn.close();
    } catch {
      // already closed by the runtime
    }
  }
}

/** Binds a real UDP socket (needs `--unstable-net` and net permission). */
export async function openUdpPort(options: UdpPortOptions): Promise<DatagramPort> {
  const conn = Deno.listenDatagram({
    transport: "udp",
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port,
    reuseAddress: true,
    loopback: true,
  });
  const port = new DenoDatagramPort(conn, options.pooled ?? false);
  if (options.multicast) {
    try {
      const m = await conn.joinMulticastV4(options.multicast.group, options.multicast.interface);
      await m.setLoopback(true);
      await m.setTTL(5);
      port.membership = m;
    } catch (e) {
      port.close();
      throw new Error(`Cannot join multicast group ${options.multicast.group}: ${String(e)}`, {
        cause: e,
      });
    }
  }
  return port;
}

/** An in-process network of {@linkcode DatagramPort}s for unit tests. Delivery is synchronous-queued. */
export class MemoryNetwork {
  #ports = new Map<string, MemoryPort>();
  #groups = new Map<string, Set<MemoryPort>>();

  /** Binds a port at `hostname:port`. */
  bind(hostname: string, port: number): MemoryPort {
    const p = new MemoryPort(this, { hostname, port });
    this.#ports.set(endpointKey(p.local), p);
    return p;
  }

  /** Makes `port` receive datagrams sent to `group` at its port number. */
  join(port: MemoryPort, group: string): void {
    const key = `${group}:${port.local.port}`;
    if (!this.#groups.has(key)) this.#groups.set(key, new Set());
    this.#groups.get(key)!.add(port);
  }

  /** @internal */
  deliver(data: Uint8Array, from: Endpoint, to: Endpoint): void {
    const copy = data.slice();
    const group = this.#groups.get(endpointKey(to));
    if (group) { for (const p of group) p.push(copy, from); }
    this.#ports.get(endpointKey(to))?.push(copy, from);
  }

  /** @internal */
  unbind(p: MemoryPort): void {
    this.#ports.delete(endpointKey(p.local));
    for (const g of this.#groups.values()) g.delete(p);
  }
}

/** A port of a {@linkcode MemoryNetwork}. */
export class MemoryPort implements DatagramPort {
  readonly local: Endpoint;
  /** Every datagram this port sent, in order (for assertions). */
  readonly sent: { data: Uint8Array; to: Endpoint }[] = [];
  #net: MemoryNetwork;
  #queue: [Uint8Array, Endpoint][] = [];
  #waiters: { resolve: (v: [Uint8Array, Endpoint]) => void; reject: (e: Error) => void }[] = [];
  #closed = false;

  /** Use {@linkcode MemoryNetwork.bind}. */
  constructor(net: MemoryNetwork, local: Endpoint) {
    this.#net = net;
    this.local = local;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Always 0: memory sends cannot fail. */
  get sendErrors(): number {
    return 0;
  }

  /** Sends to another memory port (or a group). */
  send(data: Uint8Array, to: Endpoint): void {
    if (this.#closed) return;
    this.sent.push({ data: data.slice(), to });
    this.#net.deliver(data, this.local, to);
  }

  /** @internal */
  push(data: Uint8Array, from: Endpoint): void {
    if (this.#closed) return;
    const w = this.#waiters.shift();
    if (w) w.resolve([data, from]);
    else this.#queue.push([data, from]);
  }

  /** Nothing to give back: memory datagrams are copies. */
  release(_data: Uint8Array): void {}

  /** Next datagram. */
  receive(): Promise<[Uint8Array, Endpoint]> {
    const next = this.#queue.shift();
    if (next) return Promise.resolve(next);
    if (this.#closed) return Promise.reject(new Error("Cannot receive: port closed"));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Closes; pending receives reject. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#net.unbind(this);
    for (const w of this.#waiters.splice(0)) w.reject(new Error("Cannot receive: port closed"));
  }
}
