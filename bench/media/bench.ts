// deno-lint-ignore-file no-console
/**
 * bench.ts - runs the same paced load against each relay and prints one table.
 *
 *   deno run -A bench/media/bench.ts [--all] [--no-search] [--calls 10,25,50]
 *        [--duration S] [--only name,name] [--json FILE]
 *
 * For each rate, every relay is started fresh, pinned to core 1 (`taskset -c 1`),
 * the C load generator (pinned to core 0) sends WARMUP+DURATION seconds of
 * traffic and reports loss, added latency and the relay's CPU time.  Rates are
 * interleaved (all relays at 10 calls, then all at 25, ...) so machine noise hits
 * every relay alike.  Then a loss-free-rate ladder runs for each relay.
 * Compare relays only within one run.
 *
 * @module
 */

const here = new URL(".", import.meta.url).pathname;
const build = `${here}.build`;
const PORTS = { a: 47100, b: 47101, doorBase: 47200, phoneBase: 48200 };

interface Relay {
  name: string;
  cmd: string[];
  core?: boolean; // in the default set
}

const deno = Deno.execPath();
const denoRelay = (mode: string, k?: number, extra: string[] = []): string[] => [
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
];

const RELAYS: Relay[] = [
  { name: "c", cmd: [`${build}/relay`], core: true },
  { name: "node", cmd: ["node", `${here}relay_node.mjs`], core: true },
  { name: "deno-naive", cmd: denoRelay("naive"), core: true },
  { name: "deno-fire", cmd: denoRelay("fire"), core: true },
  { name: "deno-bufloop", cmd: denoRelay("bufloop") },
  { name: "deno-pumps8", cmd: denoRelay("pumps") },
  { name: "deno-fire1", cmd: denoRelay("fire") },
  { name: "deno-fire32", cmd: denoRelay("fire") },
  { name: "deno-workers", cmd: denoRelay("workers") },
  { name: "deno-node:dgram", cmd: [deno, "run", "--quiet", "--allow-net", `${here}relay_node.mjs`] },
  { name: "deno-ffi-libc", cmd: denoRelay("ffi"), core: true },
];
// K (receives outstanding per socket) is passed after the common args
const K: Record<string, number> = { "deno-fire1": 1, "deno-fire32": 32, "deno-pumps8": 8 };

// ---- args
const args = Deno.args;
const flag = (n: string) => args.includes(n);
const opt = (n: string, d: string) => {
  const i = args.indexOf(n);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : d;
};
const rates = opt("--calls", "10,25,50").split(",").map(Number);
const duration = Number(opt("--duration", "3"));
const warmup = Number(opt("--warmup", "1"));
const only = opt("--only", "");
let relays = flag("--all") ? RELAYS : RELAYS.filter((r) => r.core);
if (only) relays = RELAYS.filter((r) => only.split(",").includes(r.name));
// Scheduling: the machine is shared, so by default both the relay and the load
// generator get a higher CFS priority (nice -10). "rt" = SCHED_FIFO 10, "none" = as is.
const prio = opt("--prio", "nice");
const PRIO: string[] = prio === "rt" ? ["chrt", "-f", "10"] : prio === "nice" ? ["nice", "-n", "-10"] : [];
const LADDER = [75, 100, 150, 200, 300, 450];

// ---- build C
async function sh(cmd: string[]): Promise<void> {
  const o = await new Deno.Command(cmd[0]!, { args: cmd.slice(1) }).output();
  if (!o.success) throw new Error(`${cmd.join(" ")}: ${new TextDecoder().decode(o.stderr)}`);
}
await Deno.mkdir(build, { recursive: true });
await sh(["cc", "-O2", "-o", `${build}/relay`, `${here}relay.c`]);
await sh(["cc", "-O2", "-o", `${build}/load`, `${here}load.c`, "-lpthread"]);

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
  cpu_us_per_pkt: number;
  gen_late_max_us: number;
  reordered: number;
}

async function measure(r: Relay, calls: number): Promise<Result> {
  const argv = [
    ...r.cmd,
    ...[PORTS.a, PORTS.b, PORTS.doorBase, PORTS.phoneBase, Math.max(calls, 1)].map(String),
  ];
  if (K[r.name] !== undefined) argv.push(String(K[r.name]));
  const child = new Deno.Command(PRIO[0] ?? "taskset", {
    args: [...PRIO.slice(1), ...(PRIO.length ? ["taskset"] : []), "-c", "1", ...argv],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  // wait for READY
  const reader = child.stdout.getReader();
  let seen = "";
  const deadline = Date.now() + 10000;
  while (!seen.includes("READY")) {
    const t = new Promise<{ done: true; value: undefined }>((res) =>
      setTimeout(() => res({ done: true, value: undefined }), Math.max(1, deadline - Date.now()))
    );
    const { done, value } = await Promise.race([reader.read(), t]);
    if (done) throw new Error(`${r.name} did not start`);
    seen += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  try {
    const o = await new Deno.Command(PRIO[0] ?? "taskset", {
      args: [
        ...PRIO.slice(1),
        ...(PRIO.length ? ["taskset"] : []),
        "-c",
        "0",
        `${build}/load`,
        ...["--a", PORTS.a, "--b", PORTS.b, "--door-base", PORTS.doorBase].map(String),
        ...["--phone-base", PORTS.phoneBase, "--calls", calls, "--pid", child.pid].map(String),
        ...["--warmup", warmup, "--duration", duration].map(String),
      ],
      stdout: "piped",
    }).output();
    const line = new TextDecoder().decode(o.stdout).trim();
    return { relay: r.name, ...JSON.parse(line) };
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
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
    fmt(x.cpu_us_per_pkt, 1).padStart(6),
    ratio(x.cpu_us_per_pkt, node?.cpu_us_per_pkt).padStart(6),
    ratio(x.cpu_us_per_pkt, c?.cpu_us_per_pkt).padStart(6),
    ratio(x.p99_us, node?.p99_us).padStart(6),
    String(x.reordered).padStart(5),
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
  "us/pkt".padStart(6),
  "xNode".padStart(6),
  "xC".padStart(6),
  "p99xN".padStart(6),
  "reord".padStart(5),
].join(" ");

console.log(
  `# relay on core 1, load on core 0, prio ${prio}; warmup ${warmup}s, measure ${duration}s per point`,
);
console.log("# us/pkt = relay CPU time per relayed packet; xNode/xC = us/pkt ratio; p99xN = p99 ratio");
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
if (!flag("--no-search")) {
  console.log("\n# loss-free rate search (calls; 450 pkt/s per call)");
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
        const x = await measure(r, c);
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
      const x = await measure(r, mid);
      results.push(x);
      console.log(row(x, base));
      if (x.loss_pct === 0) good = mid;
      else bad = mid;
    }
    lossFree.set(r.name, good);
  }
  console.log("\n# loss-free rate (highest tested rate with 0 lost packets)");
  const nodeLf = lossFree.get("node") ?? 0;
  const cLf = lossFree.get("c") ?? 0;
  for (const [n, c] of lossFree) {
    console.log(
      `${n.padEnd(16)} ${String(c).padStart(4)} calls ${String(c * 450).padStart(7)} pkt/s` +
        `  xNode ${nodeLf ? (c / nodeLf).toFixed(2) : "-"}  xC ${cLf ? (c / cLf).toFixed(2) : "-"}`,
    );
  }
}

console.log(`\n# total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
const jsonOut = opt("--json", "");
if (jsonOut) await Deno.writeTextFile(jsonOut, JSON.stringify({ results, lossFree: [...lossFree] }, null, 1));
