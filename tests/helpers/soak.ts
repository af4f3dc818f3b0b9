/**
 * The soak harness: the whole gateway in-process under churn, with its invariants checked every
 * second. `bench/soak.ts` runs it from the command line (`deno task soak`), and
 * `tests/soak_smoke_test.ts` runs a short one in the suite.
 *
 * 20 door simulators by default (DoorSim on 127.0.0.2–21:8302; door pairs share a unit, so busy
 * rooms happen), 200 rooms, 500 light phones over WebSocket (each from its own loopback IP
 * 127.1.x.y, so the per-IP login limit sees distinct phones), random calls, answers, talks,
 * unlocks, hang-ups from both sides, door power losses, phone disconnects and silent phones, all
 * at once. Ring and talk timeouts are short (4 s / 6 s) so that calls churn.
 *
 * Checked every second: a room is in at most one call and the manager's room index agrees; no
 * call lives longer than ring + talk timeout + margin, nor outlives its door's call; `/healthz`
 * answers ok. Checked as they happen: every door call ended with its CALLEND acknowledged or was
 * ended by the gateway (CALLEND, LINEUSE); phones never get a `call` (or door media) of a room
 * they are not bound to, and every phone that got a `call` is told when it ends; no unexpected
 * `error` reaches a phone. At the end: no call, phone, media state, timer or file descriptor left
 * over, and resident memory after warm-up did not grow beyond the bound.
 *
 * Needs the private network namespace with the phone route (`PHONE_ROUTE`, `scripts/netns.ts`).
 *
 * @module
 */

import { startTestGateway, type TestGateway } from "./gateway.ts";
import { openDoor } from "./sims.ts";
import { sleep, within } from "./wait.ts";
import { openFds, vmRssKiB } from "./proc.ts";
import { phoneIp } from "../../scripts/netns.ts";
import {
  type DoorSim,
  type DoorSimEvent,
  type DoorSimSummary,
  STRICT_KEEPALIVE_WINDOW_MS,
} from "../../src/sim/door_sim.ts";
import { hasMagic, magicBytes, roomKey as roomKeyOf } from "../../src/protocol/mod.ts";
import { println } from "../../src/print.ts";

/** A major GC when started with `--v8-flags=--expose-gc` (steadier memory readings). */
function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Deterministic PRNG (mulberry32) so that a run's choices can be replayed by `--seed`. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Timer census: counts live timers of the whole process (gateway, simulators, harness).

type AnyFn = (...args: unknown[]) => void;
/** A timer handle (a number in Deno; typed as Node's `Timeout` when node types are loaded). */
type Tid = ReturnType<typeof setTimeout>;

/** Wraps the global timer functions to count live timers; `restore()` puts them back. */
class TimerCensus {
  readonly live = new Set<unknown>();
  #restore: (() => void) | undefined;

  install(): void {
    if (this.#restore) return;
    const g = globalThis;
    const [st, ct, si, ci] = [g.setTimeout, g.clearTimeout, g.setInterval, g.clearInterval];
    const live = this.live;
    g.setTimeout = ((cb: AnyFn, ms?: number, ...args: unknown[]) => {
      const id = st(() => {
        live.delete(id);
        cb(...args);
      }, ms);
      live.add(id);
      return id;
    }) as unknown as typeof setTimeout;
    g.setInterval = ((cb: AnyFn, ms?: number, ...args: unknown[]) => {
      const id = si(() => cb(...args), ms);
      live.add(id);
      return id;
    }) as unknown as typeof setInterval;
    g.clearTimeout = ((id?: Tid) => {
      if (id !== undefined) live.delete(id);
      ct(id);
    }) as typeof clearTimeout;
    g.clearInterval = ((id?: Tid) => {
      if (id !== undefined) live.delete(id);
      ci(id);
    }) as typeof clearInterval;
    this.#restore = () => {
      g.setTimeout = st;
      g.clearTimeout = ct;
      g.setInterval = si;
      g.clearInterval = ci;
    };
  }

