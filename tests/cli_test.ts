/**
 * The command line as a person (or systemd) meets it: `--version`, `--help`, bad flags, start
 * failures, the documented tasks with paths anywhere, and the release tasks in deno.json (checked
 * on paper: `deno compile` needs a runtime download that this workplace cannot make).
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { denoCommand, PERMS, RUN_FLAGS } from "./helpers/process.ts";
import { inNetns } from "./helpers/netns.ts";
import { TIME_SCALE } from "./helpers/scale.ts";
import { runDeno, startDeno } from "./helpers/serve_process.ts";
import denoJson from "../deno.json" with { type: "json" };

const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const [cmd, ...pre] = denoCommand();
  const r = await new Deno.Command(cmd!, {
    args: [...pre, "run", ...RUN_FLAGS, MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

Deno.test("--version prints the version of deno.json", async () => {
  const r = await cli("--version");
  assertEquals([r.code, r.out.trim()], [0, denoJson.version]);
});

Deno.test("--help lists the subcommands; serve --help lists every flag with its variable", async () => {
  const top = await cli("--help");
  assert(top.code === 0 && /sim door/.test(top.out) && /bind add/.test(top.out), top.out);
  const serve = await cli("serve", "--help");
  for (
    const flag of [
      "--lan-ip",
      "--door-port",
      "--multicast-group",
      "--multicast-interface",
      "--magic",
      "--data",
      "--log-level",
      "--log-format",
    ]
  ) {
    assert(serve.out.includes(flag), `${flag} missing from serve --help`);
  }
  assert(serve.out.includes("INTERCOM_DOOR_PORT"));
});

Deno.test("a bad flag value exits 2 with one line naming the flag", async () => {
  const cases = [
    [["serve", "--door-port", "99999"], "--door-port"],
    [["--log-format", "xml"], "--log-format"],
    [["serve", "--lan-ip", "10.0.0"], "--lan-ip"],
    [["serve", "--bogus"], "bogus"],
    [["serve", "--multicast-group", "10.0.0.1"], "--multicast-group"],
    [["serve", "--ring-timeout", "-1"], "--ring-timeout"],
    [["serve", "--talk-timeout", "0"], "--talk-timeout"],
    [["serve", "--door-relearn-after", "-60"], "--door-relearn-after"],
    [["serve", "--data", "--door-port", "8302"], "--data"],
    [["serve", "--door-allowlist", "192.168.1.21,192.168.1.22"], '"192.168.1.21"'],
    [["serve", "--door-allowlist", "door-1"], '"door-1"'],
    [["serve", "--multicast-interface", "nosuchif0"], "--multicast-interface"],
  ] as const;
  // Under emulation every process costs seconds: a third of the cases there (each kind of check
  // is covered natively, and src/config_test.ts checks the validation in-process on both).
  const run = TIME_SCALE > 1 ? cases.filter((_, i) => i % 3 === 0) : cases;
  const results = await Promise.all(run.map(([args]) => cli(...args)));
  for (const [i, [args, flag]] of run.entries()) {
    const r = results[i]!;
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.err}`);
    const lines = r.err.trim().split("\n");
    assertEquals(lines.length, 1, r.err);
    assert(lines[0]!.includes(flag), r.err);
  }
});

/**
 * The command line of a deno.json task (`deno task NAME ARGS…` runs it with ARGS appended), for
 * the Deno that runs the tests (`deno task` itself would spawn its own executable, which under
 * qemu-user cannot be run directly).
 */
function taskArgs(name: string, ...args: string[]): string[] {
  const [deno, ...rest] = (denoJson.tasks as Record<string, string>)[name]!.split(/\s+/);
  assertEquals(deno, "deno");
  return [...rest, ...args];
}

