// deno-lint-ignore-file no-console
/**
 * op_garbage.ts - what Deno's own UDP ops leave to the garbage collector, without any relay
 * code: N rounds of `send` + `receive(buf)` on loopback (one reused buffer, one destination
 * object), in a child Deno with `--v8-flags=--trace-gc-nvp`; prints the bytes allocated and
 * promoted to the old generation (lived through two scavenges) per round, and the major GCs.
 *
 *   [EXTRA_V8_FLAGS=,--flag] deno run -A bench/media/op_garbage.ts [N]
 *
 * Measured (Deno 2.9.6): ~1,330 B allocated per send + receive, and the heap left after each
 * scavenge grows by tens of bytes per round, so that a relay forwarding 22,500 datagrams/s runs
 * a major GC every few seconds whatever its own code does (docs/performance.md, issue 16).
 *
 * @module
 */
const N = Number(Deno.args[0] ?? 200000);
if (!Deno.args.includes("--child")) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-net",
      `--v8-flags=--trace-gc-nvp${Deno.env.get("EXTRA_V8_FLAGS") ?? ""}`,
      new URL(import.meta.url).pathname,
      String(N),
      "--child",
    ],
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const run = text.slice(text.indexOf("START"), text.indexOf("END"));
  let allocated = 0, promoted = 0, majors = 0, grown = 0;
  let lastEnd: number | undefined;
  const reasons = new Set<string>();
  for (const l of run.split("\n")) {
    const j = l.indexOf("GC: {");
    if (j < 0) continue;
    let g: {
      gc: string;
      allocated: number;
      promoted?: number;
      end_object_size: number;
      reason?: string;
    };
    try {
      g = JSON.parse(l.slice(j + 4));
    } catch {
      continue; // a line cut by the runtime's own output
    }
    allocated += g.allocated;
    promoted += g.promoted ?? 0;
    if (g.gc === "s") {
      // the heap after a scavenge, minus the one after the previous scavenge: old-space growth
      if (lastEnd !== undefined) grown += Math.max(0, g.end_object_size - lastEnd);
      lastEnd = g.end_object_size;
    } else {
      majors++;
      lastEnd = undefined;
      if (g.reason) reasons.add(g.reason);
    }
  }
  console.log(
    `${N} send + receive rounds: ${(allocated / N).toFixed(0)} B allocated and ` +
      `${(promoted / N).toFixed(0)} B promoted per round (V8's count), heap after scavenges ` +
      `growing ${(grown / N).toFixed(0)} B per round; ${majors} major GCs (${
        [...reasons].join(", ")
      })`,
  );
  Deno.exit(0);
}
const a = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
const b = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
const to = b.addr as Deno.NetAddr;
const pkt = new Uint8Array(141);
const buf = new Uint8Array(2048);
console.log("START");
for (let i = 0; i < N; i++) {
  a.send(pkt, to);
  await b.receive(buf);
}
console.log("END");
a.close();
b.close();
