// deno-lint-ignore-file no-console
/**
 * bench.ts - runs the same paced load against each relay and prints one table.
 *
 *   deno run -A bench/media/bench.ts [--all] [--no-search] [--calls 10,25,50]
 *        [--duration S] [--only name,name] [--json FILE] [--md FILE]
 *
 * For each rate, every relay is started fresh, pinned to core 1 (`taskset -c 1`),
 * the C load generator (pinned to core 0) sends WARMUP+DURATION seconds of
 * traffic and reports loss, added latency and the relay's CPU time.  Rates are
 * interleaved (all relays at 10 calls, then all at 25, ...) so machine noise hits
 * every relay alike.  Then a loss-free-rate ladder runs for each relay, and a
 * summary compares the product's relay (`deno-product`: the gateway's own
 * DoorTransport + MediaRelay, relay_product.ts) with Node and C against the target.
 * Compare relays only within one run.
 *
 * @module
 */

import { benchArgs, productRelay } from "./command_line.ts";

const here = new URL(".", import.meta.url).pathname;
const build = `${here}.build`;
const PORTS = { a: 47100, b: 47101, doorBase: 47200, phoneBase: 48200 };

interface Relay {
  name: string;
  cmd: string[];
  core?: boolean; // in the default set
  /**
   * One loopback IP per door, from this address up (127.0.0.0/8): the load generator
   * binds call i's door socket to it + i, and the relay gets it as its last argument.
   * The product keys a door's call by the door's IP, the other relays by source port.
   */
  doorIpBase?: string;
}

const deno = Deno.execPath();
/** K (receives outstanding per socket) goes after the common relay args. */
const denoRelay = (mode: string, k?: number, extra: string[] = []): Relay["cmd"] => [
  deno,
  "run",
  "--quiet",
  "--unstable-net",
  "--allow-net",
  "--allow-read",
  "--allow-ffi",
  ...extra,
  `${here}relay_deno.ts`,
  mode,
  ...(k === undefined ? [] : [`K=${k}`]),
];

const RELAYS: Relay[] = [
  { name: "c", cmd: [`${build}/relay`], core: true },
  { name: "node", cmd: ["node", `${here}relay_node.mjs`], core: true },
  { name: "deno-naive", cmd: denoRelay("naive"), core: true },
  // fast_udp.ts forwardDatagrams() with its defaults: the pure-Deno winner
  { name: "deno-fast_udp", cmd: denoRelay("fire"), core: true },
  { name: "deno-ffi-thread", cmd: denoRelay("ffi-thread"), core: true },
  // The product: DoorTransport fast path + MediaRelay on pooled ports, as src/app.ts wires them
  {
    name: "deno-product",
    cmd: productRelay(),
    core: true,
    doorIpBase: "127.0.1.1",
  },
  // The same with V8's GC on the main thread only (`--v8-flags=--single-threaded-gc`, a launch
  // flag: set at run time it has no effect): ~30% less CPU per packet on the relay's one core
  {
    name: "deno-product-stgc",
    cmd: productRelay(["--v8-flags=--single-threaded-gc"]),
    core: true,
    doorIpBase: "127.0.1.1",
  },
  // The gateway with `--media-engine native`: the same relay, its routes applied by the C thread
  {
    name: "deno-product-native",
    cmd: ["env", "RELAY_ENGINE=native", ...productRelay(["--allow-ffi", "--allow-read"])],
    core: true,
    doorIpBase: "127.0.1.1",
  },
  // BENCH_BASE=<a tree of an earlier commit> (e.g. `git archive <commit> src bench | tar -x -C
  // DIR`): that commit's product relay beside this one, in the same run ("before/after")
  ...(Deno.env.get("BENCH_BASE")
    ? [{
      name: "deno-product@base",
      cmd: productRelay([], `${Deno.env.get("BENCH_BASE")}/bench/media/relay_product.ts`),
      core: true,
      doorIpBase: "127.0.1.1",
    }]
    : []),
  { name: "deno-bufloop", cmd: denoRelay("bufloop") },
  { name: "deno-pumps8", cmd: denoRelay("pumps", 8) },
  { name: "deno-fire2", cmd: denoRelay("fire", 2) },
  { name: "deno-fire4", cmd: denoRelay("fire", 4) },
  { name: "deno-fire8", cmd: denoRelay("fire", 8) },
  { name: "deno-fast_udp-st", cmd: denoRelay("fire", undefined, ["--v8-flags=--single-threaded"]) },
  { name: "deno-workers", cmd: denoRelay("workers", 1) },
  {
    name: "deno-node:dgram",
    cmd: [deno, "run", "--quiet", "--allow-net", `${here}relay_node.mjs`],
  },
  { name: "deno-ffi-libc", cmd: denoRelay("ffi") },
];

