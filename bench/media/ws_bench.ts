// deno-lint-ignore-file no-console
/**
 * ws_bench.ts - web-phone viewers over the WebSocket transport against the UDP transport, in
 * one run: the product's relay (relay_product.ts) with each call's door media going to its UDP
 * phone (load.c) and to V web-phone viewers per call (ws_viewers.ts), V = 0 (UDP only, the
 * baseline) and the values of `--viewers`, interleaved over `--rounds`.
 *
 *   deno run -A bench/media/ws_bench.ts [--calls 10] [--viewers 1,2] [--rounds 3] [--duration 3]
 *     [--talk]
 *
 * Per run: UDP loss and p99 (load.c), WebSocket loss (door frames counted in the window that a
 * viewer did not get), frames skipped for back-pressure (the sink's count: more than 256 KiB
 * unsent), WS latency p50/p99 (load.c's send time to the viewer's receive, same clock), and
 * the relay CPU each WS frame adds (against the UDP-only run of the same round) next to the
 * CPU of one UDP packet (receive + send) in that run. The relay's main thread runs under
 * SCHED_FIFO 5 (see steps.ts), the load generator and the viewers on core 0. Builds
 * bench/media/.build/load from load.c.
 *
 * `--talk`: phone audio to the door, over the WebSocket against UDP. Each round adds two runs at
 * the first V of `--viewers` (at least 1): `quiet` (nobody talks: load.c sends no phone audio)
 * and `ws-talk` (each call's first viewer is the talker and sends its audio over its WebSocket,
 * ws_viewers.ts; load.c sends no phone audio). The round's plain run at that V is the UDP talker
 * (load.c's phone). Per talker path: audio frames/s to the doors, loss (frames due in the window
 * that no door got, skipped ones included), frames skipped by the talker for back-pressure and
 * dropped by the relay's pacing, latency p50/p99 (sender's send time to the door socket's
 * receive, load.c, same clock), and the relay CPU per audio frame: against `quiet` of the round.
 *
 * @module
 */

import { benchArgs, productRelay } from "./command_line.ts";

const here = new URL(".", import.meta.url).pathname;
const { opt, flag } = benchArgs(Deno.args);
const calls = Number(opt("--calls", "10"));
const viewerSets = [0, ...opt("--viewers", "1,2").split(",").map(Number)];
const rounds = Number(opt("--rounds", "3"));
const duration = Number(opt("--duration", "3"));
const talk = flag("--talk");
/** The viewer count of the talk runs (`quiet`, `ws-talk`). */
const talkViewers = Math.max(1, viewerSets.find((v) => v > 0) ?? 1);
const warmup = 1;
const deno = Deno.execPath();
const DOOR_IP = "127.0.1.1";
const WS_PORT = 47099;
const dec = new TextDecoder();

/** Who sends phone audio to the doors: load.c's UDP phones, nobody, or the WS viewers. */
type Talk = "udp" | "quiet" | "ws";

interface Run {
  viewers: number;
  talk: Talk;
  /** Phone audio frames at the doors in the window (the run's talker path). */
  talkRecv: number;
  /** Frames the talkers were due to send in the window. */
  talkDue: number;
  /** Skipped by the WS talker (more than 64 KiB unsent). */
  talkSkipped: number;
  /** Dropped by the relay's pacing (whole run). */
  paced: number;
  talkP50: number;
  talkP99: number;
  talkP999: number;
  talkLateMax: number;
  udpLoss: number;
  udpP99: number;
  wsLoss: number;
  skipped: number;
  wsP50: number;
  wsP99: number;
  wsP999: number;
  cpuUsPerPkt: number;
  cpuMs: number;
  udpPkts: number;
  wsFrames: number;
  oth: number;
  /** CPU µs added per WS frame against the round's UDP-only run. */
  marginalUs?: number;
  /** CPU µs per talker audio frame against the round's `quiet` run. */
  talkMarginalUs?: number;
}

