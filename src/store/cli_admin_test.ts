import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { storeCommand } from "./cli.ts";
import { openStore } from "./kv.ts";
import { AdminStore } from "./admins.ts";

async function run(args: string[], data: string, stdin?: string) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await storeCommand("admin", [...args, "--data", data], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: {},
    ...(stdin !== undefined ? { stdin: () => Promise.resolve(stdin) } : {}),
  });
  return { code, out, err };
}

Deno.test("cli: admin add prints a one-time password once; list never shows it; reset and remove are audited", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const added = await run(["add", "--name", "manager"], dir);
    assertEquals(added.code, 0, added.err.join("\n"));
    const line = JSON.parse(added.out[0]!);
    assertEquals([line.name, line.mustChange], ["manager", true]);
    assert(typeof line.password === "string" && line.password.length >= 20);
    assert(added.err[0]!.includes("one-time password"));

    const again = await run(["add", "--name", "manager"], dir);
    assertEquals(again.code, 2);
    assert(again.err[0]!.includes("exists"), again.err[0]);

    const chosen = await run(
      ["add", "--name", "installer", "--password-stdin"],
      dir,
      "a chosen password\n",
    );
    assertEquals(chosen.code, 0);
    assertEquals(JSON.parse(chosen.out[0]!).password, undefined, "a chosen password is not echoed");
    const short = await run(["add", "--name", "x", "--password-stdin"], dir, "short\n");
    assertEquals(short.code, 2);

    const list = await run(["list"], dir);
    assertEquals(list.out.map((l) => JSON.parse(l).name), ["installer", "manager"]);
    assert(list.out.every((l) => !l.includes('password"')), "no password in the listing");

    assertEquals(
      (await run(["reset", "--name", "installer", "--password-stdin"], dir, "another one here\n"))
        .code,
      0,
    );
    assertEquals((await run(["remove", "--name", "manager"], dir)).code, 0);
    assertEquals((await run(["remove", "--name", "manager"], dir)).code, 1);
    assertEquals((await run(["add", "--name", "bad name"], dir)).code, 2);

    const kv = await openStore(dir);
    try {
      const store = new AdminStore(kv);
      assert(await store.verify("installer", "another one here"));
      assertEquals(await store.verify("installer", "a chosen password"), undefined);
      const audit = (await store.auditPage()).entries.map((
        e,
      ) => [e.admin, e.action, e.target, e.ip]);
      assertEquals(audit, [
        ["cli", "admin_remove", "manager", "local"],
        ["cli", "admin_reset", "installer", "local"],
        ["cli", "admin_add", "installer", "local"],
        ["cli", "admin_add", "manager", "local"],
      ]);
    } finally {
      kv.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
