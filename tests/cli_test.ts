/**
 * The command line as a person (or systemd) meets it: `--version`, `--help`, bad flags, and the
 * release tasks in deno.json (checked on paper: `deno compile` needs a runtime download that this
 * workplace cannot make).
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { denoCommand, PERMS } from "./helpers/process.ts";
import denoJson from "../deno.json" with { type: "json" };

const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const [cmd, ...pre] = denoCommand();
  const r = await new Deno.Command(cmd!, {
    args: [...pre, "run", ...PERMS, MAIN, ...args],
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

Deno.test("a bad flag value exits non-zero with one line naming the flag", async () => {
  const cases = [
    [["serve", "--door-port", "99999"], "--door-port"],
    [["--log-format", "xml"], "--log-format"],
    [["serve", "--lan-ip", "10.0.0"], "--lan-ip"],
    [["serve", "--bogus"], "bogus"],
  ] as const;
  const results = await Promise.all(cases.map(([args]) => cli(...args)));
  for (const [i, [args, flag]] of cases.entries()) {
    const r = results[i]!;
    assert(r.code !== 0, `${args.join(" ")} must fail`);
    const lines = r.err.trim().split("\n");
    assertEquals(lines.length, 1, r.err);
    assert(lines[0]!.includes(flag), r.err);
  }
});

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
