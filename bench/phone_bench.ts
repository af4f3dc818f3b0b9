/**
 * Phone fan-out benchmark: with 1,000 logged-in phones heartbeating, how long from a door's CALL
 * to the `call` order at the room's phones (p50 / p99 / max; target p99 < 5 ms on loopback), and
 * how much gateway memory one connected phone costs.
 *
 * `deno task bench [-- --phones 1000 --per-room 2 --rounds 500 --baseline-rounds 200]`
 *
 * - The gateway runs as a subprocess (`main.ts serve`), so that its VmRSS (`/proc/PID/status`)
 *   is its own: memory per phone = (RSS with all phones − RSS with one phone) / (phones − 1).
 * - Phones are raw WebSockets (login, `heartbeat` every 2 s, nothing else), each from its own
 *   loopback IP 127.1.x.y (the gateway limits logins per IP); `N / per-room` rooms. The phones
 *   of the first `--probe-rooms` rooms live on the main thread and are the ones timed; the rest
 *   heartbeat from a worker thread, so that their traffic does not delay the main thread's
 *   timestamps (the client's own event loop is part of every figure).
 * - The door is eight raw UDP sockets, 127.0.0.2–9:8302, taking turns by round (the gateway admits
 *   5 CALLs/s per door IP), that skip name resolution and send the
 *   62-byte CALL straight to 127.0.0.1:8302, answering the gateway's ASKs with REPLYs. A round:
 *   CALL for the next probe room of a shuffled list → `call` at its phones (timed with
 *   `performance.now()` in this one process) → the first phone declines (`over`) → the door gets
 *   LINEUSE and the phone `over success`: the room is free again for the next round.
 * - Baseline, same run: the same rounds with one phone connected, before and after the load
 *   (pooled, so that a change of the machine's load during the run shows). Ratios are printed
 *   against it.
 *
 * Environment (bench only, the product's launch is unchanged): `BENCH_GATEWAY_V8_FLAGS` (V8 flags
 * for the gateway), `BENCH_GATEWAY_STDOUT=1` (the gateway's output shown, e.g. with `--trace-gc`),
 * `BENCH_GATEWAY_HEAP_PROFILE=1` (the gateway under `--inspect`: live JS heap and VmRSS per phone
 * after a full GC, and what it allocates per heartbeat while the phones idle, by function),
 * `BENCH_GATEWAY_HEAP_SNAPSHOT=1` (with the former: the live heap per phone by kind of object).
 *
 * Runs itself inside a private network namespace (`unshare -rn`) unless `INTERCOM_IN_NETNS=1`.
 * Exit code 1 when more than 1 % of rounds failed (no `call`, or the room was busy).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { PRODUCT_PERMS } from "../scripts/deno_flags.ts";
import { HeapSampler } from "./lib/heap_profile.ts";
import { ensureNetns, phoneIp } from "../scripts/netns.ts";
import { vmRssKiB } from "../tests/helpers/proc.ts";
import { sleep, within } from "../tests/helpers/wait.ts";
import { parseBenchFlags } from "./lib/flags.ts";
import { openStore } from "../src/store/kv.ts";
import { BindingStore } from "../src/store/bindings.ts";
import { encodeCall, MSG_TYPE, OP, replyTo, roomKey, type SignalOp } from "../src/protocol/mod.ts";
import { eprintln, println } from "../src/print.ts";

const GATEWAY_IP = "127.0.0.1";
const DOOR_IP = "127.0.0.2";
/**
 * Doors the rounds take turns with, from DOOR_IP up: the gateway admits at most 5 CALLs a second
 * (burst 20) per door IP, and a round is quicker than that; one door lost ~5 % of its CALLs.
 */
const DOORS = 8;
const DOOR_PORT = 8302;
const HTTP_PORT = 8080;
const INSPECT = "127.0.0.1:9229";
const heapProfile = Boolean(Deno.env.get("BENCH_GATEWAY_HEAP_PROFILE"));
const MEDIA_PORT = 8303;
const COMMUNITY = "花苑";
/** Distinct door addresses the bench door cycles through (see `doorAddress`). */
const DOOR_ADDRESSES = 500;
/** The gateway treats the same door/room CALL within 2 s as a retransmission. */
const ASK_CACHE_GAP_MS = 2100;
/** The gateway's answers to the door that the door must acknowledge. */
const REPLY_OPS: ReadonlySet<number> = new Set([
  OP.CALLCONFIRM,
  OP.CALLEND,
  OP.CALLSTART,
  OP.REMOTEOPENLOCK,
  OP.FORCEIFRAME,
]);

