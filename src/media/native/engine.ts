/**
 * The optional native media engine (`native/media_engine.c`, loaded with `Deno.dlopen`): it owns
 * the door and phone media UDP sockets and one forwarding thread. Routed media never reaches
 * JavaScript; every other datagram does, through the two {@linkcode DatagramPort}s this module
 * gives (`door`, `media`), so the door transport and the media relay's control path are the same
 * code as with Deno's sockets. Routes are set by the caller (the media relay) per call slot.
 *
 * Needs `--allow-ffi` for the library's path; only this module calls `Deno.dlopen`.
 *
 * @module
 */

import { receivePool } from "../../net/buffer_pool.ts";
import type { DatagramPort, Endpoint } from "../../net/port.ts";
import type { MediaOffload } from "../offload.ts";

/** The ABI version of `media_engine.c` this module speaks. */
export const ENGINE_VERSION = 1;

/** Calls the engine routes at once (slots). */
export const ENGINE_SLOTS = 256;

/** Phones per call the engine fans door media out to. */
export const ENGINE_FAN = 16;

export { COLLECT_LENGTH, COUNTER } from "../offload.ts";

/** Engine-wide counters ({@linkcode NativeEngine.stats}), in the C file's order. */
export const STAT = {
  receivedDoor: 0,
  receivedMedia: 1,
  upDoor: 2,
  upMedia: 3,
  ringFullDoor: 4,
  ringFullMedia: 5,
  truncated: 6,
  sendErrors: 7,
} as const;

