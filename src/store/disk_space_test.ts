import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { diskSpace } from "./disk_space.ts";
import { denoCommand } from "../../scripts/deno_flags.ts";

Deno.test("disk space: free and total of the data directory's filesystem, as df says", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-disk-" });
  try {
    const d = await diskSpace(dir);
    assert(d.ok, JSON.stringify(d));
    const out = await new Deno.Command("df", {
      args: ["-B1", "--output=avail,size", dir],
      stdout: "piped",
    }).output();
    const [avail, size] = new TextDecoder().decode(out.stdout).trim().split("\n")[1]!.trim()
      .split(/\s+/).map(Number) as [number, number];
    assertEquals(d.totalBytes, size);
    // Free space moves with whatever else writes to this disk: within 64 MiB of df's.
    assert(Math.abs(d.freeBytes - avail) < 64 * 1024 * 1024, `${d.freeBytes} vs df ${avail}`);
    assert(d.freeBytes <= d.totalBytes);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk space: a store in memory or remote has no disk to show", async () => {
  assertEquals((await diskSpace(":memory:")).ok, false);
  const remote = await diskSpace("https://kv.example/x");
  assertEquals(remote.ok ? "" : remote.reason, "remote");
});

Deno.test("disk space: without --allow-sys=statfs the answer names the missing permission", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-disk-" });
  try {
    const script = `${dir}/probe.ts`;
    const mod = new URL("./disk_space.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { diskSpace } from ${JSON.stringify(mod)};\n` +
        `console.log(JSON.stringify(await diskSpace(${JSON.stringify(dir)})));\n`,
    );
    const [cmd, ...pre] = denoCommand();
    const out = await new Deno.Command(cmd!, {
      args: [...pre, "run", "--quiet", "--allow-read", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals([d.ok, d.reason], [false, "permission"], new TextDecoder().decode(out.stderr));
    assert(d.message.includes("--allow-sys=statfs"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