  restore(): void {
    this.#restore?.();
    this.#restore = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Options and report.

/** Soak settings. */
export interface SoakOptions {
  /** Seconds of load (then the drain). */
  durationS: number;
  /** Door simulators, on 127.0.0.2…; pairs share a unit (and its rooms). */
  doors: number;
  rooms: number;
  phones: number;
  /** Gateway ring / talk timeouts, seconds. */
  ringTimeoutS: number;
  talkTimeoutS: number;
  /** Slack on every time bound (call life, drain), seconds. */
  marginS: number;
  /** Share of phones dropped (closed or silent) per second. */
  dropRate: number;
  /** Share of phones that ask for the door's media over the WebSocket. */
  videoShare: number;
  /** Largest RSS growth from the end of warm-up to the end of the load, as a fraction. */
  maxRssGrowth: number;
  /** Largest growth of V8's live heap (after a full GC) over the same span, as a fraction. */
  maxHeapGrowth: number;
  /** Seconds of warm-up before the memory reference. */
  warmupS: number;
  seed: number;
  /** Progress line every this many seconds (0: none). */
  reportEveryS: number;
  /** Where lines go. */
  log: (line: string) => void;
}

/** Defaults of {@linkcode SoakOptions} (the CI soak). */
export const SOAK_DEFAULTS: Readonly<SoakOptions> = {
  durationS: 60,
  doors: 20,
  rooms: 200,
  phones: 500,
  ringTimeoutS: 4,
  talkTimeoutS: 6,
  marginS: 5,
  dropRate: 0.005,
  videoShare: 0.1,
  maxRssGrowth: 0.5,
  maxHeapGrowth: 0.3,
  warmupS: 15,
  seed: 1,
  reportEveryS: 10,
  log: println,
};

/** One kind of broken invariant: how often, and the first occurrence. */
export interface Violation {
  count: number;
  first: string;
  atS: number;
}

/** What {@linkcode runSoak} found. */
export interface SoakReport {
  options: Omit<SoakOptions, "log">;
  elapsedS: number;
  door: {
    callsPlaced: number;
    /** Answered (CALLANSWER) and ended cleanly (gateway CALLEND, or ours acknowledged). */
    callsCompleted: number;
    outcomes: Record<string, number>;
    /** Datagrams the door simulators did not act upon, by reason and packet. */
    dropped: Record<string, number>;
    locksOpened: number;
    poweredOff: number;
  };
  phone: Record<string, number>;
  /** Close codes seen by phones. */
  closeCodes: Record<string, number>;
  /** `error`s phones got that are legitimate races (late `talk`, second `talk`…). */
  expectedErrors: Record<string, number>;
  overReasons: Record<string, number>;
  violations: Record<string, Violation>;
  rssKiB: { start: number; warm: number; endOfLoad: number; afterDrain: number; peak: number };
  /** V8's live heap after a full GC: a leak of JavaScript objects shows here, not only in RSS. */
  heapKiB: { warm: number; endOfLoad: number };
  resources: {
    atStart: { timers: number; fds: number };
    endOfLoad: { calls: number; phones: number; timers: number; fds: number };
    afterDrain: { calls: number; phones: number; mediaCalls: number; timers: number; fds: number };
    afterClose: { timers: number; fds: number };
  };
  maxHealthMs: number;
  ok: boolean;
}

// ---------------------------------------------------------------------------------------------
// The harness.

const COMMUNITY = "花苑";
const EXPECTED_PHONE_ERRORS = new Set(["not_in_call", "busy", "door_timeout"]);
/** A fixed ~2 KB "video frame" (2 packets): cheaper than encoding a test card per frame. */
const FRAME = new Uint8Array(2000).map((_, i) => (i * 31) & 0xff);
const MAGIC = magicBytes();

interface Room {
  index: number;
  /** Phone side, `Y…`. */
  address: string;
  key: string;
  /** 4-digit room number the door keys in. */
  number: string;
  phones: SoakPhone[];
}

interface DoorSlot {
  index: number;
  ip: string;
  address: string;
  rooms: Room[];
  strict: boolean;
  sim: DoorSim | undefined;
  lastEndedAt: number;
  lastPoweredOff: boolean;
  /** The room of the previous call and when its last CALL went out (`now()`). */
  lastRoom: Room | undefined;
  lastCallAt: number;
}

type Script = "ring" | "callok" | "decline" | "talk";

interface OpenCall {
  callId: string;
  doorAddress: string;
  at: number;
  script: Script;
  unlockAfterMs: number | undefined;
  overAfterMs: number | undefined;
}

class Harness {
  readonly o: SoakOptions;
  readonly rng: () => number;
  readonly t0 = performance.now();
  readonly census = new TimerCensus();
  stopping = false;
  gw!: TestGateway;
  rooms: Room[] = [];
  phones: SoakPhone[] = [];
  slots: DoorSlot[] = [];
  /** Longest legitimate call life (ms). */
  readonly callBoundMs: number;
  readonly violations = new Map<string, Violation>();
  readonly phoneStats: Record<string, number> = {};
  readonly closeCodes: Record<string, number> = {};
  readonly expectedErrors: Record<string, number> = {};
  readonly overReasons: Record<string, number> = {};
  readonly outcomes: Record<string, number> = {};
  readonly doorDrops: Record<string, number> = {};
  callsPlaced = 0;
  callsCompleted = 0;
  locksOpened = 0;
  poweredOff = 0;
  firstSeen = new Map<string, number>();
  flaggedCalls = new Set<string>();
  maxHealthMs = 0;

  constructor(o: SoakOptions) {
    this.o = o;
    this.rng = prng(o.seed);
    this.callBoundMs = (o.ringTimeoutS + o.talkTimeoutS + o.marginS) * 1000;
  }

  now(): number {
    return performance.now() - this.t0;
  }

  between(lo: number, hi: number): number {
    return lo + (hi - lo) * this.rng();
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rng() * xs.length)]!;
  }

  bump(map: Record<string, number>, key: string, n = 1): void {
    map[key] = (map[key] ?? 0) + n;
  }

