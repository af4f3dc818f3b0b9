// deno-lint-ignore-file no-console
/**
 * steps.ts - interleaved A/B/… runs of a few relays under one load, with the measures that
 * see below this machine's noise: the relay's own lag stamps (lag.ts), `perf stat` system
 * calls / context switches per packet (no hardware counters in this VM), and V8's GC trace (count and total
 * pause of scavenges and mark-compacts per second). Used to build the product's media path up
 * from the bare fast_udp loop (relay_steps.ts) and find where its tail appears.
 *
 *   deno run -A bench/media/steps.ts [--rounds 3] [--calls 50] [--duration 3]
 *        [--only node,s0,s1,s2,product] [--no-perf] [--fifo]
 *
 * `--fifo` runs the relay's main thread (only) under SCHED_FIFO 5: other sessions' processes
 * sit in other cgroups, where `nice` does not reach, and otherwise take half of core 1.
 *
 * Needs the binaries of `deno task bench:media` (bench/media/.build/load).
 *
 * @module
 */

import { benchArgs } from "./command_line.ts";

const here = new URL(".", import.meta.url).pathname;
const build = `${here}.build`;
const { opt, flag } = benchArgs(Deno.args);
const rounds = Number(opt("--rounds", "3"));
const calls = Number(opt("--calls", "50"));
const duration = Number(opt("--duration", "3"));
const warmup = 1;
const usePerf = !flag("--no-perf");
const fifo = flag("--fifo");
const deno = Deno.execPath();
const DOOR_IP = "127.0.1.1";
const denoRun = (file: string, ...pre: string[]) => denoRunWith("", file, ...pre);
/** `v8` extra V8 flags, e.g. ",--single-threaded-gc". */
const denoRunWith = (v8: string, file: string, ...pre: string[]) => [
  deno,
  "run",
  "--quiet",
  "--unstable-net",
  "-A",
  `--v8-flags=--trace-gc-nvp${v8}`,
  `${here}${file}`,
  ...pre,
];
const ALL: Record<string, { cmd: string[]; doorIp: boolean; env?: Record<string, string> }> = {
  node: { cmd: ["node", "--trace-gc", `${here}relay_node.mjs`], doorIp: false },
  s0: { cmd: denoRun("relay_steps.ts", "s0"), doorIp: true },
  // s0 with one door IP, routed by source port: relay_deno.ts "fire" (deno-fast_udp)
  s0port: { cmd: denoRun("relay_steps.ts", "s0port"), doorIp: false },
  s0st: {
    cmd: denoRun("relay_steps.ts", "s0").map((x) =>
      x === "--v8-flags=--trace-gc-nvp" ? "--v8-flags=--trace-gc-nvp,--single-threaded" : x
    ),
    doorIp: true,
  },
  s1: { cmd: denoRun("relay_steps.ts", "s1"), doorIp: true },
  s2: { cmd: denoRun("relay_steps.ts", "s2"), doorIp: true },
  product: { cmd: denoRun("relay_product.ts"), doorIp: true },
  // the product with V8's GC on the main thread only (no waits on helper threads)
  "product-stgc": { cmd: denoRunWith(",--single-threaded-gc", "relay_product.ts"), doorIp: true },
  // the same flag set by the program at run time (node:v8 setFlagsFromString)
  "product-stgc-rt": {
    cmd: denoRun("relay_product.ts"),
    doorIp: true,
    env: { RELAY_V8_FLAGS: "--single-threaded-gc" },
  },
  "s0-stgc": { cmd: denoRunWith(",--single-threaded-gc", "relay_steps.ts", "s0"), doorIp: true },
};
const names = opt("--only", "node,s0,s1,s2,product").split(",");
for (const n of names) if (!ALL[n]) throw new Error(`unknown relay ${n}`);

