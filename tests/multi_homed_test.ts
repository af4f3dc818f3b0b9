/**
 * A multi-homed gateway box, started with no network flag: the default route on an uplink
 * (`up0`, 10.9.0.2) and the doors on a second interface (`door0`, 192.168.77.1), each in network
 * namespaces of the test's own (the suite's namespace keeps its loopback only):
 *
 * ```
 *  namespace "box": gateway, sim phone        namespace "door LAN": sim door 192.168.77.2
 *    up0 10.9.0.2 ── default route              │
 *    door0 192.168.77.1 ═══════ veth ══════════ door1 192.168.77.2
 * ```
 *
 * The door's NS multicast arrives on door0; the gateway must have joined the group there (the
 * kernel's choice would be up0, the default route's), answer with its door-LAN address, and the
 * call must complete. Then `sim door --multicast-interface door0` on the box itself does the same
 * beside the gateway. Inside the test namespace only (root there makes namespaces and veths).
 *
 * The phone taps talk again after `door_timeout`, as a resident would: under emulation on a
 * loaded machine the simulated door can answer CALLSTART after the gateway's 6 × 100 ms.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { denoCommand, RUN_FLAGS } from "./helpers/process.ts";
import { inNetns } from "./helpers/netns.ts";
import { runBounded } from "./helpers/run_bounded.ts";
import { TIME_SCALE } from "./helpers/scale.ts";

/** A real-time bound, stretched under emulation. */
const T = (ms: number) => ms * TIME_SCALE;

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROOM = "Y00010108090";

/** A network namespace held open by a `sleep`, entered with `nsenter`. */
class Netns {
  private constructor(readonly child: Deno.ChildProcess, readonly pid: number) {}

