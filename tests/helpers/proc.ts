/**
 * Figures of a process from `/proc` for leak and memory checks (soak, benches): resident memory
 * and open file descriptors.
 *
 * @module
 */

/**
 * Resident set size (VmRSS) in KiB: of another process from `/proc/PID/status` (Deno asks for
 * `--allow-all` to read `/proc`), of this one from `Deno.memoryUsage()` (the same figure).
 */
export function vmRssKiB(pid?: number): number {
  if (pid === undefined || pid === Deno.pid) return Math.round(Deno.memoryUsage().rss / 1024);
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`Cannot read VmRSS of ${pid}`);
  return Number(m[1]);
}

/**
 * Open file descriptors of this process (sockets, KV, pipes): `/proc/self/fd` with
 * `--allow-all`, else counted by `ls` (needs `--allow-run`; its pipe adds a constant 1–2).
 * NaN when neither is allowed.
 */
export async function openFds(): Promise<number> {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    return n;
  } catch {
    try {
      const out = await new Deno.Command("ls", { args: [`/proc/${Deno.pid}/fd`], stderr: "null" })
        .output();
      return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).length;
    } catch {
      return NaN;
    }
  }
}