interface Row {
  name: string;
  loss: number;
  p99: number;
  p999: number;
  cpuUs: number;
  oth: number;
  lag: string;
  sys: number;
  cs: number;
  scav: number;
  scavMs: number;
  mc: number;
  mcMs: number;
  scavMed: number;
  allocPerPkt: number;
  threads: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Busy share (0..1) of both CPUs over `ms`, from /proc/stat. */
async function busy(ms: number): Promise<number> {
  const read = async () => {
    const f = (await Deno.readTextFile("/proc/stat")).split("\n")[0]!.trim().split(/\s+/)
      .slice(1).map(Number);
    return { idle: f[3]! + f[4]!, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = await read();
  await sleep(ms);
  const b = await read();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}
const waitQuietS = Number(opt("--wait-quiet", "0"));
/** With --wait-quiet S: wait up to S seconds for the machine to be < 15% busy. */
async function waitQuiet(): Promise<void> {
  const deadline = Date.now() + waitQuietS * 1000;
  while (Date.now() < deadline && (await busy(300)) > 0.15) { /* wait */ }
}

async function once(name: string): Promise<Row> {
  const r = ALL[name]!;
  if (waitQuietS > 0) await waitQuiet();
  const out = await Deno.makeTempFile({ prefix: "relay-out-" });
  const err = await Deno.makeTempFile({ prefix: "relay-err-" });
  const argv = [...r.cmd, "47100", "47101", "47200", "48200", String(calls)];
  if (r.doorIp) argv.push(DOOR_IP);
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `exec nice -n -19 taskset -c 1 ${argv.map(q).join(" ")} >${q(out)} 2>${q(err)}`,
    ],
    env: { LAG: "1", ...r.env },
  }).spawn();
  for (let i = 0; i < 200; i++) {
    if ((await Deno.readTextFile(out)).includes("READY")) break;
    await sleep(50);
  }
  if (fifo) {
    // only the main thread (tid = pid): it preempts the other sessions' processes on core 1,
    // which cgroup CPU weights make immune to nice; helper threads stay SCHED_OTHER
    await new Deno.Command("chrt", { args: ["-f", "-p", "5", String(child.pid)] }).output();
  }
  const perfOut = await Deno.makeTempFile({ prefix: "relay-perf-" });
  const perf = usePerf
    ? new Deno.Command("perf", {
      args: [
        "stat",
        "-x,",
        "-o",
        perfOut,
        "-e",
        "raw_syscalls:sys_enter,context-switches",
        "-p",
        String(child.pid),
      ],
      stdout: "null",
      stderr: "null",
    }).spawn()
    : undefined;
  const gcBefore = (await Deno.readTextFile(out)).length;
  const threadsBefore = threadTicks(child.pid);
  const load = await new Deno.Command("chrt", {
    args: [
      "-f",
      "10",
      "taskset",
      "-c",
      "0",
      `${build}/load`,
      ...["--a", "47100", "--b", "47101", "--door-base", "47200", "--phone-base", "48200"],
      ...["--calls", String(calls), "--pid", String(child.pid)],
      ...["--warmup", String(warmup), "--duration", String(duration)],
      ...(r.doorIp ? ["--door-ip-base", DOOR_IP] : []),
    ],
    stdout: "piped",
  }).output();
  if (perf) {
    try {
      perf.kill("SIGINT");
    } catch { /* perf ended */ }
    await perf.status;
  }
  const threadsAfter = threadTicks(child.pid);
  const res = JSON.parse(new TextDecoder().decode(load.stdout).trim());
  child.kill("SIGTERM");
  await Promise.race([child.status, sleep(1000)]);
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  await child.status;
  const gc = (await Deno.readTextFile(out)).slice(gcBefore);
  const lag = (await Deno.readTextFile(err)).match(/lag_us .*/)?.[0] ?? "";
  const pkts = res.pps * (warmup + duration);
  const perfText = usePerf ? await Deno.readTextFile(perfOut) : "";
  const ev = (e: string) => {
    const l = perfText.split("\n").find((x) => x.includes(e));
    return l ? Number(l.split(",")[0]) / pkts : NaN;
  };
  let scav = 0, scavMs = 0, mc = 0, mcMs = 0, allocated = 0;
  const pauses: number[] = [];
  for (const l of gc.split("\n")) {
    const j = l.indexOf("GC: {");
    if (j >= 0) {
      // --trace-gc-nvp (Deno): one JSON object per GC
      const g = JSON.parse(l.slice(j + 4)) as { gc: string; pause: number; allocated: number };
      allocated += g.allocated;
      if (g.gc === "s" || g.gc === "mmc") {
        scav++;
        pauses.push(g.pause);
        scavMs = Math.max(scavMs, g.pause);
      } else {
        mc++;
        mcMs = Math.max(mcMs, g.pause);
      }
      continue;
    }
    // --trace-gc (Node)
    const m = l.match(
      /(Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Sweep).*?([\d.]+) \/ ([\d.]+) ms/i,
    );
    if (!m) continue;
    const t = Number(m[2]);
    if (/scavenge|minor/i.test(m[1]!)) {
      scav++;
      pauses.push(t);
      scavMs = Math.max(scavMs, t);
    } else {
      mc++;
      mcMs = Math.max(mcMs, t);
    }
  }
  pauses.sort((a, b) => a - b);
  const scavMed = pauses.length ? pauses[Math.floor(pauses.length / 2)]! : 0;
  // CPU ticks per thread over the load, the main thread first: who else runs on the core
  const threads = [...threadsAfter].map(([tid, t]) => ({
    tid,
    comm: t.comm,
    ticks: t.ticks - (threadsBefore.get(tid)?.ticks ?? 0),
  })).filter((t) => t.ticks > 0).sort((
    a,
    b,
  ) => (a.tid === child.pid ? -1 : b.tid === child.pid ? 1 : b.ticks - a.ticks)).map((t) =>
    `${t.comm}:${t.ticks}`
  ).join(" ");
  for (const f of [out, err, perfOut]) await Deno.remove(f).catch(() => {});
  const secs = warmup + duration;
  return {
    name,
    loss: res.loss_pct,
    p99: res.p99_us,
    p999: res.p999_us,
    cpuUs: res.cpu_us_per_pkt,
    oth: res.other_pct,
    lag,
    sys: ev("raw_syscalls"),
    cs: ev("context-switches"),
    scav: scav / secs,
    scavMs,
    mc,
    mcMs,
    scavMed,
    allocPerPkt: allocated / pkts,
    threads,
  };
}