  stat(key: string, n = 1): void {
    this.bump(this.phoneStats, key, n);
  }

  violate(kind: string, detail: string): void {
    const v = this.violations.get(kind);
    if (v) v.count++;
    else {
      const atS = Math.round(this.now() / 100) / 10;
      this.violations.set(kind, { count: 1, first: detail, atS });
      this.o.log(`VIOLATION at ${atS} s: ${kind}: ${detail}`);
    }
  }
}

/** A light phone: login, heartbeat every 2 s, a random script per call; checks what it gets. */
class SoakPhone {
  ws: WebSocket | undefined;
  state: "down" | "connecting" | "online" | "silent" = "down";
  /** `now()` of the login while continuously online since; undefined otherwise. */
  onlineSince: number | undefined;
  lastLoginAt = -Infinity;
  closing = false;
  readonly calls = new Map<string, OpenCall>();
  #hb: Tid | undefined;
  #timers = new Set<Tid>();
  #closed: Promise<void> = Promise.resolve();
  #resolveClosed: (() => void) | undefined;

  constructor(
    readonly h: Harness,
    readonly index: number,
    readonly uid: string,
    readonly room: Room,
    readonly token: string,
    readonly url: string,
    readonly video: boolean,
  ) {}

  connect(): void {
    if (this.closing || this.state === "connecting" || this.state === "online") return;
    this.state = "connecting";
    this.h.stat("connects");
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.#closed = new Promise((r) => (this.#resolveClosed = r));
    ws.onopen = () => {
      this.#send({
        order: "login",
        roomAddress: this.room.address,
        uid: this.uid,
        community: COMMUNITY,
        token: this.token,
      }, true);
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws) return;
      if (typeof ev.data === "string") this.#onText(ev.data);
      else if (ev.data instanceof ArrayBuffer) this.#onMedia(new Uint8Array(ev.data));
    };
    ws.onerror = () => {};
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.#onClose(ev.code);
    };
  }

  /** Drops the phone: `close` the socket, or fall `silent` (the gateway times it out). */
  drop(mode: "close" | "silent"): boolean {
    if (this.state !== "online" || this.closing) return false;
    if (this.h.now() - this.lastLoginAt < 15_000) return false; // per-uid login limit: 10/min
    this.#stopHeartbeat();
    this.#clearCallTimers();
    this.calls.clear(); // lost: it will not see the end
    this.onlineSince = undefined;
    if (mode === "close") {
      this.h.stat("drops_close");
      this.ws?.close(1000, "soak drop");
    } else {
      this.h.stat("drops_silent");
      this.state = "silent";
    }
    return true;
  }

  /** Closes for good and resolves once the socket is closed. */
  close(): Promise<void> {
    this.closing = true;
    this.#stopHeartbeat();
    this.#clearCallTimers();
    const ws = this.ws;
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) {
      try {
        ws.close(1000, "soak end");
      } catch {
        // closing already
      }
      return this.#closed;
    }
    return Promise.resolve();
  }

  #onClose(code: number): void {
    const h = this.h;
    h.bump(h.closeCodes, String(code));
    if (code === 4001) h.violate("phone refused at login", `${this.uid} closed with 4001`);
    if (code === 4002) h.violate("phone replaced unexpectedly", `${this.uid} closed with 4002`);
    this.#stopHeartbeat();
    this.#clearCallTimers();
    this.calls.clear();
    this.state = "down";
    this.onlineSince = undefined;
    this.ws = undefined;
    this.#resolveClosed?.();
    if (!this.closing && !h.stopping) {
      this.#after(h.between(500, 3000), () => this.connect());
    }
  }

  #send(msg: Record<string, unknown>, login = false): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (!login && this.state !== "online") return;
    ws.send(JSON.stringify(msg));
  }

  #order(order: string, call: OpenCall, extra: Record<string, unknown> = {}): void {
    this.#send({
      order,
      doorAddress: call.doorAddress,
      roomAddress: this.room.address,
      uid: this.uid,
      community: COMMUNITY,
      callId: call.callId,
      ...extra,
    });
    this.h.stat(`sent ${order}`);
  }

  #after(ms: number, fn: () => void): void {
    const id = setTimeout(() => {
      this.#timers.delete(id);
      fn();
    }, ms);
    this.#timers.add(id);
  }

  #clearCallTimers(): void {
    for (const id of this.#timers) clearTimeout(id);
    this.#timers.clear();
  }

  #heartbeat(): void {
    this.#hb = setTimeout(() => {
      this.#hb = undefined;
      if (this.state !== "online") return;
      this.#send({ order: "heartbeat" });
      this.#heartbeat();
    }, 2000);
  }

  #stopHeartbeat(): void {
    if (this.#hb !== undefined) clearTimeout(this.#hb);
    this.#hb = undefined;
  }

  #onText(text: string): void {
    const h = this.h;
    if (this.state === "silent") return;
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(text);
    } catch {
      h.violate("gateway sent invalid JSON", text.slice(0, 120));
      return;
    }
    const order = String(m.order);
    h.stat(`got ${order}`);
    const callId = typeof m.callId === "string" ? m.callId : "";
    switch (order) {
      case "login ok":
        this.state = "online";
        this.lastLoginAt = this.onlineSince = h.now();
        this.#stopHeartbeat();
        // The first heartbeat at a random point of the period spreads them out.
        this.#hb = setTimeout(() => {
          this.#hb = undefined;
          if (this.state !== "online") return;
          this.#send({ order: "heartbeat" });
          this.#heartbeat();
        }, h.between(200, 2000));
        return;
      case "call":
        return this.#onCall(m, callId);
      case "talk begin": {
        const call = this.calls.get(callId);
        if (!call) return;
        if (call.unlockAfterMs !== undefined) {
          this.#after(call.unlockAfterMs, () => {
            if (this.calls.has(callId)) this.#order("unlock", call);
          });
        }
        if (call.overAfterMs !== undefined) {
          this.#after(call.overAfterMs, () => {
            if (this.calls.has(callId)) this.#order("over", call);
          });
        }
        return;
      }
      case "over": {
        h.bump(h.overReasons, String(m.reason));
        this.#send({
          order: "over success",
          doorAddress: m.doorAddress,
          roomAddress: this.room.address,
          uid: this.uid,
          community: COMMUNITY,
          callId,
        });
        this.calls.delete(callId);
        return;
      }
      case "over success":
        this.calls.delete(callId);
        return;
      case "error": {
        const code = String(m.code);
        if (EXPECTED_PHONE_ERRORS.has(code)) h.bump(h.expectedErrors, `${code} (${m.ref})`);
        else h.violate(`phone got error ${code}`, `${this.uid}: ${text.slice(0, 200)}`);
        return;
      }
      default:
        return;
    }
  }

  #onCall(m: Record<string, unknown>, callId: string): void {
    const h = this.h;
    const room = typeof m.roomAddress === "string" ? roomKeyOf(m.roomAddress) : undefined;
    if (m.uid !== this.uid || room !== this.room.key) {
      h.violate(
        "call for a room the phone is not bound to",
        `${this.uid} (room ${this.room.key}) got call for uid ${m.uid} room ${m.roomAddress}`,
      );
      return;
    }
    if (this.calls.has(callId)) {
      h.stat("duplicate call");
      return;
    }
    const r = h.rng();
    const script: Script = r < 0.12 ? "ring" : r < 0.27 ? "callok" : r < 0.37 ? "decline" : "talk";
    const call: OpenCall = {
      callId,
      doorAddress: String(m.doorAddress),
      at: h.now(),
      script,
      unlockAfterMs: script === "talk" && h.rng() < 0.5 ? h.between(200, 1000) : undefined,
      overAfterMs: script === "talk" && h.rng() < 0.7 ? h.between(500, 4000) : undefined,
    };
    this.calls.set(callId, call);
    if (script === "ring") return;
    this.#order("call ok", call);
    if (this.video) this.#order("enable_video", call, { transport: "ws" });
    if (script === "decline") {
      this.#after(h.between(200, 2000), () => {
        if (this.calls.has(callId)) this.#order("over", call);
      });
    } else if (script === "talk") {
      this.#after(h.between(200, 2500), () => {
        if (this.calls.has(callId)) this.#order("talk", call);
      });
    }
  }

  #onMedia(bytes: Uint8Array): void {
    if (this.state !== "online") return;
    this.h.stat("media frames");
    if (bytes.length < 57 || !hasMagic(bytes, MAGIC)) {
      this.h.violate("phone got a binary frame that is not XXXCID media", `${bytes.length} B`);
      return;
    }
    const callee = new TextDecoder().decode(bytes.subarray(33, 53));
    if (roomKeyOf(callee) !== this.room.key) {
      this.h.violate(
        "door media of another room reached a phone",
        `${this.uid} (room ${this.room.key}) got media for ${callee}`,
      );
    }
  }
}

