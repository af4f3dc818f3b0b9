// deno-lint-ignore-file no-console
/**
 * ws_bench.ts - web-phone viewers over the WebSocket transport against the UDP transport, in
 * one run: the product's relay (relay_product.ts) with each call's door media going to its UDP
 * phone (load.c) and to V web-phone viewers per call (ws_viewers.ts), V = 0 (UDP only, the
 * baseline) and the values of `--viewers`, interleaved over `--rounds`.
 *
 *   deno run -A bench/media/ws_bench.ts [--calls 10] [--viewers 1,2] [--rounds 3] [--duration 3]
 *
 * Per run: UDP loss and p99 (load.c), WebSocket loss (door frames counted in the window that a
 * viewer did not get), frames skipped for back-pressure (the sink's count: more than 256 KiB
 * unsent), WS latency p50/p99 (load.c's send time to the viewer's receive, same clock), and
 * the relay CPU each WS frame adds (against the UDP-only run of the same round) next to the
 * CPU of one UDP packet (receive + send) in that run. The relay's main thread runs under SCHED_FIFO 5 (see steps.ts), the load
 * generator and the viewers on core 0. Needs bench/media/.build/load (`deno task bench:media`).
 *
 * @module
 */

import { benchArgs, productRelay } from "./command_line.ts";

const here = new URL(".", import.meta.url).pathname;
const { opt } = benchArgs(Deno.args);
const calls = Number(opt("--calls", "10"));
const viewerSets = [0, ...opt("--viewers", "1,2").split(",").map(Number)];
const rounds = Number(opt("--rounds", "3"));
const duration = Number(opt("--duration", "3"));
const warmup = 1;
const deno = Deno.execPath();
const DOOR_IP = "127.0.1.1";
const WS_PORT = 47099;
const dec = new TextDecoder();

interface Run {
  viewers: number;
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
}

/** Reads lines from a stream until one contains `word`. */
async function waitFor(stream: ReadableStream<Uint8Array>, word: string): Promise<void> {
  const reader = stream.getReader();
  let seen = "";
  const deadline = Date.now() + 20000;
  while (!seen.includes(word) && Date.now() < deadline) {
    const { done, value } = await reader.read();
    if (done) break;
    seen += dec.decode(value);
  }
  reader.releaseLock();
  if (!seen.includes(word)) throw new Error(`no ${word}: ${seen}`);
}

async function once(viewers: number): Promise<Run> {
  const relay = new Deno.Command("nice", {
    args: [
      ..."-n -19 taskset -c 1".split(" "),
      ...productRelay(),
      ..."47100 47101 47200 48200".split(" "),
      String(calls),
      DOOR_IP,
    ],
    env: { WS_VIEWERS: String(viewers), WS_PORT: String(WS_PORT) },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errText = new Response(relay.stderr).text();
  let client: Deno.ChildProcess | undefined;
  try {
    await waitFor(relay.stdout, "READY");
    await new Deno.Command("chrt", { args: ["-f", "-p", "5", String(relay.pid)] }).output();
    let wsOut: Promise<string> = Promise.resolve("");
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
          `${here}ws_viewers.ts`,
          String(WS_PORT),
          String(calls),
          String(viewers),
          String(warmup + duration + 1),
        ],
        stdout: "piped",
      }).spawn();
      const [a, b] = client.stdout.tee();
      await waitFor(a, "CONNECTED");
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
    // door frames counted in the window, per viewer: 325 per call and second
    const doorCounted = calls * 325 * duration;
    const wsExpected = doorCounted * viewers;
    const delivered = l.recv + (w?.recv_counted ?? 0);
    return {
      viewers,
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
const runs: Run[] = [];
for (let k = 0; k < rounds; k++) {
  let base: Run | undefined;
  for (const v of viewerSets) {
    const r = await once(v);
    runs.push(r);
    if (v === 0) base = r;
    else if (base) r.marginalUs = marginal(r, base);
    console.log(
      [
        `V=${v}`.padEnd(4),
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
}
/** Relay CPU added per WebSocket frame, against the UDP-only run of the same round. */
function marginal(r: Run, base: Run): number {
  return ((r.cpuMs - base.cpuMs) * 1000) / r.wsFrames;
}

const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log("\n# medians");
const base0 = runs.filter((r) => r.viewers === 0);
const udpCost = med(base0.map((r) => (r.cpuMs * 1000) / r.udpPkts));
const baseP99 = med(base0.map((r) => r.udpP99));
console.log(`V=0: udp p99 ${baseP99.toFixed(0)} us, cpu ${udpCost.toFixed(1)} us per UDP packet`);
for (const v of viewerSets.filter((v) => v > 0)) {
  const rs = runs.filter((r) => r.viewers === v);
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
