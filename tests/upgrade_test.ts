/**
 * Upgrading a 0.1.0 installation: the current gateway starts on a copy of the store the released
 * 0.1.0 wrote (`tests/fixtures/store-0.1.0/`), backs it up, migrates it, and keeps every binding,
 * record and door: each phone logs in with its old token, `calls` and `calls --unlocks` show the
 * old history, the learned doors are still known and admitted from their old IPs only. And the
 * other direction: a store of a newer schema stops the gateway with one line, untouched.
 *
 * The gateway runs in-process; the door and phone simulators over real sockets, so the door
 * tests run only inside the private network namespace of `deno task test`.
 */

import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor } from "./helpers/sims.ts";
import {
  copyFixture,
  expected,
  fixtureClock,
  type FixturePhone,
  includes,
  jsonLines,
  tokens,
} from "./helpers/store_fixture.ts";
import { type App, startApp } from "../src/app.ts";
import { parseConfig } from "../src/config.ts";
import { type PhoneScript, PhoneSim } from "../src/sim/phone_sim.ts";
import { storeCommand, type StoreCommandName } from "../src/store/cli.ts";
import { listBackups } from "../src/store/backup.ts";
import { readSchema, SCHEMA_KEY } from "../src/store/schema.ts";
import { memoryLogger } from "../src/testing/mod.ts";

async function start(data: string, logger = memoryLogger("info")): Promise<App> {
  const config = Object.freeze({
    ...parseConfig([], {}),
    httpHost: "127.0.0.1",
    httpPort: 0,
    mediaPort: 0,
    data,
  });
  return await startApp(config, { logger, clock: fixtureClock(), version: "test" });
}