const netnsOnly = { ignore: !inNetns, sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "a port in use, or a LAN IP this box lacks, stops the start with one line naming the flag",
  netnsOnly,
  async () => {
    const data = await Deno.makeTempDir({ prefix: "gw-inuse-" });
    const base = [
      "run",
      ...RUN_FLAGS,
      MAIN,
      "serve",
      "--http-host",
      "127.0.0.1",
      "--log-format",
      "text",
    ];
    // One store each: a gateway locks its store, so three sharing one would fail on that.
    const store = (name: string) => ["--data", `${data}/${name}`];
    // UDP: a program that bound the door port without SO_REUSEADDR.
    const udp = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 18411 });
    const tcp = Deno.listen({ hostname: "127.0.0.1", port: 18412 });
    try {
      const [door, http, lan] = await Promise.all([
        runDeno([
          ...base,
          ...store("door"),
          "--door-port",
          "18411",
          "--media-port",
          "18413",
          "--http-port",
          "18414",
        ]),
        runDeno([
          ...base,
          ...store("http"),
          "--door-port",
          "18415",
          "--media-port",
          "18416",
          "--http-port",
          "18412",
        ]),
        runDeno([
          ...base,
          ...store("lan"),
          "--door-port",
          "18417",
          "--media-port",
          "18418",
          "--lan-ip",
          "10.9.9.9",
        ]),
      ]);
      for (
        const [r, line] of [
          [
            door,
            "Cannot listen on UDP 18411 (--door-port): address in use; is another gateway running?",
          ],
          [
            http,
            "Cannot listen on TCP 18412 (--http-port): address in use; is another gateway running?",
          ],
          [
            lan,
            "Cannot join multicast group 238.9.9.1 on 10.9.9.9 (--multicast-interface, else --lan-ip): no local interface has the address 10.9.9.9",
          ],
        ] as const
      ) {
        assertEquals(r.code, 1, r.err);
        const last = r.err.trim().split("\n").at(-1)!;
        assert(last.startsWith(line), r.err);
        assert(!/\bat \S+:\d+:\d+/.test(r.err), `no stack trace: ${r.err}`);
      }
    } finally {
      udp.close();
      tcp.close();
      await Deno.remove(data, { recursive: true });
    }
  },
);