  /** A fresh namespace with its loopback up. */
  static async open(): Promise<Netns> {
    const child = new Deno.Command("unshare", {
      args: ["-n", "sh", "-c", "ip link set lo up && echo ready && exec sleep 300"],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    const first = await reader.read();
    reader.releaseLock();
    await child.stdout.cancel();
    if (!new TextDecoder().decode(first.value).includes("ready")) {
      child.kill("SIGKILL");
      await child.status;
      throw new Error("Cannot make a network namespace (unshare -n)");
    }
    return new Netns(child, child.pid);
  }

  /** `argv` run inside this namespace. */
  argv(argv: readonly string[]): string[] {
    return [`--net=/proc/${this.pid}/ns/net`, ...argv];
  }

  /** Runs shell commands inside; throws with their stderr when they fail. */
  async sh(script: string): Promise<void> {
    const r = await runBounded("nsenter", this.argv(["sh", "-c", script]), 10_000);
    if (r.code !== 0) throw new Error(`Cannot set up the namespace (${script}): ${r.err}`);
  }

  async close(): Promise<void> {
    this.child.kill("SIGKILL");
    await this.child.status;
  }
}

/** `deno run <product permissions> main.ts ARGS…`, as a command line. */
function product(args: readonly string[]): string[] {
  return [...denoCommand(), "run", ...RUN_FLAGS, MAIN, ...args];
}

/** A long-running process inside a namespace whose output is collected. */
interface Running {
  readonly child: Deno.ChildProcess;
  out(): string;
  err(): string;
  /** Resolves once `pattern` appears on stdout or stderr; rejects after `ms`. */
  waitFor(pattern: RegExp, ms: number): Promise<string>;
}

function start(ns: Netns, argv: readonly string[]): Running {
  const child = new Deno.Command("nsenter", {
    args: ns.argv(argv),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const text = { out: "", err: "" };
  const collect = async (stream: ReadableStream<Uint8Array>, key: "out" | "err") => {
    const d = new TextDecoder();
    for await (const chunk of stream) text[key] += d.decode(chunk, { stream: true });
  };
  void collect(child.stdout, "out");
  void collect(child.stderr, "err");
  return {
    child,
    out: () => text.out,
    err: () => text.err,
    waitFor: async (pattern, ms) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const m = pattern.exec(text.out) ?? pattern.exec(text.err);
        if (m) return m[0];
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`Cannot see ${pattern} within ${ms} ms:\n${text.out}\n${text.err}`);
    },
  };
}

async function stop(p: Running | undefined): Promise<void> {
  if (!p) return;
  try {
    p.child.kill("SIGTERM");
  } catch {
    // already exited
  }
  await p.child.status;
}

Deno.test({
  name: "multi-homed box, no flag: a door on the second interface is heard and answered from it",
  ignore: !inNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const box = await Netns.open();
    const doorLan = await Netns.open();
    const data = await Deno.makeTempDir({ prefix: "gw-multihomed-" });
    let gateway: Running | undefined;
    let phone: Running | undefined;
    try {
      await box.sh([
        "ip link add up0 type veth peer name up1",
        `ip link add door0 type veth peer name door1 netns ${doorLan.pid}`,
        "ip addr add 10.9.0.2/24 dev up0 && ip link set up0 up && ip link set up1 up",
        "ip route add default via 10.9.0.1 dev up0",
        "ip addr add 192.168.77.1/24 dev door0 && ip link set door0 up",
      ].join(" && "));
      await doorLan.sh("ip addr add 192.168.77.2/24 dev door1 && ip link set door1 up");

      const [deno, ...pre] = product(["bind", "add", "--uid", "u-mh", "--room", ROOM]);
      const bound = await runBounded(
        deno!,
        [...pre, "--community", "花苑", "--data", data],
        T(20_000),
      );
      assertEquals(bound.code, 0, bound.err);
      const token = JSON.parse(bound.out).token as string;

      gateway = start(box, product(["serve", "--data", data]));
      const line = await gateway.waitFor(/\{[^\n]*"gateway started"[^\n]*\}/, T(20_000));
      const started = JSON.parse(line) as Record<string, unknown>;
      assertEquals(started.interfaces, "up0 10.9.0.2, door0 192.168.77.1", line);
      assertEquals([started.doorPort, started.mediaPort, started.http], [
        8302,
        8303,
        "http://0.0.0.0:8080",
      ]);

      phone = start(
        box,
        product([
          "sim",
          "phone",
          ...["--uid", "u-mh", "--token", token, "--room", ROOM, "--community", "花苑"],
          ...[
            "--talk-after",
            "0.3",
            "--talk-retries",
            "3",
            "--hangup-after",
            "0.5",
            "--calls",
            "2",
            "--timeout",
            String(60 * TIME_SCALE),
          ],
        ]),
      );
      await phone.waitFor(/← login ok/, T(20_000));

      await t.step(
        "a door on the door LAN resolves the gateway's door-LAN address and calls",
        async () => {
          const [cmd, ...args] = [
            "nsenter",
            ...doorLan.argv(product(["sim", "door", "--ip", "192.168.77.2", "--room", "0809"])),
          ];
          const door = await runBounded(cmd!, args, T(30_000));
          assertEquals(door.code, 0, `${door.out}\n${door.err}\n${gateway!.err()}`);
          assert(door.out.includes("NS     → 192.168.77.1 answered\n"), door.out);
          assert(door.out.includes("SUM    call completed"), door.out);
        },
      );

      await t.step(
        "sim door --multicast-interface door0 on the gateway's box calls beside it",
        async () => {
          const [cmd, ...args] = [
            "nsenter",
            ...box.argv(
              product([
                "sim",
                "door",
                "--multicast-interface",
                "door0",
                "--address",
                "M00010110",
                "--room",
                "0809",
              ]),
            ),
          ];
          const door = await runBounded(cmd!, args, T(30_000));
          assertEquals(door.code, 0, `${door.out}\n${door.err}\n${gateway!.err()}`);
          assert(door.err.includes("Port 8302 is held on 192.168.77.1"), door.err);
          assert(
            /DOOR {3}M00010110 at 192\.168\.77\.1:\d+ calling S00010108090 \(NS out of door0 192\.168\.77\.1\)/
              .test(door.out),
            door.out,
          );
          assert(door.out.includes("NS     → 192.168.77.1 answered\n"), door.out);
          assert(door.out.includes("SUM    call completed"), door.out);
        },
      );

      let timer: ReturnType<typeof setTimeout> | undefined;
      const phoneDone = await Promise.race([
        phone.child.status,
        new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), T(20_000))),
      ]);
      clearTimeout(timer);
      assertEquals(phoneDone?.code, 0, phone.out() + phone.err());
    } finally {
      await stop(phone);
      await stop(gateway);
      await box.close();
      await doorLan.close();
      await Deno.remove(data, { recursive: true });
    }
  },
});