// ---- args
const { opt, flag } = benchArgs(Deno.args);
const rates = opt("--calls", "10,25,50").split(",").map(Number);
const duration = Number(opt("--duration", "2"));
const warmup = Number(opt("--warmup", "1"));
const only = opt("--only", "");
let relays = flag("--all") ? RELAYS : RELAYS.filter((r) => r.core);
if (only) relays = RELAYS.filter((r) => only.split(",").includes(r.name));
// Scheduling: the machine is shared, so by default the relay runs at nice -19 and
// the (single-purpose, never spinning) C load generator at SCHED_FIFO 10.
// Never put a relay under SCHED_FIFO: Deno/V8 helper threads pinned to the same
// core at equal RT priority can livelock (seen: 95% CPU, RT-throttled, for minutes).
const prio = opt("--prio", "nice");
const RELAY_PRIO: string[] = prio === "none" ? [] : ["nice", "-n", "-19"];
// --prio fifo: also the relay's main thread (only; its helper threads stay SCHED_OTHER, so no
// RT livelock) under SCHED_FIFO 5. Other sessions' processes sit in other cgroups, which nice
// does not reach: without it they take up to half of the relay's core and set every relay's p99.
const RELAY_FIFO = prio === "fifo";
const LOAD_PRIO: string[] = prio === "none" ? [] : ["chrt", "-f", "10"];
const prefixed = (pre: string[], cmd: string[]): [string, string[]] =>
  pre.length ? [pre[0]!, [...pre.slice(1), ...cmd]] : [cmd[0]!, cmd.slice(1)];
const tries = Number(opt("--tries", "3"));
const waitQuietS = Number(opt("--wait-quiet", "0"));
const searchTries = Number(opt("--search-tries", "2"));
const LADDER = [75, 100, 125, 150];

// ---- build C
async function sh(cmd: string[]): Promise<void> {
  const o = await new Deno.Command(cmd[0]!, { args: cmd.slice(1) }).output();
  if (!o.success) throw new Error(`${cmd.join(" ")}: ${new TextDecoder().decode(o.stderr)}`);
}
await Deno.mkdir(build, { recursive: true });
await sh(["cc", "-O2", "-o", `${build}/relay`, `${here}relay.c`]);
await sh(["cc", "-O2", "-o", `${build}/load`, `${here}load.c`, "-lpthread"]);
await sh([
  "cc",
  "-O2",
  "-shared",
  "-fPIC",
  "-o",
  `${build}/libfwd.so`,
  `${here}fwd_thread.c`,
  "-lpthread",
]);

interface Result {
  relay: string;
  calls: number;
  pps: number;
  sent: number;
  recv: number;
  loss_pct: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  cpu_pct: number;
  other_pct: number;
  cpu_us_per_pkt: number;
  gen_late_max_us: number;
  reordered: number;
  tries?: number;
}

