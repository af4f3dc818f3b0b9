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
}

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

  constructor(conn: Deno.DatagramConn) {
    this.#conn = conn;
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
    this.#conn.send(data, { transport: "udp", hostname: to.hostname, port: to.port }).catch(() => {
      this.#sendErrors++;
    });
  }

  async receive(): Promise<[Uint8Array, Endpoint]> {
    const [data, addr] = await this.#conn.receive();
    const a = addr as Deno.NetAddr;
    return [data, { hostname: a.hostname, port: a.port }];
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
  const port = new DenoDatagramPort(conn);
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
