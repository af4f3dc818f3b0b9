/**
 * A full data volume, end to end: the gateway runs as a process in its own mount namespace
 * (`unshare -m`, inside the suite's private network namespace) with `--data` on a 2 MiB tmpfs, so
 * the disk that fills is that tmpfs and nothing else. The test reaches it with `nsenter` into
 * that mount namespace (the CLI binds the phone, adds a console account and reads the records
 * there). Calls must go on, `/healthz` must say the store is full, the console's overview must
 * show the tmpfs's free and total space (low when full), the records must wait in memory and be
 * written once there is room again.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, sleep } from "./helpers/sims.ts";
import { denoCommand, RUN_FLAGS } from "./helpers/process.ts";
import { PhoneSim } from "../src/sim/phone_sim.ts";
import { api, login } from "./helpers/admin_console.ts";

const opts = { ignore: !inNetns };
const T = (ms: number) => ms * TIME_SCALE;
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const HTTP_PORT = 18097;
const BASE = `http://127.0.0.1:${HTTP_PORT}`;

function figure(what: string, values: Record<string, unknown>): void {
  if (!Deno.env.get("INTERCOM_TEST_FIGURES")) return;
  // deno-lint-ignore no-console
  console.error(`FIGURE ${what} ${JSON.stringify(values)}`);
}

async function healthz(): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${BASE}/healthz`);
  return { status: res.status, body: await res.json() };
}

async function metric(line: string): Promise<number> {
  const text = await (await fetch(`${BASE}/metrics`)).text();
  const m = text.split("\n").find((l) => l.startsWith(line + " "));
  return m ? Number(m.slice(line.length + 1)) : 0;
}

/** Runs `args` in the mount namespace of process `pid`; resolves to its stdout. */
async function inMountNs(pid: number, args: string[]): Promise<string> {
  const out = await new Deno.Command("nsenter", {
    args: [`--mount=/proc/${pid}/ns/mnt`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  if (!out.success) throw new Error(`Cannot run ${args.join(" ")}: ${d.decode(out.stderr)}`);
  return d.decode(out.stdout);
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return true;
    await sleep(100);
  }
  return false;
}

Deno.test(
  "full disk: calls go on, /healthz says the store is full, records wait and land once there is room",
  opts,
  async () => {
    await sleep(T(700)); // a previous test's door lingers on 127.0.0.2:8302
    const mnt = await Deno.makeTempDir({ prefix: "gw-tmpfs-" });
    const [cmd, ...pre] = denoCommand();
    const child = new Deno.Command("unshare", {
      args: [
        "-m",
        "sh",
        "-c",
        'mount -t tmpfs -o size=2m tmpfs "$1" && shift && exec "$@"',
        "sh",
        mnt,
        cmd!,
        ...pre,
        "run",
        ...RUN_FLAGS,
        MAIN,
        "serve",
        "--http-host",
        "127.0.0.1",
        "--http-port",
        String(HTTP_PORT),
        "--media-port",
        "18337",
        "--data",
        `${mnt}/data`,
        "--log-format",
        "text",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let log = "";
    const decoder = new TextDecoder();
    const reading = (async () => {
      for await (const chunk of child.stderr) log += decoder.decode(chunk, { stream: true });
    })();
    const data = `${mnt}/data`;
    const cli = (...args: string[]) =>
      inMountNs(child.pid, [cmd!, ...pre, "run", ...RUN_FLAGS, MAIN, ...args, "--data", data]);
    let phone: PhoneSim | undefined;
    let door: Awaited<ReturnType<typeof openDoor>> | undefined;
    try {
      assert(await waitFor(async () => (await healthz()).status === 200, T(30_000)), log);
      const bound = await cli("bind", "add", "--uid", "p1", "--room", "Y00010108090");
      const { token } = JSON.parse(bound) as { token: string };
      phone = new PhoneSim({
        url: `ws://127.0.0.1:${HTTP_PORT}/phone`,
        uid: "p1",
        token,
        roomAddress: "Y00010108090",
        community: "花苑",
        heartbeatMs: 1000,
        script: { answer: "callok", enableVideo: "none" },
      });
      await phone.start();
      await phone.waitFor("login ok", T(5000));
      // The console's overview shows the data volume: the 2 MiB tmpfs, not the host's disk.
      const { password } = JSON.parse(await cli("admin", "add", "--name", "m")) as {
        password: string;
      };
      const cookie = await login(BASE, "m", password);
      const changed = await api(BASE, cookie, "POST", "/api/v1/session/password", {
        current: password,
        password: "a long new password",
      });
      assertEquals(changed.status, 200, JSON.stringify(changed.body));
      const disk = async () =>
        (await api(BASE, cookie, "GET", "/api/v1/overview")).body.disk as {
          ok: boolean;
          freeBytes: number;
          totalBytes: number;
          low: boolean;
        };
      const before = await disk();
      assertEquals([before.ok, before.totalBytes], [true, 2 * 1024 * 1024], JSON.stringify(before));
      assert(before.freeBytes > 1024 * 1024, JSON.stringify(before));

      // The data volume fills up (dd stops at "No space left on device").
      await inMountNs(child.pid, [
        "sh",
        "-c",
        'dd if=/dev/zero of="$1" bs=4k 2>/dev/null; true',
        "sh",
        `${mnt}/fill`,
      ]);
      const filled = Number(
        (await inMountNs(child.pid, ["stat", "-c", "%s", `${mnt}/fill`])).trim(),
      );
      door = await openDoor({ hangupAfterS: 1 });
      const summary = await door.start();
      // The call went on as usual.
      assertEquals([summary.answered, summary.callendReplied], [true, true]);
      assert(
        await waitFor(async () => (await healthz()).status === 503, T(3000)),
        "healthz stays 200",
      );
      const full = await healthz();
      const fullDisk = await disk();
      assert(
        fullDisk.ok && fullDisk.freeBytes < 64 * 1024 && fullDisk.low,
        JSON.stringify(fullDisk),
      );
      const failures = await metric('store_write_failures_total{reason="full"}');
      figure("full disk", {
        filledBytes: filled,
        healthz: full.status,
        store: full.body.store,
        storeError: full.body.storeError,
        waiting: full.body.storeWritesWaiting,
        failures,
        disk: fullDisk,
      });
      assertEquals([full.body.ok, full.body.store], [false, "full"]);
      assert(String(full.body.storeError).includes("disk is full"), JSON.stringify(full.body));
      assert(Number(full.body.storeWritesWaiting) >= 1, JSON.stringify(full.body));
      assert(failures >= 1, `store_write_failures_total{reason="full"} ${failures}`);
      // One error line for the records however many writes failed (rate limited).
      assertEquals(
        log.split("\n").filter((l) => l.includes("Cannot write call records")).length,
        1,
      );

      // Room again: the waiting records are written within a retry period.
      await inMountNs(child.pid, ["rm", `${mnt}/fill`]);
      const t0 = Date.now();
      assert(
        await waitFor(async () => (await healthz()).status === 200, T(15_000)),
        "healthz never came back",
      );
      const records = (await cli("calls")).trim().split("\n").map((l) =>
        JSON.parse(l) as { door: string; answeredBy?: string; endReason?: string }
      );
      figure("full disk recovered", {
        afterMs: Date.now() - t0,
        records: records.map((r) => [r.door, r.endReason]),
      });
      assertEquals(records.map((r) => [r.door, r.answeredBy, r.endReason]), [
        ["M00010100", undefined, "door_hung_up"],
      ]);
    } finally {
      await door?.close();
      await phone?.close();
      child.kill("SIGTERM");
      await child.status;
      await reading;
      await Deno.remove(mnt, { recursive: true }).catch(() => {});
    }
  },
);