/** utime + stime ticks of each thread of `pid`, by thread id. */
function threadTicks(pid: number): Map<number, { comm: string; ticks: number }> {
  const m = new Map<number, { comm: string; ticks: number }>();
  try {
    for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const st = Deno.readTextFileSync(`/proc/${pid}/task/${e.name}/stat`);
        const comm = st.slice(st.indexOf("(") + 1, st.lastIndexOf(")")).replaceAll(" ", "_");
        const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
        m.set(Number(e.name), { comm, ticks: Number(f[11]) + Number(f[12]) });
      } catch { /* thread ended */ }
    }
  } catch { /* process ended */ }
  return m;
}

console.log(
  `# ${calls} calls, ${rounds} rounds interleaved, ${duration}s measured; per packet: sys calls, ` +
    `ctx switches; scavenges per s (median and max pause), heap allocated per packet`,
);
const rows: Row[] = [];
for (let k = 0; k < rounds; k++) {
  for (const n of names) {
    const x = await once(n);
    rows.push(x);
    console.log(
      [
        x.name.padEnd(8),
        `loss ${x.loss.toFixed(3)}`,
        `p99 ${x.p99}`.padEnd(10),
        `p999 ${x.p999}`.padEnd(11),
        `cpu ${x.cpuUs.toFixed(1)}us`,
        `oth ${x.oth}%`.padEnd(8),
        `sys ${x.sys.toFixed(2)} cs ${x.cs.toFixed(2)}`,
        `scav ${
          x.scav.toFixed(1)
        }/s (med ${x.scavMed} max ${x.scavMs} ms) mc ${x.mc} (${x.mcMs}ms)`,
        x.allocPerPkt ? `alloc ${x.allocPerPkt.toFixed(0)} B/pkt` : "",
        x.lag,
        x.threads,
      ].join("  "),
    );
  }
}
const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
console.log("\n# medians");
const nodeRows = rows.filter((r) => r.name === "node");
const nodeP99 = nodeRows.length ? med(nodeRows.map((r) => r.p99)) : NaN;
const nodeCpu = nodeRows.length ? med(nodeRows.map((r) => r.cpuUs)) : NaN;
for (const n of names) {
  const rs = rows.filter((r) => r.name === n);
  const p99 = med(rs.map((r) => r.p99));
  const cpu = med(rs.map((r) => r.cpuUs));
  console.log(
    `${n.padEnd(8)} p99 ${p99} us (x node ${(p99 / nodeP99).toFixed(2)})  cpu ${
      cpu.toFixed(1)
    } us/pkt (x node ${(cpu / nodeCpu).toFixed(2)})  loss-free runs ${
      rs.filter((r) => r.loss === 0).length
    }/${rs.length}  sys ${med(rs.map((r) => r.sys)).toFixed(2)}`,
  );
}