const SYMBOLS = {
  me_version: { parameters: [], result: "i32" },
  me_bind: { parameters: ["i32", "u16", "i32"], result: "i32" },
  me_join: { parameters: ["i32", "u32", "u32"], result: "i32" },
  me_start: { parameters: ["buffer"], result: "i32" },
  me_stop: { parameters: [], result: "void" },
  me_wait: { parameters: ["i32"], result: "i32", nonblocking: true },
  me_take: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32" },
  me_send: { parameters: ["i32", "buffer", "i32", "u32", "u16"], result: "i32" },
  me_door: {
    parameters: ["i32", "u32", "u16", "i32", "i32", "i32", "i32", "buffer", "buffer"],
    result: "i32",
  },
  me_talker: { parameters: ["i32", "i32", "u32", "u16", "buffer", "buffer"], result: "i32" },
  me_collect: { parameters: ["i32", "buffer"], result: "i32" },
  me_free: { parameters: ["i32"], result: "i32" },
  me_stats: { parameters: ["buffer"], result: "void" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** The library file of this architecture in `dir`: `libintercom_media.<arch>.so`. */
export function engineLibraryPath(dir: string, arch: string = Deno.build.arch): string {
  return `${dir.replace(/\/$/, "")}/libintercom_media.${arch}.so`;
}

const ipScratch = new Uint8Array(4);
const ipWord = new Uint32Array(ipScratch.buffer);

/** "a.b.c.d" as the u32 the C side reads as `in_addr.s_addr` (network byte order in memory). */
export function ipToNet(hostname: string): number {
  const parts = hostname.split(".");
  if (parts.length !== 4) throw new TypeError(`Cannot use address ${hostname}: not IPv4`);
  for (let i = 0; i < 4; i++) {
    const v = Number(parts[i]);
    if (!Number.isInteger(v) || v < 0 || v > 255) {
      throw new TypeError(`Cannot use address ${hostname}: not IPv4`);
    }
    ipScratch[i] = v;
  }
  return ipWord[0]!;
}

/** The inverse of {@linkcode ipToNet}. */
export function netToIp(word: number): string {
  ipWord[0] = word;
  return `${ipScratch[0]}.${ipScratch[1]}.${ipScratch[2]}.${ipScratch[3]}`;
}

/** Options of {@linkcode openNativeEngine}. */
export interface NativeEngineOptions {
  /** Path of the shared library. */
  library: string;
  doorPort: number;
  mediaPort: number;
  /** `SO_REUSEADDR` on the door socket (door simulators on 127.0.0.x beside the gateway). */
  doorReuse: boolean;
  /** Multicast group joined on the door socket, on each of these interface addresses. */
  multicast?: { group: string; interface: readonly string[] };
  /** The door protocol's magic (6 ASCII bytes). */
  magic: string;
}

class EnginePort implements DatagramPort {
  readonly local: Endpoint;
  multicast:
    | { group: string; joined: string[]; failed: { interface: string; error: string }[] }
    | undefined;
  #engine: NativeEngine;
  #sock: number;
  #closed = false;
  #sendErrors = 0;
  #waiters: { resolve: (m: [Uint8Array, Endpoint]) => void; reject: (e: Error) => void }[] = [];
  #from = new Uint32Array(2);

  constructor(engine: NativeEngine, sock: number, port: number) {
    this.#engine = engine;
    this.#sock = sock;
    this.local = { hostname: "0.0.0.0", port };
  }

  get sendErrors(): number {
    return this.#sendErrors;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get waiting(): boolean {
    return this.#waiters.length > 0;
  }

  send(data: Uint8Array, to: Endpoint): void {
    if (this.#closed || !this.#engine.send(this.#sock, data, to)) this.#sendErrors++;
  }

  /** The next queued datagram into a pooled buffer, or undefined. */
  #take(): [Uint8Array, Endpoint] | undefined {
    const buf = receivePool.lease();
    const n = this.#engine.take(this.#sock, buf, this.#from);
    if (n < 0) {
      receivePool.release(buf);
      return undefined;
    }
    return [buf.subarray(0, n), this.#engine.endpoint(this.#from[0]!, this.#from[1]!)];
  }

  receive(): Promise<[Uint8Array, Endpoint]> {
    if (this.#closed) return Promise.reject(new Error("Cannot receive: the port is closed"));
    const got = this.#take();
    if (got) return Promise.resolve(got);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#engine.pump();
    });
  }

  /** Hands queued datagrams to waiting receivers (the engine's pump). */
  deliver(): void {
    while (this.#waiters.length > 0) {
      const got = this.#take();
      if (!got) return;
      this.#waiters.shift()!.resolve(got);
    }
  }

  release(data: Uint8Array): void {
    receivePool.release(data);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) {
      w.reject(new Error("Cannot receive: the port is closed"));
    }
    this.#engine.portClosed();
  }
}

/** The loaded, running engine: its two ports and the routes of its call slots. */
export class NativeEngine implements MediaOffload {
  #lib: Lib;
  #stopped = false;
  #open = 2;
  #pumping = false;
  /** The pump's loop: settled when no `me_wait` is outstanding. */
  #pumped: Promise<void> = Promise.resolve();
  #free: number[] = Array.from({ length: ENGINE_SLOTS }, (_, i) => ENGINE_SLOTS - 1 - i);
  #endpoints = new Map<number, Endpoint>();
  #ips = new Map<string, number>();
  #fanIps = new Uint32Array(ENGINE_FAN);
  #fanPorts = new Uint16Array(ENGINE_FAN);
  #stats = new Float64Array(8);
  /** The door socket (8302). */
  readonly door: EnginePort;
  /** The phone media socket (8303). */
  readonly media: EnginePort;

  constructor(lib: Lib, doorPort: number, mediaPort: number) {
    this.#lib = lib;
    this.door = new EnginePort(this, 0, doorPort);
    this.media = new EnginePort(this, 1, mediaPort);
  }

  /** A free call slot, or undefined when all are routed (that call's media stays in JS). */
  allocate(): number | undefined {
    return this.#stopped ? undefined : this.#free.pop();
  }

  /** Frees a slot: its media is not forwarded from now on. */
  release(slot: number): void {
    if (this.#stopped) return;
    this.#lib.me_free(slot);
    this.#free.push(slot);
  }

  /**
   * The door route of a slot: door media from `door`'s IP goes to `phones` when `native`
   * (else it is passed up), door audio only when `talking`.
   */
  routeDoor(
    slot: number,
    door: Endpoint,
    native: boolean,
    talking: boolean,
    form: number,
    phones: readonly Endpoint[],
  ): void {
    if (this.#stopped) return;
    const n = Math.min(phones.length, ENGINE_FAN);
    for (let i = 0; i < n; i++) {
      this.#fanIps[i] = this.#ip(phones[i]!.hostname);
      this.#fanPorts[i] = phones[i]!.port;
    }
    this.#lib.me_door(
      slot,
      this.#ip(door.hostname),
      door.port,
      native && phones.length <= ENGINE_FAN ? 1 : 0,
      talking ? 1 : 0,
      form,
      n,
      this.#fanIps,
      this.#fanPorts,
    );
  }

  /**
   * The talker route of a slot: phone audio from `from` goes to the door, continuing `state`
   * (out timestamp, out frame, age of the timestamp origin in ms or NaN, pace tokens);
   * `undefined` clears it.
   */
  talker(
    slot: number,
    from: Endpoint | undefined,
    parties48: Uint8Array,
    state: Float64Array,
  ): void {
    if (this.#stopped) return;
    if (!from) this.#lib.me_talker(slot, 0, 0, 0, parties48, state);
    else this.#lib.me_talker(slot, 1, this.#ip(from.hostname), from.port, parties48, state);
  }

  /** Reads and resets a slot's counters and state into `out` ({@linkcode COUNTER}). */
  collect(slot: number, out: Float64Array): void {
    if (this.#stopped) {
      out.fill(0);
      return;
    }
    this.#lib.me_collect(slot, out);
  }

  /** Engine-wide counters ({@linkcode STAT}). */
  stats(): Readonly<Float64Array> {
    if (!this.#stopped) this.#lib.me_stats(this.#stats);
    return this.#stats;
  }

  // ---- for the ports ----

  send(sock: number, data: Uint8Array, to: Endpoint): boolean {
    if (this.#stopped) return false;
    let ip: number;
    try {
      ip = this.#ip(to.hostname);
    } catch {
      return false;
    }
    return this.#lib.me_send(sock, data, data.length, ip, to.port) === 0;
  }

  take(sock: number, buf: Uint8Array, from: Uint32Array): number {
    if (this.#stopped) return -1;
    return this.#lib.me_take(sock, buf, buf.length, from);
  }

  endpoint(ip: number, port: number): Endpoint {
    const key = ip * 65536 + port;
    let e = this.#endpoints.get(key);
    if (!e) {
      if (this.#endpoints.size >= 4096) this.#endpoints.clear();
      e = { hostname: netToIp(ip), port };
      this.#endpoints.set(key, e);
    }
    return e;
  }

  #ip(hostname: string): number {
    let ip = this.#ips.get(hostname);
    if (ip === undefined) {
      ip = ipToNet(hostname);
      if (this.#ips.size >= 4096) this.#ips.clear();
      this.#ips.set(hostname, ip);
    }
    return ip;
  }

  /** Waits on a helper thread while a port has a receiver waiting. */
  pump(): void {
    if (this.#pumping || this.#stopped) return;
    this.#pumping = true;
    this.#pumped = this.#pumpLoop();
  }

  async #pumpLoop(): Promise<void> {
    try {
      while (!this.#stopped && (this.door.waiting || this.media.waiting)) {
        const mask = await this.#lib.me_wait(500);
        if (mask < 0 || this.#stopped) break;
        if (mask & 1) this.door.deliver();
        if (mask & 2) this.media.deliver();
      }
    } finally {
      this.#pumping = false;
    }
  }

  portClosed(): void {
    if (--this.#open > 0) return;
    void this.stop();
  }

  /**
   * Stops the thread and closes both sockets (both ports close). Idempotent. Resolves once the
   * helper thread's wait (`me_wait`, woken by the stop) has returned to JavaScript.
   */
  stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#lib.me_stop();
      this.door.close();
      this.media.close();
      running = undefined;
    }
    return this.#pumped;
  }
}

let loaded: { path: string; lib: Lib } | undefined;
let running: NativeEngine | undefined;

/**
 * Loads the library (once per process), binds both sockets, joins the multicast group and starts
 * the thread. One engine runs at a time.
 */
export function openNativeEngine(o: NativeEngineOptions): NativeEngine {
  if (running) throw new Error("Cannot start the native media engine: one is already running");
  if (!loaded) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(o.library, SYMBOLS);
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw new Error(
          `Cannot start the native media engine: run with --allow-ffi=${o.library}`,
          { cause: e },
        );
      }
      throw new Error(
        `Cannot start the native media engine: cannot load ${o.library} (build it with ` +
          `scripts/build_native.sh): ${e instanceof Error ? e.message : e}`,
        { cause: e },
      );
    }
    loaded = { path: o.library, lib: lib.symbols };
  } else if (loaded.path !== o.library) {
    throw new Error(`Cannot start the native media engine: ${loaded.path} is already loaded`);
  }
  const lib = loaded.lib;
  const version = lib.me_version();
  if (version !== ENGINE_VERSION) {
    throw new Error(
      `Cannot start the native media engine: ${o.library} speaks version ${version}, not ${ENGINE_VERSION}`,
    );
  }
  const fail = (what: string, code: number): never => {
    lib.me_stop();
    throw new Error(`Cannot start the native media engine: ${what} (errno ${-code})`);
  };
  const door = lib.me_bind(0, o.doorPort, o.doorReuse ? 1 : 0);
  if (door < 0) fail(`cannot bind the door port ${o.doorPort}`, door);
  const media = lib.me_bind(1, o.mediaPort, 0);
  if (media < 0) fail(`cannot bind the media port ${o.mediaPort}`, media);
  const engine = new NativeEngine(lib, door, media);
  if (o.multicast) {
    const joined: string[] = [];
    const failed: { interface: string; error: string }[] = [];
    const group = ipToNet(o.multicast.group);
    for (const iface of o.multicast.interface) {
      const r = lib.me_join(0, group, ipToNet(iface));
      if (r === 0) joined.push(iface);
      else failed.push({ interface: iface, error: `errno ${-r}` });
    }
    if (joined.length === 0) {
      fail(`cannot join multicast group ${o.multicast.group}`, -(failed.length ? 19 : 22));
    }
    engine.door.multicast = { group: o.multicast.group, joined, failed };
  }
  const magic = new TextEncoder().encode(o.magic.padEnd(6).slice(0, 6));
  const started = lib.me_start(magic);
  if (started < 0) fail("cannot start its thread", started);
  running = engine;
  return engine;
}
