/**
 * Connection caps: how many TCP connections the HTTP server keeps, per source IP and in total,
 * derived from the process's descriptor limit so that the listener can never run the process out
 * of descriptors (the doors' sockets, KV and the runtime keep their headroom).
 *
 * @module
 */

/** The caps the server enforces on accept. */
export interface ConnectionCaps {
  /** Open connections (HTTP and WebSocket) in total. */
  readonly total: number;
  /** Open connections from one source IP. */
  readonly perIp: number;
}

/** Most connections kept whatever the descriptor limit (memory, not descriptors, binds here). */
export const MAX_CONNECTIONS = 16_384;
/**
 * Most connections from one IP: a building's phones may share one public address (NAT, a
 * reverse proxy), so this is generous; slow or idle ones are closed after the head timeout.
 */
export const MAX_CONNECTIONS_PER_IP = 1_024;
/** Descriptors kept free for everything but phone connections: at least this many… */
export const FD_HEADROOM_MIN = 256;
/** …or this share of the limit, whichever is more. */
export const FD_HEADROOM_SHARE = 1 / 8;

/**
 * The caps for `free` descriptors (what the process could still open when the server starts;
 * `undefined`: unknown, taken as 1024).
 */
export function connectionCaps(free: number | undefined): ConnectionCaps {
  const limit = free ?? 1024;
  const headroom = Math.max(FD_HEADROOM_MIN, Math.ceil(limit * FD_HEADROOM_SHARE));
  const total = Math.max(16, Math.min(MAX_CONNECTIONS, limit - headroom));
  return { total, perIp: Math.min(MAX_CONNECTIONS_PER_IP, Math.max(8, Math.floor(total / 2))) };
}

/** Free descriptors beyond which {@linkcode connectionCaps} gives its maximum. */
export const PROBE_MAX: number = Math.ceil(MAX_CONNECTIONS / (1 - FD_HEADROOM_SHARE));

/**
 * How many descriptors this process can still open, up to {@linkcode PROBE_MAX}: opens
 * `/dev/null` until the limit (`EMFILE`) and closes them all again (~20 ms for 500, ~150 ms for
 * the maximum). Deno gives no `getrlimit`, and `/proc/self/limits` needs `--allow-all`.
 * `undefined` when `/dev/null` cannot be opened.
 */
export function probeFreeDescriptors(max = PROBE_MAX): number | undefined {
  const files: Deno.FsFile[] = [];
  try {
    while (files.length < max) files.push(Deno.openSync("/dev/null"));
  } catch (e) {
    if (!/too many open files|os error 2[34]\b/i.test(String(e))) {
      for (const f of files) f.close();
      return undefined;
    }
  }
  for (const f of files) f.close();
  return files.length;
}

/** Counts open connections per IP and in total against {@linkcode ConnectionCaps}. */
export class ConnectionCounter {
  #caps: ConnectionCaps;
  #byIp = new Map<string, number>();
  #total = 0;

  /** Counts against `caps`. */
  constructor(caps: ConnectionCaps) {
    this.#caps = caps;
  }

  /** Open connections now. */
  get total(): number {
    return this.#total;
  }

  /** The total cap now. */
  get cap(): number {
    return this.#caps.total;
  }

  /** Lowers the total cap (descriptors ran out below it); never raises it. */
  lowerTotal(total: number): void {
    if (total >= this.#caps.total) return;
    this.#caps = { total, perIp: Math.min(this.#caps.perIp, total) };
  }

  /** Takes a place for `ip`, or says which cap refuses it. */
  open(ip: string): "ok" | "total" | "per_ip" {
    if (this.#total >= this.#caps.total) return "total";
    const n = this.#byIp.get(ip) ?? 0;
    if (n >= this.#caps.perIp) return "per_ip";
    this.#byIp.set(ip, n + 1);
    this.#total++;
    return "ok";
  }

  /** Gives back a place taken by {@linkcode open}. */
  close(ip: string): void {
    const n = this.#byIp.get(ip);
    if (n === undefined) return;
    if (n <= 1) this.#byIp.delete(ip);
    else this.#byIp.set(ip, n - 1);
    this.#total--;
  }
}