function metricGauge(gw: TestGateway, name: string): number {
  const m = new RegExp(`^${name} (\\d+)$`, "m").exec(gw.app.metrics.render());
  return m ? Number(m[1]) : NaN;
}

async function setUp(h: Harness): Promise<void> {
  const o = h.o;
  h.gw = await startTestGateway({
    ringTimeout: o.ringTimeoutS,
    talkTimeout: o.talkTimeoutS,
    httpHost: "0.0.0.0",
  });
  const port = h.gw.app.addresses.http.port;
  const units = Math.ceil(o.doors / 2);
  for (let r = 0; r < o.rooms; r++) {
    const unit = String((r % units) + 1).padStart(2, "0");
    const number = String(101 + Math.floor(r / units)).padStart(4, "0");
    const key = `0001${unit}${number}0`;
    h.rooms.push({ index: r, address: `Y${key}`, key, number, phones: [] });
  }
  for (let d = 0; d < o.doors; d++) {
    const unit = Math.floor(d / 2) + 1;
    h.slots.push({
      index: d,
      ip: `127.0.0.${2 + d}`,
      // M addresses are significant on 8 characters: building 4, unit 2, then the door digit.
      address: `M0001${String(unit).padStart(2, "0")}${d % 2}0`,
      rooms: h.rooms.filter((r) => r.index % units === unit - 1),
      strict: d % 4 === 3,
      sim: undefined,
      lastEndedAt: -Infinity,
      lastPoweredOff: false,
      lastRoom: undefined,
      lastCallAt: -Infinity,
    });
  }
  // Bind in small parallel batches (KV writes).
  for (let p = 0; p < o.phones; p += 50) {
    const batch = [];
    for (let i = p; i < Math.min(o.phones, p + 50); i++) {
      const room = h.rooms[i % o.rooms]!;
      const uid = `soak-${String(i).padStart(4, "0")}`;
      batch.push(
        h.gw.bind(uid, room.address, COMMUNITY).then((token) => {
          const phone = new SoakPhone(
            h,
            i,
            uid,
            room,
            token,
            `ws://${phoneIp(i)}:${port}/phone`,
            h.rng() < o.videoShare,
          );
          room.phones.push(phone);
          h.phones[i] = phone;
        }),
      );
    }
    await Promise.all(batch);
  }
  for (let i = 0; i < h.phones.length; i++) {
    h.phones[i]!.connect();
    if (i % 25 === 24) await sleep(20);
  }
  const deadline = performance.now() + 20_000;
  while (h.phones.some((p) => p.state !== "online") && performance.now() < deadline) {
    await sleep(100);
  }
  const down = h.phones.filter((p) => p.state !== "online").length;
  if (down) h.violate("phones could not log in at start", `${down} of ${h.phones.length}`);
}