Deno.test(
  "a data store on a read-only file system stops the start with one line naming the file and why",
  netnsOnly,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "gw-rofs-" });
    try {
      (await Deno.openKv(`${dir}/gateway.kv`)).close();
      // serve probes the store before opening it (Deno KV opens a read-only database file of
      // ours and fails only at its first write; as nobody, by hand, that case gives
      // "…cannot write it (owner uid 65534, mode 444)…": the run_tests namespace has no nobody).
      const [cmd, ...pre] = denoCommand();
      const r = await new Deno.Command("unshare", {
        args: [
          "-m",
          "sh",
          "-c",
          'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && shift && exec "$@"',
          dir,
          "-",
          cmd!,
          ...pre,
          "run",
          ...RUN_FLAGS,
          MAIN,
          "serve",
          "--data",
          dir,
          "--http-port",
          "18431",
          "--door-port",
          "18432",
          "--media-port",
          "18433",
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(r.stderr).trim();
      assertEquals(r.code, 1, err);
      assertEquals(err.split("\n").length, 1, err);
      assert(
        err.startsWith(
          `Cannot open the data store ${dir}/gateway.kv (--data ${dir}): it is on a read-only file system`,
        ),
        err,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("the cli task works with files and --data anywhere (not only under ./data)", async () => {
  const outside = await Deno.makeTempDir({ prefix: "gw-paths-" });
  try {
    const phones = `${outside}/phones.json`;
    await Deno.writeTextFile(
      phones,
      JSON.stringify([{ uid: "p1", room: "Y00010108090", community: "花苑" }]),
    );
    const data = `${outside}/data2`;
    const imported = await runDeno(taskArgs("cli", "bind", "import", phones, "--data", data));
    assertEquals(imported.code, 0, imported.err);
    assert(imported.out.includes('"uid":"p1"'), imported.out);
    const listed = await runDeno(taskArgs("cli", "bind", "list"), {
      env: { INTERCOM_DATA: data },
    });
    assertEquals(listed.code, 0, listed.err);
    assert(listed.out.includes('"roomAddress":"Y00010108090"'), listed.out);
  } finally {
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test(
  "the start task serves with --data and --tls-cert outside the repository, and warns of unknown variables",
  netnsOnly,
  async () => {
    const outside = await Deno.makeTempDir({ prefix: "gw-start-" });
    const tls = new URL("./fixtures/tls/", import.meta.url);
    for (const f of ["cert.pem", "key.pem"]) {
      await Deno.copyFile(new URL(f, tls), `${outside}/${f}`);
    }
    const client = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(new URL("ca.pem", tls))],
    });
    try {
      const gw = await startDeno(
        taskArgs(
          "start",
          "--data",
          `${outside}/var/lib/gw`,
          "--tls-cert",
          `${outside}/cert.pem`,
          "--tls-key",
          `${outside}/key.pem`,
          "--http-host",
          "127.0.0.1",
          "--http-port",
          "18421",
          "--door-port",
          "18422",
          "--media-port",
          "18423",
          "--log-format",
          "text",
        ),
        "https://localhost:18421/healthz",
        { client, env: { INTERCOM_RING_TIMOUT: "20" } },
      );
      assertEquals(await gw.stop(), 0, gw.log());
      assert(
        /WARN +Ignoring INTERCOM_RING_TIMOUT: no such setting \(did you mean INTERCOM_RING_TIMEOUT\?\)/
          .test(gw.log()),
        gw.log(),
      );
      assert((await Deno.stat(`${outside}/var/lib/gw/gateway.kv`)).isFile);
    } finally {
      client.close();
      await Deno.remove(outside, { recursive: true });
    }
  },
);

/** The permission and unstable flags of a task's command line. */
function permissionFlags(task: string): string[] {
  return task.split(/\s+/).filter((w) => /^--(allow|deny|unstable)-|^-A$|^--allow-all$/.test(w))
    .sort();
}

Deno.test("release tasks: both targets, the product's permissions baked in, never -A", () => {
  const tasks = denoJson.tasks as Record<string, string>;
  for (
    const [task, target] of <[string, string][]> [["compile:x86_64", "x86_64-unknown-linux-gnu"], [
      "compile:aarch64",
      "aarch64-unknown-linux-gnu",
    ]]
  ) {
    const t = tasks[task]!;
    assert(t.startsWith("deno compile "), t);
    assert(t.includes(`--target ${target}`), t);
    assert(!/(^| )(-A|--allow-all)( |$)/.test(t), `${task} must not use -A`);
    for (const p of PERMS) assert(t.includes(p), `${task} lacks ${p}`);
    assert(t.trim().endsWith("main.ts"), t);
  }
  assert(!/(^| )(-A|--allow-all)( |$)/.test(tasks.start!), "start must not use -A");
});

Deno.test("start, cli and the compiled binaries run with exactly the product's permissions", () => {
  const tasks = denoJson.tasks as Record<string, string>;
  for (const task of ["start", "cli", "compile:x86_64", "compile:aarch64"]) {
    assertEquals(permissionFlags(tasks[task]!), [...PERMS].sort(), task);
  }
  assert(tasks.start!.endsWith("main.ts serve") && tasks.cli!.endsWith("main.ts"));
});

Deno.test("the native-engine binaries add only --allow-ffi, for their own architecture's library", () => {
  const tasks = denoJson.tasks as Record<string, string>;
  for (const arch of ["x86_64", "aarch64"]) {
    const t = tasks[`compile:${arch}:native`]!;
    const lib = `--allow-ffi=/usr/local/lib/intercom-gateway/libintercom_media.${arch}.so`;
    assertEquals(permissionFlags(t), [...PERMS, lib].sort(), arch);
    assert(t.includes(`--target ${arch}-unknown-linux-gnu`) && t.trim().endsWith("main.ts"), t);
    assert(t.includes(`--output dist/intercom-gateway-native-${arch}`), t);
  }
  assert(tasks["build:native"]!.includes("--require x86_64,aarch64"));
});
