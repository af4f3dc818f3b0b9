/**
 * The {@linkcode DatagramPort} over a real UDP socket (`Deno.listenDatagram`), optionally
 * receiving into the shared {@linkcode receivePool}, joined to a multicast group on one or more
 * interfaces.
 *
 * Sharing a port (`share`), on Linux: a socket with `SO_REUSEADDR` (Deno's `reuseAddress`) may bind
 * a port that other such sockets hold, on the same address too, and then the newest one takes the
 * unicast traffic; a socket without it makes the kernel refuse every other socket on that port
 * whose address overlaps (`0.0.0.0` overlaps all). The gateway wants both: no second gateway on
 * its door port, yet door simulators on `127.0.0.x:8302` beside it (tests, commissioning on the
 * box). No socket option gives that, so `"specific"` binds with `SO_REUSEADDR` after a probe.
 *
 * @module
 */

import { RECEIVE_BUFFER_SIZE, receivePool } from "./buffer_pool.ts";
import type { DatagramPort, Endpoint } from "./port.ts";

/**
 * Who else may bind the port:
 * - `"any"`: every socket with `SO_REUSEADDR`, on any address (door simulators, tests);
 * - `"none"`: nobody while this socket is open (no `SO_REUSEADDR`; the kernel refuses);
 * - `"specific"`: sockets on their own specific addresses (a door simulator on 127.0.0.2), but
 *   the open fails with `AddrInUse` when another socket already holds the port on every address
 *   or on the probe address (127.0.0.1 for a `0.0.0.0` bind, else `hostname`): before binding
 *   (with `SO_REUSEADDR`) a probe socket without it binds there and is closed. A second gateway is
 *   refused; two started within the same milliseconds could both pass.
 */
export type UdpShare = "any" | "none" | "specific";

/** Options of {@linkcode openUdpPort}. */
export interface UdpPortOptions {
  /** @default {"0.0.0.0"} */
  hostname?: string;
  port: number;
  /**
   * Multicast group to join, on the interface with this local IPv4 address, or on each of
   * several (`"0.0.0.0"`: the interface the kernel routes the group to). The open fails only
   * when no join succeeds; {@linkcode UdpPort.multicast} tells which did.
   */
  multicast?: { group: string; interface: string | readonly string[] };
  /** @default {"any"} */
  share?: UdpShare;
  /**
   * Receive into pooled buffers (no allocation per datagram); the consumer must
   * {@linkcode DatagramPort.release} every datagram. @default false
   */
  pooled?: boolean;
}

/** How the joins went (interfaces as given). */
export interface MulticastJoinResult {
  readonly group: string;
  readonly joined: readonly string[];
  readonly failed: readonly { readonly interface: string; readonly error: string }[];
}

/** A real UDP port: a {@linkcode DatagramPort} plus what its multicast joins did. */
export interface UdpPort extends DatagramPort {
  /** Set when a group was joined. */
  readonly multicast: MulticastJoinResult | undefined;
}

class DenoDatagramPort implements UdpPort {
  readonly local: Endpoint;
  multicast: MulticastJoinResult | undefined;
  #conn: Deno.DatagramConn;
  #closed = false;
  #sendErrors = 0;
  #memberships: Deno.MulticastV4Membership[] = [];

  #pooled: boolean;
  /** The buffer of the receive in progress (and that receive), until its datagram is released. */
  #leased: Uint8Array | undefined;
  #leasedBy: Promise<unknown> | undefined;

  constructor(conn: Deno.DatagramConn, pooled: boolean) {
    this.#conn = conn;
    this.#pooled = pooled;
    const addr = conn.addr as Deno.NetAddr;
    this.local = { hostname: addr.hostname, port: addr.port };
  }

  addMembership(m: Deno.MulticastV4Membership): void {
    this.#memberships.push(m);
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
    // `to` as it is: the runtime reads only its hostname and port (no copy per datagram).
    const sent = this.#conn.send(data, to as Deno.NetAddr);
    if (receivePool.retain(data)) {
      sent.then(
        () => receivePool.release(data),
        () => {
          this.#sendErrors++;
          receivePool.release(data);
        },
      );
    } else sent.catch(this.#countSendError);
  }

  #countSendError = (): void => {
    this.#sendErrors++;
  };