/** A room with a phone online since well before `t` (NS must be answered). */
function stablyOnline(room: Room, t: number): boolean {
  return room.phones.some((p) => p.onlineSince !== undefined && p.onlineSince < t - 500);
}

function classify(
  h: Harness,
  slot: DoorSlot,
  s: DoorSimSummary,
  startedAt: number,
  room: Room,
  firstCallAt: number,
) {
  h.bump(h.outcomes, s.reason);
  h.locksOpened += s.locksOpened;
  if (s.completed) h.callsCompleted++;
  // The same door calling the same room again soon: the gateway may take the new CALL for a
  // copy of the previous one (its ASK cache keys on door IP, door, room and operation).
  const recall = slot.lastRoom === room && firstCallAt - slot.lastCallAt < 2000
    ? `; its previous call to this room sent its last CALL ${
      Math.round(firstCallAt - slot.lastCallAt)
    } ms before`
    : "";
  const what = `door ${slot.address}@${slot.ip} → room ${room.key}${recall}`;
  switch (s.reason) {
    case "ended_by_gateway":
    case "busy":
    case "power_off":
      return;
    case "hangup_after":
      if (s.callendReplied !== true) {
        h.violate("door CALLEND not acknowledged", `${what}: ${JSON.stringify(s.counters)}`);
      }
      return;
    case "ns_unanswered":
      if (stablyOnline(room, startedAt) && stablyOnline(room, h.now())) {
        h.violate("NS unanswered while a phone of the room was online", what);
      }
      return;
    case "call_unanswered":
      return h.violate("door CALL never answered", what);
    case "keepalive_expired":
      return h.violate(
        "door keep-alive expired (no CALLCONFIRM)",
        `${what} (strict ${slot.strict})`,
      );
    case "ring_timeout":
    case "talk_timeout":
      return h.violate(`door's own ${s.reason} (gateway never ended the call)`, what);
    default:
      return h.violate(`door call ended by ${s.reason}`, `${what}: ${s.error ?? ""}`);
  }
}

async function doorLoop(h: Harness, slot: DoorSlot): Promise<void> {
  await sleep(h.between(0, 1500));
  while (!h.stopping) {
    const room = h.pick(slot.rooms);
    const r = h.rng();
    const hangupAfterS = r < 0.35 ? h.between(0.5, 6) : undefined;
    const powerOff = r > 0.97;
    let sim: DoorSim | undefined;
    const powerOffLater = () => {
      setTimeout(() => {
        if (sim && sim.phase !== "lingering" && sim.phase !== "done") {
          h.poweredOff++;
          void sim.powerOff();
        }
      }, h.between(300, 3000));
    };
    try {
      sim = await openDoor({
        ip: slot.ip,
        address: slot.address,
        room: room.number,
        fps: 10,
        video: { frame: () => FRAME },
        keepaliveWindowMs: slot.strict ? STRICT_KEEPALIVE_WINDOW_MS : 6000,
        ...(hangupAfterS !== undefined ? { hangupAfterS } : {}),
        onEvent: (e: DoorSimEvent) => {
          if (e.type === "dropped") h.bump(h.doorDrops, `${e.reason} ${e.what}`);
          else if (e.type === "answered" && powerOff) powerOffLater();
        },
      });
    } catch (e) {
      h.bump(h.outcomes, "bind_retry");
      if (h.outcomes.bind_retry! > 50) h.violate("door socket cannot be reopened", String(e));
      await sleep(200);
      continue;
    }
    slot.sim = sim;
    const startedAt = h.now();
    h.callsPlaced++;
    const summary = await sim.start();
    slot.sim = undefined;
    slot.lastEndedAt = h.now();
    slot.lastPoweredOff = summary.reason === "power_off";
    const callTimes = sim.events.filter((e) => e.type === "call_sent").map((e) => e.t - h.t0);
    classify(h, slot, summary, startedAt, room, callTimes[0] ?? Infinity);
    slot.lastRoom = room;
    slot.lastCallAt = callTimes.at(-1) ?? -Infinity;
    // A powered-off door reboots before calling again.
    await sleep(slot.lastPoweredOff ? h.between(1000, 3000) : h.between(200, 1500));
  }
}