type Tid = ReturnType<typeof setTimeout>;

/**
 * Door `k`'s address: `M` + a 4-digit building + unit `01` (significant on 8 characters). Each
 * round uses another door address, so that a room called again soon is not taken for a
 * retransmission of its previous CALL.
 */
function doorAddress(k: number): string {
  return `M${String(1 + (k % DOOR_ADDRESSES)).padStart(4, "0")}010`;
}

function percentile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

interface Stats {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function stats(xs: readonly number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 0.5), p99: percentile(s, 0.99), max: s.at(-1) ?? NaN };
}

const ms = (x: number) => `${x.toFixed(2)} ms`;
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
const show = (s: Stats) => `p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)} (n=${s.n})`;

/** Gateway CPU time (user + system) in ms, from `/proc/PID/stat`. */
function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
}

interface Room {
  key: string;
  address: string;
  phones: BenchPhone[];
  /** Set during a round: called with each `call` at a phone of the room. */
  onCall?: (phone: BenchPhone, at: number) => void;
}

/** A light phone: login, heartbeat every 2 s; reports `call` and `over success` to the bench. */
class BenchPhone {
  ws: WebSocket | undefined;
  #hb: Tid | undefined;
  #heartbeat: string;
  onOverSuccess: (() => void) | undefined;
  errors = 0;
  heartbeatsOk = 0;
  lastCall: Record<string, unknown> | undefined;

  constructor(
    readonly index: number,
    readonly uid: string,
    readonly room: Room,
    readonly token: string,
  ) {
    this.#heartbeat = JSON.stringify({
      order: "heartbeat",
      roomAddress: room.address,
      uid,
      community: COMMUNITY,
    });
  }

  /** Connects and logs in; resolves on `login ok`. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${phoneIp(this.index)}:${HTTP_PORT}/phone`);
      this.ws = ws;
      ws.onopen = () =>
        ws.send(JSON.stringify({
          order: "login",
          roomAddress: this.room.address,
          uid: this.uid,
          community: COMMUNITY,
          token: this.token,
        }));
      ws.onerror = () => reject(new Error(`phone ${this.uid}: WebSocket error`));
      ws.onclose = (e) => {
        if (this.#hb !== undefined) clearInterval(this.#hb);
        reject(new Error(`phone ${this.uid}: closed (${e.code})`));
      };
      ws.onmessage = (ev: MessageEvent) => {
        const at = performance.now();
        const m = JSON.parse(ev.data as string) as Record<string, unknown>;
        switch (m.order) {
          case "call":
            this.lastCall = m;
            this.room.onCall?.(this, at);
            return;
          case "over success":
            this.onOverSuccess?.();
            return;
          case "heartbeat ok":
            this.heartbeatsOk++;
            return;
          case "login ok": {
            // Spread the heartbeats over the 2 s period.
            const first = setTimeout(() => {
              this.#beat();
              this.#hb = setInterval(() => this.#beat(), 2000);
            }, Math.random() * 2000);
            this.#hb = first;
            resolve();
            return;
          }
          case "error":
            this.errors++;
            return;
        }
      };
    });
  }

  #beat(): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(this.#heartbeat);
  }

  /** Declines the call it just got. */
  decline(): void {
    const m = this.lastCall!;
    this.ws!.send(JSON.stringify({
      order: "over",
      doorAddress: m.doorAddress,
      roomAddress: this.room.address,
      uid: this.uid,
      community: COMMUNITY,
      callId: m.callId,
    }));
  }

  close(): Promise<void> {
    clearTimeout(this.#hb);
    clearInterval(this.#hb);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      ws.onclose = () => resolve();
      ws.close(1000, "bench end");
    });
  }
}

/** The bench's door: sends CALLs, acknowledges the gateway's ASKs, reports its answers. */
class BenchDoor {
  #conn: Deno.DatagramConn;
  #answers = new Map<string, (op: number) => void>();
  #loop: Promise<void>;

  readonly ip: string;