  /**
   * Not an async function, and the runtime's address object is the {@linkcode Endpoint}: a
   * datagram costs only the runtime's own allocations. A pooled buffer is the consumer's to
   * release once the receive resolved; one whose receive was not released by the next receive
   * or by `close` (it rejected, or receives overlap) goes back when its receive rejects.
   */
  receive(): Promise<[Uint8Array, Endpoint]> {
    if (!this.#pooled) {
      return this.#conn.receive(new Uint8Array(RECEIVE_BUFFER_SIZE)) as Promise<
        [Uint8Array, Deno.NetAddr]
      >;
    }
    this.#unlease();
    const buf = receivePool.lease();
    const p = this.#conn.receive(buf) as Promise<[Uint8Array, Deno.NetAddr]>;
    this.#leased = buf;
    this.#leasedBy = p;
    return p;
  }

  release(data: Uint8Array): void {
    if (!this.#pooled) return;
    if (this.#leased?.buffer === data.buffer) this.#leased = undefined;
    receivePool.release(data);
  }

  /** The receive in progress, not released yet: its buffer comes back if it rejects. */
  #unlease(): void {
    const buf = this.#leased;
    if (buf === undefined) return;
    this.#leased = undefined;
    this.#leasedBy?.then(undefined, () => receivePool.release(buf));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlease();
    for (const m of this.#memberships) m.leave().catch(() => {});
    try {
      this.#conn.close();
    } catch {
      // already closed by the runtime
    }
  }
}

/** The address a `"specific"` port probes for another holder of its port. */
function probeAddress(hostname: string): string {
  return hostname === "0.0.0.0" ? "127.0.0.1" : hostname;
}

/**
 * Fails with `AddrInUse` when another socket holds `port` on every address or on the probe
 * address; any other failure (no loopback address) proves nothing and is ignored.
 */
export function probeFree(hostname: string, port: number): void {
  if (port === 0) return;
  let probe: Deno.DatagramConn;
  try {
    probe = Deno.listenDatagram({
      transport: "udp",
      hostname: probeAddress(hostname),
      port,
      reuseAddress: false,
    });
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) throw e;
    return;
  }
  probe.close();
}

/**
 * Binds a real UDP socket (needs `--unstable-net` and net permission).
 *
 * @example
 * ```ts
 * const door = await openUdpPort({
 *   port: 8302,
 *   share: "specific",
 *   multicast: { group: "238.9.9.1", interface: ["192.168.1.10", "10.0.0.2"] },
 * });
 * door.multicast?.joined; // ["192.168.1.10", "10.0.0.2"]
 * ```
 */
export async function openUdpPort(options: UdpPortOptions): Promise<UdpPort> {
  if (options.multicast && options.multicast.interface.length === 0) {
    throw new RangeError(`Cannot join multicast group ${options.multicast.group}: no interface`);
  }
  const hostname = options.hostname ?? "0.0.0.0";
  const share = options.share ?? "any";
  if (share === "specific") probeFree(hostname, options.port);
  const conn = Deno.listenDatagram({
    transport: "udp",
    hostname,
    port: options.port,
    reuseAddress: share !== "none",
    loopback: true,
  });
  const port = new DenoDatagramPort(conn, options.pooled ?? false);
  if (options.multicast) {
    const { group } = options.multicast;
    const on = typeof options.multicast.interface === "string"
      ? [options.multicast.interface]
      : options.multicast.interface;
    const joined: string[] = [];
    const failed: { interface: string; error: string }[] = [];
    let firstError: unknown;
    for (const iface of on) {
      try {
        const m = await conn.joinMulticastV4(group, iface);
        port.addMembership(m);
        // Socket-wide: our own multicast is looped back (a door simulator on this box), TTL 5.
        await m.setLoopback(true);
        await m.setTTL(5);
        joined.push(iface);
      } catch (e) {
        firstError ??= e;
        failed.push({ interface: iface, error: e instanceof Error ? e.message : String(e) });
      }
    }
    if (joined.length === 0) {
      port.close();
      const where = on.length === 1 ? "" : ` on any of ${on.join(", ")}`;
      throw new Error(`Cannot join multicast group ${group}${where}: ${String(firstError)}`, {
        cause: firstError,
      });
    }
    port.multicast = { group, joined, failed };
  }
  return port;
}