async function chaosLoop(h: Harness): Promise<void> {
  while (!h.stopping) {
    await sleep(1000);
    if (h.stopping) return;
    const n = h.phones.length * h.o.dropRate;
    let drops = Math.floor(n) + (h.rng() < n - Math.floor(n) ? 1 : 0);
    for (let tries = 0; drops > 0 && tries < 20; tries++) {
      if (h.pick(h.phones).drop(h.rng() < 0.7 ? "close" : "silent")) drops--;
    }
  }
}

async function check(h: Harness): Promise<void> {
  const now = h.now();
  const calls = h.gw.app.manager.list();
  const byRoom = new Map<string, string[]>();
  for (const c of calls) {
    byRoom.set(c.roomKey, [...(byRoom.get(c.roomKey) ?? []), c.callId]);
    if (!h.firstSeen.has(c.callId)) h.firstSeen.set(c.callId, now);
    const age = now - h.firstSeen.get(c.callId)!;
    if (age > h.callBoundMs && !h.flaggedCalls.has(c.callId)) {
      h.flaggedCalls.add(c.callId);
      h.violate(
        `call outlived ring + talk timeout + ${h.o.marginS} s`,
        `call ${c.callId} room ${c.roomKey} door ${c.doorAddress} phase ${c.phase}, ${
          Math.round(age / 1000)
        } s`,
      );
    }
    const slot = h.slots.find((s) => s.ip === c.door.hostname);
    // A powered-off door is noticed by the keep-alive only (6 s).
    const grace = h.o.marginS * 600 + (slot?.lastPoweredOff ? 6000 : 0);
    if (
      slot && h.firstSeen.get(c.callId)! < slot.lastEndedAt && now - slot.lastEndedAt > grace &&
      !h.flaggedCalls.has(c.callId)
    ) {
      h.flaggedCalls.add(c.callId);
      h.violate(
        "call outlived its door's call",
        `call ${c.callId} room ${c.roomKey} phase ${c.phase}: door ${slot.address} ended ${
          Math.round(now - slot.lastEndedAt)
        } ms ago`,
      );
    }
    const indexed = h.gw.app.manager.byRoom(c.roomKey);
    if (indexed?.callId !== c.callId) {
      h.violate(
        "manager room index disagrees with its calls",
        `call ${c.callId} room ${c.roomKey} phase ${c.phase}; index has ${indexed?.callId}`,
      );
    }
  }
  for (const [room, ids] of byRoom) {
    if (ids.length > 1) h.violate("room in more than one call", `${room}: ${ids.join(", ")}`);
  }
  const live = new Set(calls.map((c) => c.callId));
  for (const id of h.firstSeen.keys()) if (!live.has(id)) h.firstSeen.delete(id);
  for (const p of h.phones) {
    for (const [id, c] of p.calls) {
      if (now - c.at > h.callBoundMs + 2000) {
        p.calls.delete(id);
        h.violate(
          "phone never told that its call ended",
          `${p.uid} (room ${p.room.key}) call ${id} script ${c.script}, live in gateway: ${
            live.has(id)
          }`,
        );
      }
    }
  }
  const t = performance.now();
  try {
    const res = await fetch(`${h.gw.httpBase}/healthz`, { signal: AbortSignal.timeout(3000) });
    const body = await res.json() as { ok?: boolean };
    if (res.status !== 200 || body.ok !== true) {
      h.violate("/healthz not ok", `${res.status} ${JSON.stringify(body)}`);
    }
  } catch (e) {
    h.violate("/healthz failed", e instanceof Error ? e.message : String(e));
  }
  h.maxHealthMs = Math.max(h.maxHealthMs, performance.now() - t);
}

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(50);
  }
  return true;
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

