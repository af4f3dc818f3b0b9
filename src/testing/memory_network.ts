/**
 * An in-process network of {@linkcode DatagramPort}s for tests: no sockets, delivery queued in
 * the order of sending.
 *
 * @module
 */

import { type DatagramPort, type Endpoint, endpointKey } from "../net/port.ts";

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
  #sendErrors = 0;

  /** Use {@linkcode MemoryNetwork.bind}. */
  constructor(net: MemoryNetwork, local: Endpoint) {
    this.#net = net;
    this.local = local;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends after close (the only way a memory send fails). */
  get sendErrors(): number {
    return this.#sendErrors;
  }

  /** Sends to another memory port (or a group); after close, counts a send error. */
  send(data: Uint8Array, to: Endpoint): void {
    if (this.#closed) {
      this.#sendErrors++;
      return;
    }
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

  /** Closes; pending receives reject, datagrams not yet received are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#net.unbind(this);
    for (const w of this.#waiters.splice(0)) w.reject(new Error("Cannot receive: port closed"));
  }
}