/** Reads lines from a stream until a whole one contains `word`; returns what it read. */
async function waitFor(stream: ReadableStream<Uint8Array>, word: string): Promise<string> {
  const reader = stream.getReader();
  let seen = "";
  const deadline = Date.now() + 20000;
  const whole = () => seen.includes(word) && seen.indexOf("\n", seen.indexOf(word)) >= 0;
  while (!whole() && Date.now() < deadline) {
    const { done, value } = await reader.read();
    if (done) break;
    seen += dec.decode(value);
  }
  reader.releaseLock();
  if (!seen.includes(word)) throw new Error(`no ${word}: ${seen}`);
  return seen;
}

async function once(viewers: number, talk: Talk = "udp"): Promise<Run> {
  const relay = new Deno.Command("nice", {
    args: [
      ..."-n -19 taskset -c 1".split(" "),
      ...productRelay(),
      ..."47100 47101 47200 48200".split(" "),
      String(calls),
      DOOR_IP,
    ],
    env: {
      WS_VIEWERS: String(viewers),
      WS_PORT: String(WS_PORT),
      WS_TALK: talk === "ws" ? "1" : "0",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errText = new Response(relay.stderr).text();
  let client: Deno.ChildProcess | undefined;
  try {
    await waitFor(relay.stdout, "READY");
    await new Deno.Command("chrt", { args: ["-f", "-p", "5", String(relay.pid)] }).output();
    let wsOut: Promise<string> = Promise.resolve("");
    let startAt: string[] = [];
    if (viewers > 0) {
      client = new Deno.Command("taskset", {
        args: [
          "-c",
          "0",
          deno,
          "run",
          "--quiet",
          "--allow-net",
          "--allow-ffi",
          "--allow-read",
          `${here}ws_viewers.ts`,
          String(WS_PORT),
          String(calls),
          String(viewers),
          String(warmup + duration + (talk === "ws" ? 1.5 : 1)),
          ...(talk === "ws" ? [String(warmup), String(duration)] : []),
        ],
        stdout: "piped",
      }).spawn();
      const [a, b] = client.stdout.tee();
      const connected = await waitFor(a, "CONNECTED");
      const t0 = connected.match(/CONNECTED (\d+)/)?.[1];
      if (talk === "ws") {
        if (!t0) throw new Error(`no talk start: ${connected}`);
        startAt = ["--start-at", t0];
      }
      // its main thread too: other sessions would otherwise delay the viewers' receive
      await new Deno.Command("chrt", { args: ["-f", "-p", "4", String(client.pid)] }).output();
      wsOut = new Response(b).text();
    }
    const load = await new Deno.Command("chrt", {
      args: [
        ..."-f 10 taskset -c 0".split(" "),
        `${here}.build/load`,
        ..."--a 47100 --b 47101 --door-base 47200 --phone-base 48200".split(" "),
        ...["--calls", String(calls), "--pid", String(relay.pid)],
        ...["--warmup", String(warmup), "--duration", String(duration)],
        ...["--door-ip-base", DOOR_IP],
        ...(talk === "udp" ? [] : ["--no-phone-audio", "1"]),
        ...startAt,
      ],
      stdout: "piped",
    }).output();
    const l = JSON.parse(dec.decode(load.stdout).trim());
    const text = await wsOut;
    const w = viewers > 0 ? JSON.parse(text.trim().split("\n").at(-1)!) : undefined;
    relay.kill("SIGTERM");
    await relay.status;
    const report = await errText;
    const skipped = Number(report.match(/skipped (\d+)/)?.[1] ?? 0);
    const paced = Number(report.match(/"paced":(\d+)/)?.[1] ?? 0);
    const ws = talk === "ws";
    // door frames counted in the window, per viewer: 325 per call and second
    const doorCounted = calls * 325 * duration;
    const wsExpected = doorCounted * viewers;
    const delivered = l.recv + (w?.recv_counted ?? 0);
    return {
      viewers,
      talk,
      talkRecv: ws ? l.talk_ws_recv : l.talk_udp_recv,
      talkDue: ws ? w.talk_due : l.talk_udp_sent,
      talkSkipped: ws ? w.talk_skipped : 0,
      paced,
      talkP50: ws ? l.talk_ws_p50_us : l.talk_udp_p50_us,
      talkP99: ws ? l.talk_ws_p99_us : l.talk_udp_p99_us,
      talkP999: ws ? l.talk_ws_p999_us : l.talk_udp_p999_us,
      talkLateMax: ws ? w.talk_late_max_us : l.gen_late_max_us,
      udpLoss: l.loss_pct,
      udpP99: l.p99_us,
      wsLoss: w ? Math.max(0, 100 * (1 - w.recv_counted / wsExpected)) : 0,
      skipped,
      wsP50: w?.p50_us ?? -1,
      wsP99: w?.p99_us ?? -1,
      wsP999: w?.p999_us ?? -1,
      cpuUsPerPkt: (l.cpu_ms * 1000) / delivered,
      cpuMs: l.cpu_ms,
      udpPkts: l.recv,
      wsFrames: w?.recv_counted ?? 0,
      oth: l.other_pct,
    };
  } finally {
    try {
      relay.kill("SIGKILL");
    } catch { /* gone */ }
    await relay.status;
    if (client) {
      try {
        client.kill("SIGKILL");
      } catch { /* gone */ }
      await client.status;
    }
  }
}

console.log(
  `# ${calls} calls, door media to 1 UDP phone + V web-phone viewers per call; ${rounds} rounds ` +
    `interleaved, ${duration} s measured; cpu = relay µs per delivered packet (UDP + WS)`,
);
if (talk) {
  console.log(
    `# --talk: at V=${talkViewers} also "quiet" (no phone audio) and "ws-talk" (each call's ` +
      `first viewer talks over its WebSocket); the plain V=${talkViewers} run is the UDP talker; ` +
      `cpu per audio frame against quiet`,
  );
}
const build = await new Deno.Command("cc", {
  args: ["-O2", "-o", `${here}.build/load`, `${here}load.c`, "-lpthread"],
}).output();
if (!build.success) throw new Error(`Cannot build load.c: ${dec.decode(build.stderr)}`);
const runs: Run[] = [];
for (let k = 0; k < rounds; k++) {
  let base: Run | undefined;
  for (const v of viewerSets) {
    const r = await once(v);
    runs.push(r);
    if (v === 0) base = r;
    else if (base) r.marginalUs = marginal(r, base);
    show(r, base);
    if (talk && v === talkViewers) {
      const quiet = await once(v, "quiet");
      runs.push(quiet);
      show(quiet, base);
      r.talkMarginalUs = talkMarginal(r, quiet);
      showTalk(r);
      const w = await once(v, "ws");
      runs.push(w);
      w.talkMarginalUs = talkMarginal(w, quiet);
      show(w, base);
      showTalk(w);
    }
  }
}

/** One line per run: door media to the UDP phones and the viewers. */
function show(r: Run, base: Run | undefined): void {
  const v = r.viewers;
  console.log(
    [
      (`V=${v}` + (r.talk === "udp" ? "" : ` ${r.talk === "ws" ? "ws-talk" : "quiet"}`))
        .padEnd(12),
      `udp loss ${r.udpLoss.toFixed(3)}% p99 ${r.udpP99.toFixed(0)} us`,
      v ? `ws loss ${r.wsLoss.toFixed(3)}% (skipped ${r.skipped})` : "",
      v
        ? `ws p50 ${r.wsP50.toFixed(0)} p99 ${r.wsP99.toFixed(0)} p999 ${r.wsP999.toFixed(0)} us`
        : "",
      v === 0
        ? `cpu ${(r.cpuMs * 1000 / r.udpPkts).toFixed(1)} us per UDP packet (receive + send)`
        : `cpu ${r.cpuUsPerPkt.toFixed(1)} us per delivered packet; each WS frame adds ${
          base ? marginal(r, base).toFixed(1) : "-"
        } us`,
      `oth ${r.oth}%`,
    ].filter(Boolean).join("  "),
  );
}

/** One line for a talker run: its audio at the doors. */
function showTalk(r: Run): void {
  const lossPct = r.talkDue ? Math.max(0, 100 * (1 - r.talkRecv / r.talkDue)) : NaN;
  console.log(
    [
      `  talk ${r.talk}`.padEnd(12),
      `${(r.talkRecv / duration).toFixed(0)} frames/s at the doors`,
      `loss ${lossPct.toFixed(3)}% (skipped ${r.talkSkipped}, paced ${r.paced})`,
      `p50 ${r.talkP50.toFixed(0)} p99 ${r.talkP99.toFixed(0)} p999 ${r.talkP999.toFixed(0)} us`,
      `sender late max ${r.talkLateMax.toFixed(0)} us`,
      `cpu per audio frame ${r.talkMarginalUs?.toFixed(1) ?? "-"} us`,
    ].join("  "),
  );
}

/** Relay CPU per talker audio frame at the doors, against the round's run where nobody talks. */
function talkMarginal(r: Run, quiet: Run): number {
  return ((r.cpuMs - quiet.cpuMs) * 1000) / r.talkRecv;
}
/** Relay CPU added per WebSocket frame, against the UDP-only run of the same round. */
function marginal(r: Run, base: Run): number {
  return ((r.cpuMs - base.cpuMs) * 1000) / r.wsFrames;
}

const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log("\n# medians");
const base0 = runs.filter((r) => r.viewers === 0 && r.talk === "udp");
const udpCost = med(base0.map((r) => (r.cpuMs * 1000) / r.udpPkts));
const baseP99 = med(base0.map((r) => r.udpP99));
console.log(`V=0: udp p99 ${baseP99.toFixed(0)} us, cpu ${udpCost.toFixed(1)} us per UDP packet`);
for (const v of viewerSets.filter((v) => v > 0)) {
  const rs = runs.filter((r) => r.viewers === v && r.talk === "udp");
  const udpP99 = med(rs.map((r) => r.udpP99));
  const wsP99 = med(rs.map((r) => r.wsP99));
  const m = med(rs.map((r) => r.marginalUs ?? NaN));
  console.log(
    `V=${v}: udp p99 ${udpP99.toFixed(0)} us (x ${(udpP99 / baseP99).toFixed(2)}), ws loss ${
      med(rs.map((r) => r.wsLoss)).toFixed(3)
    }% (skipped ${med(rs.map((r) => r.skipped))}), ws p50 ${
      med(rs.map((r) => r.wsP50)).toFixed(0)
    } p99 ${wsP99.toFixed(0)} us (x udp ${(wsP99 / baseP99).toFixed(2)}), ` +
      `cpu per WS frame ${m.toFixed(1)} us (x a UDP packet ${(m / udpCost).toFixed(2)})`,
  );
}
if (talk) {
  console.log(`\n# medians, phone audio to the doors (V=${talkViewers})`);
  for (const path of ["udp", "ws"] as const) {
    const rs = runs.filter((r) => r.viewers === talkViewers && r.talk === path);
    const loss = (r: Run) => r.talkDue ? Math.max(0, 100 * (1 - r.talkRecv / r.talkDue)) : NaN;
    console.log(
      `talk ${path}: ${med(rs.map((r) => r.talkRecv / duration)).toFixed(0)} frames/s, loss ${
        med(rs.map(loss)).toFixed(3)
      }% (skipped ${med(rs.map((r) => r.talkSkipped))}, paced ${med(rs.map((r) => r.paced))}), ` +
        `p50 ${med(rs.map((r) => r.talkP50)).toFixed(0)} p99 ${
          med(rs.map((r) => r.talkP99)).toFixed(0)
        } us, cpu per audio frame ${med(rs.map((r) => r.talkMarginalUs ?? NaN)).toFixed(1)} us`,
    );
  }
}