  constructor(ip: string) {
    this.ip = ip;
    // reuseAddress: the gateway's wildcard socket holds port 8302 with it too.
    this.#conn = Deno.listenDatagram({
      hostname: ip,
      port: DOOR_PORT,
      transport: "udp",
      reuseAddress: true,
    });
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    for (;;) {
      let data: Uint8Array, from: Deno.Addr;
      try {
        [data, from] = await this.#conn.receive();
      } catch {
        return;
      }
      if (data.length < 57 || data[6] !== 150 || (data[7]! & 3) !== MSG_TYPE.ASK) continue;
      const op = data[8]!;
      if (REPLY_OPS.has(op)) {
        await this.#conn.send(replyTo(data, op as SignalOp), from).catch(() => {});
      } else if (op === OP.LINEUSE || op === OP.CALLANSWER) {
        const room = roomKey(new TextDecoder().decode(data.subarray(33, 45)))!;
        this.#answers.get(room)?.(op);
      }
    }
  }

  /** Sends a CALL for `room` as door `k`; resolves with the gateway's answer op. */
  call(k: number, room: Room): { sent: Promise<unknown>; answer: Promise<number> } {
    const answer = new Promise<number>((resolve) => {
      this.#answers.set(room.key, (op) => {
        this.#answers.delete(room.key);
        resolve(op);
      });
    });
    const bytes = encodeCall({
      type: MSG_TYPE.ASK,
      op: OP.CALL,
      caller: doorAddress(k),
      callerIp: this.ip,
      callee: `S${room.key}`,
      calleeIp: GATEWAY_IP,
      multicast: 0,
      groupIp: "0.0.0.0",
    });
    const sent = this.#conn.send(bytes, {
      transport: "udp",
      hostname: GATEWAY_IP,
      port: DOOR_PORT,
    });
    return { sent, answer };
  }

  async close(): Promise<void> {
    this.#conn.close();
    await this.#loop;
  }
}

interface RoundResult {
  /** CALL → `call` at the first / at every phone of the room, ms; undefined when lost. */
  first?: number;
  all?: number;
  /** The gateway's answer: LINEUSE after the decline, or LINEUSE at once (busy, no phone). */
  answer?: number;
}

/**
 * One round: CALL → `call` at the room's `expect` phones → the first to get it declines →
 * LINEUSE at the door and `over success` at the decliner.
 */
/** The bench's doors, one per round in turn. */
class BenchDoors {
  #doors = Array.from({ length: DOORS }, (_, i) => {
    const [a, b, c, d] = DOOR_IP.split(".").map(Number) as [number, number, number, number];
    return new BenchDoor(`${a}.${b}.${c}.${d + i}`);
  });

  call(k: number, room: Room): { sent: Promise<unknown>; answer: Promise<number> } {
    return this.#doors[k % DOORS]!.call(k, room);
  }

  async close(): Promise<void> {
    await Promise.all(this.#doors.map((d) => d.close()));
  }
}

async function round(
  door: BenchDoors,
  k: number,
  room: Room,
  expect: number,
): Promise<RoundResult> {
  const got: number[] = [];
  let decliner: BenchPhone | undefined;
  let allIn!: () => void;
  const allPhones = new Promise<void>((r) => (allIn = r));
  let overOk!: () => void;
  const overSuccess = new Promise<void>((r) => (overOk = r));
  room.onCall = (phone, at) => {
    got.push(at);
    if (!decliner) {
      decliner = phone;
      phone.onOverSuccess = () => overOk();
      phone.decline();
    }
    if (got.length === expect) allIn();
  };
  const t0 = performance.now();
  const { answer } = door.call(k, room);
  const [, , op] = await within(Promise.all([allPhones, overSuccess, answer]), 3000) ?? [];
  room.onCall = undefined;
  if (decliner) decliner.onOverSuccess = undefined;
  return {
    ...(got.length ? { first: got[0]! - t0 } : {}),
    ...(got.length === expect ? { all: got.at(-1)! - t0 } : {}),
    ...(op !== undefined ? { answer: op } : {}),
  };
}

interface Phase {
  first: number[];
  all: number[];
  failed: number;
  /** Failed rounds by what was missing: `no call`, `not every phone`, `answer <op>`. */
  why: Map<string, number>;
}