/**
 * Measures one point.  Noise on a shared VM only ever adds loss and latency, so a
 * point that misses the target (any loss, or p99 > 2 ms) is retried, up to `tries`
 * runs in all, and the best run (least loss, then lowest p99) is kept.  The same
 * rule applies to every relay; `tries` in the table says how many runs it took.
 */
async function measure(r: Relay, calls: number, n = tries, needP99 = true): Promise<Result> {
  let best: Result | undefined;
  for (let i = 1; i <= n; i++) {
    const x: Result = await measureOnce(r, calls);
    if (
      !best || x.loss_pct < best.loss_pct ||
      (x.loss_pct === best.loss_pct && x.p99_us < best.p99_us)
    ) best = x;
    best.tries = i;
    if (x.loss_pct === 0 && (!needP99 || x.p99_us <= 2000)) break;
  }
  return best!;
}

/** Busy share (0..1) of both CPUs over `ms`, from /proc/stat. */
async function busy(ms: number): Promise<number> {
  const read = async () => {
    const f = (await Deno.readTextFile("/proc/stat")).split("\n")[0]!.trim().split(/\s+/)
      .slice(1).map(Number);
    const idle = f[3]! + f[4]!;
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = await read();
  await new Promise((r) => setTimeout(r, ms));
  const b = await read();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

/** With --wait-quiet S: wait up to S seconds for the machine to be < 15% busy. */
async function waitQuiet(): Promise<void> {
  const deadline = Date.now() + waitQuietS * 1000;
  while (Date.now() < deadline && (await busy(300)) > 0.15) { /* wait */ }
}

async function measureOnce(r: Relay, calls: number): Promise<Result> {
  if (waitQuietS > 0) await waitQuiet();
  const k = r.cmd.find((x) => x.startsWith("K="));
  const argv = [
    ...r.cmd.filter((x) => x !== k),
    ...[PORTS.a, PORTS.b, PORTS.doorBase, PORTS.phoneBase, Math.max(calls, 1)].map(String),
    ...(k ? [k.slice(2)] : []),
    ...(r.doorIpBase ? [r.doorIpBase] : []),
  ];
  const [rc, ra] = prefixed(RELAY_PRIO, ["taskset", "-c", "1", ...argv]);
  const child = new Deno.Command(rc, {
    args: ra,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  running = child;
  // wait for READY
  const reader = child.stdout.getReader();
  let seen = "";
  const deadline = Date.now() + 10000;
  while (!seen.includes("READY")) {
    const t = new Promise<{ done: true; value: undefined }>((res) =>
      setTimeout(() => res({ done: true, value: undefined }), Math.max(1, deadline - Date.now()))
    );
    const { done, value } = await Promise.race([reader.read(), t]);
    if (done) {
      child.kill("SIGKILL");
      await child.status;
      throw new Error(`${r.name} did not start`);
    }
    seen += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  if (RELAY_FIFO) {
    // the pid is the main thread's: nice and taskset exec the relay
    await new Deno.Command("chrt", { args: ["-f", "-p", "5", String(child.pid)] }).output();
    // The native engine's forwarding thread (blocks in poll, never spins) with it, as C's relay.
    for await (const t of Deno.readDir(`/proc/${child.pid}/task`)) {
      const comm = await Deno.readTextFile(`/proc/${child.pid}/task/${t.name}/comm`).catch(() =>
        ""
      );
      if (comm.trim() !== "intercom-media") continue;
      await new Deno.Command("chrt", { args: ["-f", "-p", "5", t.name] }).output();
    }
  }
  try {
    const [lc, la] = prefixed(LOAD_PRIO, [
      "taskset",
      "-c",
      "0",
      `${build}/load`,
      ...["--a", PORTS.a, "--b", PORTS.b, "--door-base", PORTS.doorBase].map(String),
      ...["--phone-base", PORTS.phoneBase, "--calls", calls, "--pid", child.pid].map(String),
      ...["--warmup", warmup, "--duration", duration].map(String),
      ...(r.doorIpBase ? ["--door-ip-base", r.doorIpBase] : []),
    ]);
    const o = await new Deno.Command(lc, { args: la, stdout: "piped" }).output();
    const line = new TextDecoder().decode(o.stdout).trim();
    return { relay: r.name, ...JSON.parse(line) };
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    running = undefined;
  }
}

// Leave nothing running: an interrupted bench kills the relay under test (the load
// generator ends by itself after warmup + duration).
let running: Deno.ChildProcess | undefined;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => {
    try {
      running?.kill("SIGKILL");
    } catch { /* gone */ }
    Deno.exit(130);
  });
}

const results: Result[] = [];
const t0 = Date.now();
const fmt = (x: number, d = 0) => (x < 0 ? "-" : x.toFixed(d));
function row(x: Result, base: Map<string, Result>) {
  const node = base.get(`node/${x.calls}`);
  const c = base.get(`c/${x.calls}`);
  const ratio = (v: number, b?: number) => (b && b > 0 && v > 0 ? (v / b).toFixed(2) : "-");
  return [
    x.relay.padEnd(16),
    String(x.calls).padStart(5),
    fmt(x.pps).padStart(6),
    fmt(x.loss_pct, 3).padStart(7),
    fmt(x.p50_us).padStart(7),
    fmt(x.p99_us).padStart(7),
    fmt(x.max_us).padStart(7),
    fmt(x.cpu_pct).padStart(5),
    fmt(x.other_pct).padStart(5),
    fmt(x.cpu_us_per_pkt, 1).padStart(6),
    ratio(x.cpu_us_per_pkt, node?.cpu_us_per_pkt).padStart(6),
    ratio(x.cpu_us_per_pkt, c?.cpu_us_per_pkt).padStart(6),
    ratio(x.p99_us, node?.p99_us).padStart(6),
    String(x.reordered).padStart(5),
    String(x.tries ?? 1).padStart(3),
  ].join(" ");
}
const header = [
  "relay".padEnd(16),
  "calls".padStart(5),
  "pkt/s".padStart(6),
  "loss%".padStart(7),
  "p50us".padStart(7),
  "p99us".padStart(7),
  "maxus".padStart(7),
  "cpu%".padStart(5),
  "oth%".padStart(5),
  "us/pkt".padStart(6),
  "xNode".padStart(6),
  "xC".padStart(6),
  "p99xN".padStart(6),
  "reord".padStart(5),
  "try".padStart(3),
].join(" ");

console.log(
  `# relay on core 1, load on core 0, prio ${prio}; warmup ${warmup}s, measure ${duration}s per point`,
);
console.log(
  "# cpu% = relay CPU use; oth% = CPU used on the relay's core by other processes (noise);\n" +
    "# us/pkt = relay CPU time per relayed packet; xNode/xC = us/pkt ratio; p99xN = p99 ratio;\n" +
    "# reord = packets arriving after a later one of the same stream;\n" +
    `# try = runs made (a point missing 0 loss / p99<=2ms is re-run, best of up to ${tries} kept)`,
);
console.log(header);
const base = new Map<string, Result>();
for (const calls of rates) {
  for (const r of relays) {
    const x = await measure(r, calls);
    results.push(x);
    base.set(`${r.name}/${calls}`, x);
    console.log(row(x, base));
  }
}

// ---- loss-free rate: ladder upward from the last table rate, one bisection step
const lossFree = new Map<string, number>();
const capped = new Set<string>(); // never lost packets up to the top of the ladder
const lossy = new Map<string, Result>(); // lowest lossy rate seen, per relay
if (!flag("--no-search")) {
  console.log(
    `\n# loss-free rate search: ladder ${LADDER.join(",")} calls then one bisection step; ` +
      `a step passes if one of ${searchTries} runs loses nothing`,
  );
  for (const r of relays) {
    let good = 0;
    let bad = 0;
    for (const c of rates) {
      const x = base.get(`${r.name}/${c}`)!;
      if (x.loss_pct === 0) good = Math.max(good, c);
      else if (!bad) bad = c;
    }
    if (!bad) {
      for (const c of LADDER.filter((c) => c > good)) {
        const x = await measure(r, c, searchTries, false);
        results.push(x);
        console.log(row(x, base));
        if (x.loss_pct === 0) good = c;
        else {
          bad = c;
          break;
        }
      }
    }
    if (bad && bad - good > 10) {
      const mid = Math.round((good + bad) / 2);
      const x = await measure(r, mid, searchTries, false);
      results.push(x);
      console.log(row(x, base));
      if (x.loss_pct === 0) good = mid;
      else bad = mid;
    }
    lossFree.set(r.name, good);
    if (!bad) capped.add(r.name);
    else {
      lossy.set(
        r.name,
        results.filter((x) => x.relay === r.name && x.loss_pct > 0)
          .sort((a, b) => a.calls - b.calls)[0]!,
      );
    }
  }
  console.log("\n# loss-free rate (highest tested rate with 0 lost packets; + = top of ladder)");
  const nodeLf = lossFree.get("node") ?? 0;
  const cLf = lossFree.get("c") ?? 0;
  for (const [n, c] of lossFree) {
    console.log(
      `${n.padEnd(16)} ${(String(c) + (capped.has(n) ? "+" : "")).padStart(4)} calls ` +
        `${String(c * 450).padStart(7)} pkt/s` +
        `  xNode ${nodeLf ? (c / nodeLf).toFixed(2) : "-"}  xC ${cLf ? (c / cLf).toFixed(2) : "-"}`,
    );
  }
}

// ---- the product against Node and C, and against the target
const TARGET_CALLS = 50;
const verdict: string[] = [];
for (const PRODUCT of ["deno-product", "deno-product-stgc", "deno-product-native"]) {
  if (!relays.some((r) => r.name === PRODUCT)) continue;
  console.log(`\n# ${PRODUCT} (the gateway's DoorTransport + MediaRelay) against node and c`);
  const r = (a: number, b?: number) => (b && b > 0 && a > 0 ? (a / b).toFixed(2) : "-");
  for (const calls of new Set(rates)) {
    const p = base.get(`${PRODUCT}/${calls}`);
    const n = base.get(`node/${calls}`);
    const c = base.get(`c/${calls}`);
    if (!p) continue;
    console.log(
      `${String(calls).padStart(4)} calls: loss ${fmt(p.loss_pct, 3)}%  p99 ${fmt(p.p99_us)} us` +
        `  ${fmt(p.cpu_us_per_pkt, 1)} us/pkt = ${r(p.cpu_us_per_pkt, n?.cpu_us_per_pkt)}x node,` +
        ` ${r(p.cpu_us_per_pkt, c?.cpu_us_per_pkt)}x c;` +
        ` p99 ${r(p.p99_us, n?.p99_us)}x node, ${r(p.p99_us, c?.p99_us)}x c`,
    );
  }
  const at = base.get(`${PRODUCT}/${TARGET_CALLS}`);
  const nodeAt = base.get(`node/${TARGET_CALLS}`);
  if (at) {
    verdict.push(
      `${PRODUCT}: zero loss at ${TARGET_CALLS} calls: ${
        at.loss_pct === 0 ? "yes" : `NO (${at.loss_pct}%)`
      }`,
      `${PRODUCT}: p99 <= 2 ms and <= 1.5x node's at ${TARGET_CALLS} calls: ${
        at.p99_us <= 2000 && nodeAt && at.p99_us <= 1.5 * nodeAt.p99_us ? "yes" : "NO"
      } (${fmt(at.p99_us)} us, ${r(at.p99_us, nodeAt?.p99_us)}x node)`,
      `${PRODUCT}: CPU/pkt <= 1.1x node's at ${TARGET_CALLS} calls: ${
        nodeAt && at.cpu_us_per_pkt <= 1.1 * nodeAt.cpu_us_per_pkt ? "yes" : "NO"
      } (${r(at.cpu_us_per_pkt, nodeAt?.cpu_us_per_pkt)}x)`,
    );
  }
  const lf = lossFree.get(PRODUCT);
  const nodeLf = lossFree.get("node");
  if (lf !== undefined && nodeLf !== undefined) {
    verdict.push(
      `${PRODUCT}: loss-free rate >= node's: ${
        lf >= nodeLf ? "yes" : "NO"
      } (${lf} vs ${nodeLf} calls)`,
    );
  }
}
for (const v of verdict) console.log(`# target: ${v}`);

console.log(`\n# total ${((Date.now() - t0) / 1000).toFixed(0)} s`);

// ---- markdown (docs/performance.md)
const mdOut = opt("--md", "");
if (mdOut) {
  const n0 = (x: number) => (x < 0 ? "–" : Math.round(x).toLocaleString("en-US"));
  const head = "| relay | calls | pkt/s | loss % | p50 µs | p99 µs | max µs | CPU % | oth % | " +
    "µs CPU/pkt | ×Node | ×C | p99 ×Node | p99 ×C | try |";
  const lines = [head, "| --- | ---: " + "| ---: ".repeat(13) + "|"];
  for (
    const x of results.filter((x) =>
      rates.includes(x.calls) && base.get(`${x.relay}/${x.calls}`) === x
    )
  ) {
    const nd = base.get(`node/${x.calls}`);
    const c = base.get(`c/${x.calls}`);
    const r = (a: number, b?: number) => (b && b > 0 && a > 0 ? (a / b).toFixed(2) : "–");
    lines.push(
      `| ${x.relay} | ${x.calls} | ${n0(x.pps)} | ${
        x.loss_pct === 0 ? "0" : x.loss_pct.toFixed(3)
      } | ` +
        `${n0(x.p50_us)} | ${n0(x.p99_us)} | ${n0(x.max_us)} | ${n0(x.cpu_pct)} | ${
          n0(x.other_pct)
        } | ` +
        `${x.cpu_us_per_pkt.toFixed(1)} | ${r(x.cpu_us_per_pkt, nd?.cpu_us_per_pkt)} | ` +
        `${r(x.cpu_us_per_pkt, c?.cpu_us_per_pkt)} | ${r(x.p99_us, nd?.p99_us)} | ` +
        `${r(x.p99_us, c?.p99_us)} | ${x.tries ?? 1} |`,
    );
  }
  if (lossFree.size) {
    const nodeLf = lossFree.get("node") ?? 0;
    const cLf = lossFree.get("c") ?? 0;
    lines.push(
      "",
      "| relay | loss-free rate | ×Node | ×C | first lossy step |",
      "| --- | --- | ---: | ---: | --- |",
    );
    for (const [name, c] of lossFree) {
      const b = lossy.get(name);
      lines.push(
        `| ${name} | ${c}${capped.has(name) ? "+" : ""} calls, ${n0(c * 450)} pkt/s | ` +
          `${nodeLf ? (c / nodeLf).toFixed(2) : "–"} | ${cLf ? (c / cLf).toFixed(2) : "–"} | ` +
          `${b ? `${b.calls} calls: ${b.loss_pct.toFixed(3)}%, p99 ${n0(b.p99_us)} µs` : "–"} |`,
      );
    }
  }
  if (verdict.length) lines.push("", ...verdict.map((v) => `- ${v}`));
  await Deno.writeTextFile(mdOut, lines.join("\n") + "\n");
}
const jsonOut = opt("--json", "");
if (jsonOut) {
  await Deno.writeTextFile(jsonOut, JSON.stringify({ results, lossFree: [...lossFree] }, null, 1));
}
