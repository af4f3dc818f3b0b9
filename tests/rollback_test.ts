/**
 * Rolling back to 0.1.0: the released binary cannot be taught schema versions, so a rollback
 * restores the backup taken before the migration (`restore --schema 1`, what
 * deploy/rollback.sh runs). The released 0.1.0 code itself (from git) then runs on the restored
 * store and sees its data: its `bind list`, `calls` and `calls --unlocks` print what they printed
 * before the upgrade, its gateway logs the phones in with their old tokens; and what was written
 * after the upgrade is kept aside in a backup of its own.
 *
 * Needs git with commit 8cd426a (not a shallow clone), and the private network namespace of
 * `deno task test` (the gateways bind the door port).
 */

import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { inNetns } from "./helpers/netns.ts";
import {
  copyFixture,
  expected,
  extractRelease010,
  fixtureClock,
  hasRelease010,
  jsonLines,
  run010,
  tokens,
} from "./helpers/store_fixture.ts";
import { denoCommand, PRODUCT_PERMS } from "../scripts/deno_flags.ts";
import { startApp } from "../src/app.ts";
import { parseConfig } from "../src/config.ts";
import { PhoneSim } from "../src/sim/phone_sim.ts";
import { storeCommand } from "../src/store/cli.ts";
import { listBackups } from "../src/store/backup.ts";
import { nullLogger } from "../src/testing/mod.ts";

const HTTP_PORT = 18_091;

async function login(
  p: { uid: string; roomAddress: string; community: string; token: string },
): Promise<string> {
  const sim = new PhoneSim({
    url: `ws://127.0.0.1:${HTTP_PORT}/phone`,
    ...p,
    heartbeatMs: 1000,
  });
  try {
    await sim.start();
    const e = await sim.waitFor((e) =>
      e.kind === "in" && (e.order === "login ok" || e.order === "error")
    );
    return e.kind === "in" ? `${e.order}${"code" in e.message ? ` ${e.message.code}` : ""}` : "?";
  } finally {
    await sim.close().catch(() => {});
  }
}

Deno.test({
  name: "rollback to 0.1.0: the pre-migration backup is restored and the 0.1.0 code sees its data",
  ignore: !inNetns || !hasRelease010,
  fn: async () => {
    const data = await copyFixture();
    const tree = await extractRelease010();
    try {
      // Upgrade: the current gateway migrates the store; a phone is bound afterwards.
      const app = await startApp(
        Object.freeze({
          ...parseConfig([], {}),
          httpHost: "127.0.0.1",
          httpPort: 0,
          mediaPort: 0,
          data,
        }),
        { logger: nullLogger, clock: fixtureClock(), version: "test" },
      );
      const late = await app.bindings.add({ uid: "p-late", roomAddress: "Y00010108090" });
      await app.shutdown();

      // Rollback (deploy/rollback.sh runs this with the newer binary): 0.1.0 would misread the
      // migrated store (its doors moved), so the backup taken before the migration comes back.
      const out: string[] = [];
      const code = await storeCommand("restore", ["--schema", "1", "--data", data], {
        out: (l) => out.push(l),
        err: (l) => out.push(l),
      });
      assertEquals(code, 0, out.join("\n"));
      const restored = JSON.parse(out[0]!);
      assertEquals([restored.restored, restored.schema], [true, 1]);
      const saved = (await listBackups(join(data, "backup"))).find((b) =>
        b.reason === "before restore"
      );
      assert(saved && saved.schema === 2, "the migrated store is kept aside");

      // The released CLI prints what it printed before the upgrade.
      const bind = await run010(tree, ["bind", "list", "--data", data]);
      assertEquals(bind.code, 0, bind.err);
      assertEquals(jsonLines(bind.out), expected.bindings);
      const calls = await run010(tree, ["calls", "--limit", "100", "--data", data]);
      assertEquals(jsonLines(calls.out), expected.calls);
      const unlocks = await run010(tree, ["calls", "--unlocks", "--limit", "100", "--data", data]);
      assertEquals(jsonLines(unlocks.out), expected.unlocks);
      const kv = await Deno.openKv(join(data, "gateway.kv"));
      try {
        const doors = await Array.fromAsync(kv.list<string>({ prefix: ["door"] }), (e) => ({
          address: String(e.key[1]),
          ip: e.value,
        }));
        assertEquals(doors, expected.doors);
      } finally {
        kv.close();
      }

      // The released gateway logs the old phones in; the one bound after the upgrade is gone.
      const [cmd, ...pre] = denoCommand();
      const gw = new Deno.Command(cmd!, {
        args: [
          ...pre,
          "run",
          ...PRODUCT_PERMS,
          "main.ts",
          "serve",
          "--data",
          data,
          "--http-host",
          "127.0.0.1",
          "--http-port",
          String(HTTP_PORT),
          "--door-port",
          "18302",
          "--media-port",
          "18303",
        ],
        cwd: tree,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const log = new Response(gw.stderr).text();
      try {
        const deadline = Date.now() + 30_000;
        let up = false;
        while (!up && Date.now() < deadline) {
          up = await fetch(`http://127.0.0.1:${HTTP_PORT}/healthz`)
            .then(async (r) => (await r.body?.cancel(), r.ok), () => false);
          if (!up) await new Promise((r) => setTimeout(r, 100));
        }
        assert(up, "the 0.1.0 gateway answers /healthz");
        for (const p of tokens.phones) assertEquals(await login(p), "login ok", p.uid);
        assertEquals(
          await login({
            uid: "p-late",
            roomAddress: "Y00010108090",
            community: "",
            token: late.token,
          }),
          "error unauthorized",
        );
      } finally {
        gw.kill("SIGTERM");
        await gw.status;
        await log;
      }
    } finally {
      await Deno.remove(data, { recursive: true });
      await Deno.remove(tree, { recursive: true });
    }
  },
});