async function cli(cmd: StoreCommandName, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await storeCommand(cmd, args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

async function dumpFile(file: string): Promise<[Deno.KvKey, unknown][]> {
  const kv = await Deno.openKv(file);
  try {
    return await Array.fromAsync(kv.list({ prefix: [] }), (e) => [e.key, e.value]);
  } finally {
    kv.close();
  }
}

function phone(app: App, p: FixturePhone, script: PhoneScript = {}): PhoneSim {
  return new PhoneSim({
    url: `ws://127.0.0.1:${app.addresses.http.port}/phone`,
    uid: p.uid,
    token: p.token,
    roomAddress: p.roomAddress,
    community: p.community,
    heartbeatMs: 1000,
    script,
  });
}

Deno.test({
  name: "upgrade from 0.1.0: backed up, migrated; bindings, calls, unlocks and doors kept",
  ignore: !inNetns,
  fn: async () => {
    const data = await copyFixture();
    const original = await dumpFile(join(data, "gateway.kv"));
    const logger = memoryLogger("info");
    const app = await start(data, logger);
    const sims: PhoneSim[] = [];
    try {
      // Backed up first, then migrated, both logged.
      const backups = await listBackups(join(data, "backup"));
      assertEquals(backups.map((b) => [b.schema, b.entries, b.reason]), [
        [1, original.length, "before migrating to schema 2"],
      ]);
      assertEquals(await dumpFile(join(backups[0]!.dir, "gateway.kv")), original);
      const migrated = logger.records.find((r) => r.msg === "store migrated")!;
      assertEquals([migrated.from, migrated.to, migrated.doorsMoved], [1, 2, 2]);
      assert(typeof migrated.ms === "number" && typeof migrated.rows === "number");

      // Every phone logs in with the token 0.1.0 gave it; the rotated-away one does not.
      for (const p of tokens.phones) {
        const sim = phone(app, p);
        sims.push(sim);
        await sim.start();
        await sim.waitFor("login ok", 5000);
      }
      const revoked = phone(app, tokens.revoked[0]!);
      sims.push(revoked);
      await revoked.start();
      const refusal = await revoked.waitFor("error", 5000);
      assertEquals((refusal as { message: { code?: string } }).message.code, "unauthorized");

      // The manager's commands show what 0.1.0 showed (the gateway runs: reads are fine).
      const bindings = await cli("bind", "list", "--data", data);
      assertEquals(jsonLines(bindings.out), expected.bindings);
      const calls = jsonLines((await cli("calls", "--limit", "100", "--data", data)).out);
      assertEquals(calls.length, expected.calls.length);
      for (const [i, want] of expected.calls.entries()) {
        assert(includes(calls[i]!, want), `call ${i}: ${JSON.stringify(calls[i])}`);
      }
      const unlocks = jsonLines(
        (await cli("calls", "--unlocks", "--limit", "100", "--data", data)).out,
      );
      assertEquals(unlocks.length, expected.unlocks.length);
      for (const [i, want] of expected.unlocks.entries()) {
        assert(includes(unlocks[i]!, want), `unlock ${i}: ${JSON.stringify(unlocks[i])}`);
      }
      const doors = jsonLines((await cli("door", "list", "--data", data)).out);
      assertEquals(doors.map((d) => [d.address, d.ip, d.mode]), [
        ["M00010100", "127.0.0.2", "learned"],
        ["M00010200", "127.0.0.3", "learned"],
      ]);

      // A restore under the running gateway is refused.
      const restore = await cli("restore", backups[0]!.dir, "--data", data);
      assertEquals(restore.code, 1);
      assert(/it is locked by process \d+/.test(restore.err[0]!), restore.err[0]);
    } finally {
      for (const s of sims) await s.close().catch(() => {});
      await app.shutdown();
    }
    const kv = await Deno.openKv(join(data, "gateway.kv"));
    try {
      assertEquals((await readSchema(kv)).version, 2);
      assertEquals((await Array.fromAsync(kv.list({ prefix: ["door"] }))).length, 0);
    } finally {
      kv.close();
    }
    // A restart does not migrate or back up again.
    const again = await start(data);
    await again.shutdown();
    assertEquals((await listBackups(join(data, "backup"))).length, 1);
    await Deno.remove(data, { recursive: true });
  },
});

Deno.test({
  name: "upgrade from 0.1.0: a learned door is admitted from its old IP, refused from another",
  ignore: !inNetns,
  fn: async () => {
    const data = await copyFixture();
    const app = await start(data);
    const wang = tokens.phones.find((p) =>
      p.roomAddress === "Y00010108090" && /^\d+$/.test(p.uid)
    )!;
    const sim = phone(app, wang, { answer: "callok", hangupAfterS: 0.3 });
    try {
      await sim.start();
      await sim.waitFor("login ok", 5000);
      // The impostor first (within --door-relearn-after of the start, so no relearning).
      const impostor = await openDoor({ ip: "127.0.0.9", address: "M00010100", room: "0809" });
      const refused = await impostor.start();
      assertEquals([refused.reason, refused.counters.callSent], ["ns_unanswered", 0]);
      const door = await openDoor({ ip: "127.0.0.2", address: "M00010100", room: "0809" });
      const summary = await door.start();
      assertEquals([summary.reason, summary.answered], ["ended_by_gateway", true]);
      const call = sim.messagesIn("call")[0] as unknown as Record<string, string>;
      assertEquals([call.doorAddress, call.roomAddress], ["M00010100", "Y00010108090"]);
    } finally {
      await sim.close().catch(() => {});
      await app.shutdown();
      await Deno.remove(data, { recursive: true });
    }
  },
});

Deno.test("a store of a newer schema stops the gateway with one line and is left untouched", async () => {
  const data = await copyFixture();
  try {
    const kv = await Deno.openKv(join(data, "gateway.kv"));
    await kv.set(SCHEMA_KEY, { version: 99, writtenBy: "9.0.0" });
    kv.close();
    const before = await dumpFile(join(data, "gateway.kv"));
    let message = "";
    await start(data).then((app) => app.shutdown(), (e) => (message = e.message));
    assert(
      message.startsWith(
        `Cannot open the store ${join(data, "gateway.kv")}: it was written by schema version 99 ` +
          "(intercom-gateway 9.0.0), this gateway knows up to 2; restore a backup with",
      ),
      message,
    );
    assert(!message.includes("\n"));
    assertEquals(await dumpFile(join(data, "gateway.kv")), before);
    assertEquals((await listBackups(join(data, "backup"))).length, 0);
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});