/** Runs the soak; never throws for a broken invariant (see {@linkcode SoakReport.ok}). */
export async function runSoak(options: Partial<SoakOptions> = {}): Promise<SoakReport> {
  const o: SoakOptions = { ...SOAK_DEFAULTS, ...options };
  const h = new Harness(o);
  const rss = { start: vmRssKiB(), warm: 0, endOfLoad: 0, afterDrain: 0, peak: 0 };
  const heap = { warm: 0, endOfLoad: 0 };
  const heapKiB = () => Deno.memoryUsage().heapUsed / 1024;
  h.census.install();
  const atStart = { timers: h.census.live.size, fds: await openFds() };
  const loops: Promise<void>[] = [];
  try {
    await setUp(h);
    o.log(
      `soak: ${o.durationS} s, ${o.doors} doors, ${o.rooms} rooms, ${o.phones} phones ` +
        `(${h.phones.filter((p) => p.video).length} with ws video), ring ${o.ringTimeoutS} s, ` +
        `talk ${o.talkTimeoutS} s, seed ${o.seed}; setup ${(h.now() / 1000).toFixed(1)} s`,
    );
    const loadStart = performance.now();
    for (const slot of h.slots) loops.push(doorLoop(h, slot));
    loops.push(chaosLoop(h));
    let lastReport = 0;
    while (performance.now() - loadStart < o.durationS * 1000) {
      await sleep(1000);
      await check(h);
      const s = (performance.now() - loadStart) / 1000;
      const r = vmRssKiB();
      rss.peak = Math.max(rss.peak, r);
      if (!rss.warm && s >= o.warmupS) {
        gc();
        rss.warm = vmRssKiB();
        heap.warm = heapKiB();
      }
      if (o.reportEveryS && s - lastReport >= o.reportEveryS) {
        lastReport = s;
        gc();
        const mem = Deno.memoryUsage();
        o.log(
          `  ${s.toFixed(0)} s: ${h.callsPlaced} calls (${h.callsCompleted} completed), ` +
            `${h.gw.app.manager.size} live, ${
              h.phones.filter((p) => p.state === "online").length
            }` +
            ` phones online, rss ${mib(r)}, heap ${mib(mem.heapUsed / 1024)} + external ${
              mib(mem.external / 1024)
            } after gc, timers ${h.census.live.size}, fds ${await openFds()}, ` +
            `violations ${[...h.violations.values()].reduce((a, v) => a + v.count, 0)}`,
        );
      }
    }
    gc();
    rss.endOfLoad = vmRssKiB();
    heap.endOfLoad = heapKiB();
    if (!rss.warm) rss.warm = rss.endOfLoad;
    if (!heap.warm) heap.warm = heap.endOfLoad;
    const endOfLoad = {
      calls: h.gw.app.manager.size,
      phones: h.gw.app.hub.size,
      timers: h.census.live.size,
      fds: await openFds(),
    };

    // Drain: no new calls or drops; running door calls end by themselves.
    h.stopping = true;
    const drained = await within(Promise.all(loops).then(() => true), h.callBoundMs + 10_000);
    if (!drained) {
      const stuck = h.slots.filter((s) => s.sim).map((s) => `${s.address} ${s.sim!.phase}`);
      h.violate("door calls did not end during the drain", stuck.join(", "));
      await Promise.all(h.slots.map((s) => s.sim?.powerOff()));
    }
    await check(h);
    if (!(await waitUntil(() => h.gw.app.manager.size === 0, 8000))) {
      h.violate(
        "calls left after every door call ended",
        h.gw.app.manager.list().map((c) => `${c.callId} ${c.roomKey} ${c.phase}`).join("; "),
      );
    }
    for (const p of h.phones) {
      for (const [id, c] of p.calls) {
        h.violate("phone never told that its call ended", `${p.uid} call ${id} (${c.script})`);
      }
    }
    await within(Promise.all(h.phones.map((p) => p.close())), 5000);
    if (!(await waitUntil(() => h.gw.app.hub.size === 0, 5000))) {
      h.violate("phone sessions left after every phone closed", `hub.size ${h.gw.app.hub.size}`);
    }
    await sleep(200);
    gc();
    rss.afterDrain = vmRssKiB();
    const afterDrain = {
      calls: h.gw.app.manager.size,
      phones: h.gw.app.hub.size,
      mediaCalls: metricGauge(h.gw, "media_calls"),
      timers: h.census.live.size,
      fds: await openFds(),
    };
    if (afterDrain.mediaCalls !== 0) {
      h.violate("media state left after every call ended", `media_calls ${afterDrain.mediaCalls}`);
    }
    await h.gw.close();
    await sleep(100);
    const afterClose = { timers: h.census.live.size, fds: await openFds() };
    if (afterClose.timers > atStart.timers + 2) {
      h.violate("timers left after shutdown", `${atStart.timers} → ${afterClose.timers}`);
    }
    if (afterClose.fds > atStart.fds + 2) {
      h.violate("file descriptors left after shutdown", `${atStart.fds} → ${afterClose.fds}`);
    }
    const growth = rss.endOfLoad / rss.warm - 1;
    if (growth > o.maxRssGrowth) {
      h.violate(
        "resident memory grew beyond the bound",
        `${mib(rss.warm)} after warm-up → ${mib(rss.endOfLoad)} (+${(growth * 100).toFixed(0)} %,` +
          ` bound ${(o.maxRssGrowth * 100).toFixed(0)} %)`,
      );
    }
    const heapGrowth = heap.endOfLoad / heap.warm - 1;
    if (heapGrowth > o.maxHeapGrowth) {
      h.violate(
        "the JavaScript heap grew beyond the bound",
        `${mib(heap.warm)} after warm-up → ${mib(heap.endOfLoad)} (+${
          (heapGrowth * 100).toFixed(0)
        } %, bound ${(o.maxHeapGrowth * 100).toFixed(0)} %)`,
      );
    }
    const { log: _log, ...shown } = o;
    return {
      options: shown,
      elapsedS: h.now() / 1000,
      door: {
        callsPlaced: h.callsPlaced,
        callsCompleted: h.callsCompleted,
        outcomes: h.outcomes,
        dropped: h.doorDrops,
        locksOpened: h.locksOpened,
        poweredOff: h.poweredOff,
      },
      phone: h.phoneStats,
      closeCodes: h.closeCodes,
      expectedErrors: h.expectedErrors,
      overReasons: h.overReasons,
      violations: Object.fromEntries(h.violations),
      rssKiB: rss,
      heapKiB: heap,
      resources: { atStart, endOfLoad, afterDrain, afterClose },
      maxHealthMs: h.maxHealthMs,
      ok: h.violations.size === 0,
    };
  } finally {
    h.stopping = true;
    for (const p of h.phones) void p.close();
    for (const s of h.slots) void s.sim?.powerOff();
    await h.gw?.close().catch(() => {});
    h.census.restore();
  }
}

