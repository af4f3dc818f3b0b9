/**
 * The {@linkcode DatagramPort} over a real UDP socket (`Deno.listenDatagram`), optionally
 * receiving into the shared {@linkcode receivePool}.
 *
 * @module
 */

import { RECEIVE_BUFFER_SIZE, receivePool } from "./buffer_pool.ts";
import type { DatagramPort, Endpoint } from "./port.ts";

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