async function rounds(
  door: BenchDoors,
  plan: { k: number; room: Room; expect: number }[],
  gapMs: number,
): Promise<Phase> {
  const out: Phase = { first: [], all: [], failed: 0, why: new Map() };
  for (const { k, room, expect } of plan) {
    const r = await round(door, k, room, expect);
    if (r.first === undefined || r.all === undefined || r.answer !== OP.LINEUSE) {
      out.failed++;
      const why = r.first === undefined
        ? `no call (answer ${r.answer ?? "none"})`
        : r.all === undefined
        ? "not every phone"
        : `answer ${r.answer ?? "none"}`;
      out.why.set(why, (out.why.get(why) ?? 0) + 1);
    }
    if (r.first !== undefined) out.first.push(r.first);
    if (r.all !== undefined) out.all.push(r.all);
    if (gapMs) await sleep(gapMs);
  }
  return out;
}

async function waitHealthy(base: string, child: Deno.ChildProcess, ms: number): Promise<void> {
  const end = performance.now() + ms;
  let exited = false;
  child.status.then(() => (exited = true));
  while (performance.now() < end && !exited) {
    try {
      const res = await fetch(`${base}/healthz`);
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(exited ? "the gateway exited at start" : "the gateway did not become healthy");
}

/** True in the worker thread that holds the background phones (this same module). */
const IN_WORKER = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !==
  "undefined";

/** What the main thread tells the background phones' worker about one phone. */
interface PhoneSpec {
  index: number;
  uid: string;
  roomAddress: string;
  token: string;
}

type ToWorker = { type: "connect"; phones: PhoneSpec[] } | { type: "stats" } | {
  type: "close";
};
type FromWorker =
  | { type: "connected"; failed: number }
  | { type: "stats"; heartbeatsOk: number; errors: number; calls: number }
  | { type: "closed" };

/** The worker side: connects the background phones, reports counters, closes them. */
function workerMain(): void {
  const scope = globalThis as unknown as {
    onmessage: (e: MessageEvent<ToWorker>) => void;
    postMessage: (m: FromWorker) => void;
  };
  let phones: BenchPhone[] = [];
  let calls = 0;
  scope.onmessage = async (e) => {
    const msg = e.data;
    if (msg.type === "connect") {
      phones = msg.phones.map((s) => {
        const room: Room = {
          key: roomKey(s.roomAddress)!,
          address: s.roomAddress,
          phones: [],
          onCall: () => void calls++, // never expected: rounds call probe rooms only
        };
        return new BenchPhone(s.index, s.uid, room, s.token);
      });
      let failed = 0;
      for (let i = 0; i < phones.length; i += 100) {
        await Promise.all(phones.slice(i, i + 100).map((p) => p.connect().catch(() => failed++)));
      }
      scope.postMessage({ type: "connected", failed });
    } else if (msg.type === "stats") {
      scope.postMessage({
        type: "stats",
        heartbeatsOk: phones.reduce((a, p) => a + p.heartbeatsOk, 0),
        errors: phones.reduce((a, p) => a + p.errors, 0),
        calls,
      });
    } else {
      await Promise.all(phones.map((p) => p.close()));
      scope.postMessage({ type: "closed" });
    }
  };
}

/** The main side of the background phones' worker. */
class Background {
  #worker = new Worker(import.meta.url, { type: "module" });
  #waiting: ((m: FromWorker) => void)[] = [];

  constructor() {
    this.#worker.onmessage = (e: MessageEvent<FromWorker>) => this.#waiting.shift()?.(e.data);
  }

  ask<T extends FromWorker["type"]>(
    msg: ToWorker,
  ): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve) => {
      this.#waiting.push((m) => resolve(m as Extract<FromWorker, { type: T }>));
      this.#worker.postMessage(msg);
    });
  }

  terminate(): void {
    this.#worker.terminate();
  }
}