const kv = (r: Record<string, number>) =>
  Object.entries(r).sort(([, a], [, b]) => b - a).map(([k, v]) => `${k} ${v}`).join(", ") ||
  "none";

/** The report as lines for people (and CI logs). */
export function formatReport(r: SoakReport): string[] {
  const p = r.phone;
  const x = r.resources;
  const growth = ((r.rssKiB.endOfLoad / r.rssKiB.warm - 1) * 100).toFixed(1);
  const lines = [
    `soak ${r.ok ? "OK" : "FAILED"} after ${r.elapsedS.toFixed(1)} s (seed ${r.options.seed})`,
    `door calls: ${r.door.callsPlaced} placed, ${r.door.callsCompleted} completed ` +
    `(answered, ended cleanly), ${r.door.locksOpened} locks opened, ` +
    `${r.door.poweredOff} doors powered off`,
    `  outcomes: ${kv(r.door.outcomes)}`,
    `  datagrams the doors dropped: ${kv(r.door.dropped)}`,
    `phones: ${p["got call"] ?? 0} call, ${p["got talk begin"] ?? 0} talk begin, ` +
    `${p["got unlock success"] ?? 0} unlock success, ${p["got unlock fail"] ?? 0} unlock fail, ` +
    `${p["media frames"] ?? 0} media frames; ${p.connects ?? 0} connects, ` +
    `${p["got login ok"] ?? 0} logins, drops ${p.drops_close ?? 0} closed + ` +
    `${p.drops_silent ?? 0} silent`,
    `  over reasons: ${kv(r.overReasons)}`,
    `  close codes: ${kv(r.closeCodes)}`,
    `  errors (legitimate races): ${kv(r.expectedErrors)}`,
    `memory (VmRSS, whole process): start ${mib(r.rssKiB.start)}, after warm-up ` +
    `${mib(r.rssKiB.warm)}, end of load ${mib(r.rssKiB.endOfLoad)} (${growth} % vs warm-up), ` +
    `after drain ${mib(r.rssKiB.afterDrain)}, peak ${mib(r.rssKiB.peak)}`,
    `heap (V8, live after a full GC): after warm-up ${mib(r.heapKiB.warm)}, end of load ` +
    `${mib(r.heapKiB.endOfLoad)} (${
      ((r.heapKiB.endOfLoad / r.heapKiB.warm - 1) * 100).toFixed(1)
    } % vs warm-up)`,
    `resources: end of load ${x.endOfLoad.calls} calls, ${x.endOfLoad.phones} phone sessions, ` +
    `${x.endOfLoad.timers} timers, ${x.endOfLoad.fds} fds; after drain ${x.afterDrain.calls} ` +
    `calls, ${x.afterDrain.phones} sessions, ${x.afterDrain.mediaCalls} media calls, ` +
    `${x.afterDrain.timers} timers, ${x.afterDrain.fds} fds; after shutdown ` +
    `${x.afterClose.timers} timers, ${x.afterClose.fds} fds (at start ${x.atStart.timers}, ` +
    `${x.atStart.fds})`,
    `slowest /healthz: ${r.maxHealthMs.toFixed(1)} ms`,
  ];
  const v = Object.entries(r.violations);
  if (!v.length) lines.push("violations: none");
  for (const [kind, { count, first, atS }] of v) {
    lines.push(`VIOLATION ${kind}: ${count}× (first at ${atS} s: ${first})`);
  }
  return lines;
}