/** Runs the bench and prints its report; resolves to the exit code. */
export async function runBench(o: {
  phones: number;
  perRoom: number;
  probeRooms: number;
  rounds: number;
  baselineRounds: number;
  gapMs: number;
}): Promise<number> {
  const started = performance.now();
  const roomCount = Math.ceil(o.phones / o.perRoom);
  const rooms: Room[] = [];
  for (let r = 0; r < roomCount; r++) {
    // Building 0002, unit 01–99, rooms 0101…; the 11-digit key is what the door calls.
    const unit = String(1 + (r % 99)).padStart(2, "0");
    const number = String(101 + Math.floor(r / 99)).padStart(4, "0");
    const key = `0002${unit}${number}0`;
    rooms.push({ key, address: `Y${key}`, phones: [] });
  }

  // Bindings, written before the gateway starts (it reads the KV on every login).
  const data = await Deno.makeTempDir({ prefix: "phone-bench-" });
  const kv = await openStore(data);
  const store = new BindingStore(kv);
  const phones: BenchPhone[] = [];
  for (let i = 0; i < o.phones; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, o.phones - i) }, async (_, j) => {
        const index = i + j;
        const room = rooms[Math.floor(index / o.perRoom)]!;
        const uid = `bench-${String(index).padStart(5, "0")}`;
        const { token } = await store.add({ uid, roomAddress: room.address, community: COMMUNITY });
        phones[index] = new BenchPhone(index, uid, room, token);
      }),
    );
  }
  for (const p of phones) p.room.phones.push(p);
  kv.close();
  // Probe rooms' phones live on this thread (the rounds time them); the others heartbeat from
  // a worker thread, so that their traffic does not delay this event loop's timestamps.
  const probeRooms = rooms.slice(0, Math.min(o.probeRooms, rooms.length));
  const probes = probeRooms.flatMap((r) => r.phones);
  const others = phones.filter((p) => !probes.includes(p));

  const main = fileURLToPath(new URL("../main.ts", import.meta.url));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...PRODUCT_PERMS,
      // e.g. BENCH_GATEWAY_V8_FLAGS=--max-semi-space-size=1 (how much of RSS is V8's sizing)
      ...(Deno.env.get("BENCH_GATEWAY_V8_FLAGS")
        ? [`--v8-flags=${Deno.env.get("BENCH_GATEWAY_V8_FLAGS")}`]
        : []),
      // BENCH_GATEWAY_HEAP_PROFILE=1: where the gateway allocates while the phones idle.
      ...(heapProfile ? [`--inspect=${INSPECT}`] : []),
      main,
      "serve",
      "--http-host",
      "0.0.0.0",
      "--http-port",
      String(HTTP_PORT),
      "--media-port",
      String(MEDIA_PORT),
      "--data",
      data,
      "--lan-ip",
      GATEWAY_IP,
      "--log-level",
      "error",
    ],
    // V8's --trace-gc prints to stdout: BENCH_GATEWAY_STDOUT=1 shows it.
    stdout: Deno.env.get("BENCH_GATEWAY_STDOUT") ? "inherit" : "null",
    stderr: "inherit",
  }).spawn();
  const pid = child.pid;
  let door: BenchDoors | undefined;
  const background = others.length ? new Background() : undefined;
  const backgroundStats = async () =>
    background ? await background.ask<"stats">({ type: "stats" }) : {
      heartbeatsOk: 0,
      errors: 0,
      calls: 0,
    };
  try {
    await waitHealthy(`http://${GATEWAY_IP}:${HTTP_PORT}`, child, 20_000);
    door = new BenchDoors();
    const rss0 = vmRssKiB(pid);

    // Baseline: one phone connected (the first phone of room 0).
    const solo = rooms[0]!.phones[0]!;
    await solo.connect();
    const soloPlan = Array.from({ length: o.baselineRounds }, (_, k) => ({
      k,
      room: rooms[0]!,
      expect: 1,
    }));
    await rounds(door, soloPlan, o.gapMs); // warm-up (JIT, door learning)
    await sleep(ASK_CACHE_GAP_MS);
    const base = await rounds(door, soloPlan, o.gapMs);
    await sleep(500);
    const rss1 = vmRssKiB(pid);
    // BENCH_GATEWAY_HEAP_PROFILE=1: what is live (after a full GC) with one phone and with all.
    const sampler = heapProfile ? await HeapSampler.connect(INSPECT) : undefined;
    const live = async () => {
      await sampler!.collectGarbage();
      await sleep(200);
      return { heap: (await sampler!.heapUsage()).used / 1024, rss: vmRssKiB(pid) };
    };
    const live1 = sampler ? await live() : undefined;
    const snap1 = sampler && Deno.env.get("BENCH_GATEWAY_HEAP_SNAPSHOT") === "1"
      ? await sampler.snapshotSummary()
      : undefined;

    // Everyone else.
    const t = performance.now();
    const connecting = background?.ask<"connected">({
      type: "connect",
      phones: others.map((p) => ({
        index: p.index,
        uid: p.uid,
        roomAddress: p.room.address,
        token: p.token,
      })),
    });
    const rest = probes.filter((p) => p !== solo);
    for (let i = 0; i < rest.length; i += 100) {
      await Promise.all(rest.slice(i, i + 100).map((p) => p.connect()));
    }
    const failedBackground = (await connecting)?.failed ?? 0;
    if (failedBackground) throw new Error(`${failedBackground} background phones failed to log in`);
    const connectS = (performance.now() - t) / 1000;
    await sleep(4500); // every phone heartbeats twice: presence settled
    const rss2 = vmRssKiB(pid);
    const cpu0 = cpuMs(pid);
    const heartbeats = async () =>
      probes.reduce((a, p) => a + p.heartbeatsOk, 0) + (await backgroundStats()).heartbeatsOk;
    const hb0 = await heartbeats();
    const live2 = sampler ? await live() : undefined;
    if (live1 && live2) {
      const n = Math.max(1, phones.length - 1);
      println(
        `after a full GC: JS heap ${mib(live1.heap)} with 1 phone, ${mib(live2.heap)} with ` +
          `${phones.length} → ${
            ((live2.heap - live1.heap) / n).toFixed(1)
          } KiB live JS per phone; ` +
          `VmRSS ${mib(live1.rss)} → ${mib(live2.rss)} → ${
            ((live2.rss - live1.rss) / n).toFixed(1)
          } KiB per phone`,
      );
    }
    if (snap1) {
      // What one more phone keeps alive, by kind of object (BENCH_GATEWAY_HEAP_SNAPSHOT=1).
      const snap2 = await sampler!.snapshotSummary();
      const n = Math.max(1, phones.length - 1);
      const rows = [...snap2].map(([k, v]) => {
        const was = snap1.get(k) ?? { count: 0, bytes: 0 };
        return { k, count: (v.count - was.count) / n, bytes: (v.bytes - was.bytes) / n };
      }).sort((a, b) => b.bytes - a.bytes);
      println("live JS heap per phone by kind (snapshot with all phones − with one, ÷ phones):");
      for (const r of rows.slice(0, 30)) {
        println(
          `  ${r.bytes.toFixed(0).padStart(6)} B  ${r.count.toFixed(2).padStart(6)} ×  ${r.k}`,
        );
      }
    }
    await sampler?.start();
    const idleT0 = performance.now();
    await sleep(4000);
    const idleS = (performance.now() - idleT0) / 1000;
    const profile = await sampler?.stop();
    sampler?.close();
    const idleCpu = (cpuMs(pid) - cpu0) / 10 / idleS;
    const hbRate = ((await heartbeats()) - hb0) / idleS;
    if (profile) {
      println(
        `gateway allocations while idle (sampled, garbage included): ${
          (profile.total / idleS / 1024).toFixed(0)
        } KiB/s, ${(profile.total / idleS / hbRate).toFixed(0)} B per heartbeat; by function:`,
      );
      for (const s of profile.sites.slice(0, 30)) {
        println(`  ${(s.bytes / idleS / hbRate).toFixed(0).padStart(6)} B/heartbeat  ${s.site}`);
      }
    }

    // The measured rounds: the probe rooms shuffled, each called at most once per pass.
    const order = probeRooms.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const plan = Array.from({ length: o.rounds }, (_, i) => {
      const room = probeRooms[order[i % order.length]!]!;
      return { k: i + Math.floor(i / order.length), room, expect: room.phones.length };
    });
    const cpu1 = cpuMs(pid);
    const loadT0 = performance.now();
    const load = await rounds(door, plan, o.gapMs);
    const loadS = (performance.now() - loadT0) / 1000;
    const loadCpu = (cpuMs(pid) - cpu1) / 10 / loadS;
    const rss3 = vmRssKiB(pid);
    const bg = await backgroundStats();
    const errors = probes.reduce((a, p) => a + p.errors, 0) + bg.errors;

    // The baseline again, after the others left: brackets the load run against drift.
    await Promise.all(rest.map((p) => p.close()));
    await background?.ask<"closed">({ type: "close" });
    await sleep(ASK_CACHE_GAP_MS);
    const baseAfter = await rounds(door, soloPlan, o.gapMs);

    const bBefore = stats(base.first);
    const bAfter = stats(baseAfter.first);
    const b = stats([...base.first, ...baseAfter.first]);
    const f = stats(load.first);
    const a = stats(load.all);
    const perPhone = (rss2 - rss1) / Math.max(1, phones.length - 1);
    println(
      `phone bench: ${phones.length} phones in ${rooms.length} rooms (${o.perRoom} per room), ` +
        `heartbeat 2 s; ${probes.length} phones of ${probeRooms.length} probe rooms timed on the ` +
        `main thread, ${others.length} in a worker; gateway pid ${pid} (subprocess); door ` +
        `${DOORS} doors from ${DOOR_IP} → ${GATEWAY_IP}:8302`,
    );
    println(
      `baseline, 1 phone connected: CALL→call ${show(b)}; before the load p99 ${
        ms(bBefore.p99)
      }, after p99 ${ms(bAfter.p99)}`,
    );
    println(`${phones.length} phones connected: CALL→call, first phone  ${show(f)}`);
    println(`${" ".repeat(String(phones.length).length)}                  every phone ${show(a)}`);
    println(
      `ratio vs baseline (first phone): p50 ×${(f.p50 / b.p50).toFixed(2)}, p99 ×${
        (f.p99 / b.p99).toFixed(2)
      }, max ×${(f.max / b.max).toFixed(2)}`,
    );
    println(
      `target p99 < 5 ms (every phone): ${a.p99 < 5 ? "met" : "NOT met"} (${ms(a.p99)}); ` +
        `rounds failed (no call, busy or no LINEUSE): ${load.failed} of ${plan.length}, ` +
        `baseline ${base.failed + baseAfter.failed} of ${2 * soloPlan.length} (${
          [...load.why, ...base.why, ...baseAfter.why].map(([k, n]) => `${k}: ${n}`).join(", ")
        }); ` +
        `errors at phones: ${errors}; calls at phones of unprobed rooms: ${bg.calls}`,
    );
    println(
      `memory (gateway VmRSS): no phone ${mib(rss0)}, 1 phone ${mib(rss1)}, ${phones.length} ` +
        `phones ${mib(rss2)}, after the rounds ${mib(rss3)} → ${perPhone.toFixed(1)} KiB per ` +
        `connected phone`,
    );
    println(
      `gateway CPU: ${idleCpu.toFixed(1)} % of a core idle with ${phones.length} phones ` +
        `(${hbRate.toFixed(0)} heartbeats/s), ${loadCpu.toFixed(1)} % during the rounds; ` +
        `${phones.length} phones connected in ${connectS.toFixed(1)} s; total ` +
        `${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    return load.failed > plan.length / 100 || bg.calls > 0 ? 1 : 0;
  } finally {
    await door?.close();
    await within(Promise.all(probes.map((p) => p.close())), 5000);
    background?.terminate();
    try {
      child.kill("SIGTERM");
    } catch {
      // exited already
    }
    await within(child.status, 5000);
    await Deno.remove(data, { recursive: true }).catch(() => {});
  }
}

if (IN_WORKER) workerMain();
else if (import.meta.main) {
  const values = parseBenchFlags(
    {
      phones: { type: "string", default: "1000" },
      "per-room": { type: "string", default: "2" },
      "probe-rooms": { type: "string", default: "100" },
      rounds: { type: "string", default: "500" },
      "baseline-rounds": { type: "string", default: "200" },
      "gap-ms": { type: "string", default: "5" },
    },
    "deno task bench [-- --phones N --per-room N --probe-rooms N --rounds N " +
      "--baseline-rounds N --gap-ms MS]",
  );
  const int = (name: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      eprintln(`Cannot use --${name} ${raw}: expected an integer ${min}–${max}`);
      Deno.exit(2);
    }
    return n;
  };
  const options = {
    phones: int("phones", values.phones, 2, 60_000),
    perRoom: int("per-room", values["per-room"], 1, 50),
    probeRooms: int("probe-rooms", values["probe-rooms"], 1, 60_000),
    rounds: int("rounds", values.rounds, 1, 100_000),
    baselineRounds: int("baseline-rounds", values["baseline-rounds"], 1, DOOR_ADDRESSES),
    gapMs: int("gap-ms", values["gap-ms"], 0, 10_000),
  };
  await ensureNetns(import.meta.url, ["--unstable-net", "--unstable-kv", "-A"], {
    phoneRoute: true,
  });
  Deno.exit(await runBench(options));
}
