import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { storeCommand, type StoreCommandName } from "./cli.ts";
import { lockStore } from "./lock.ts";
import { SCHEMA_KEY } from "./schema.ts";
import { isKvUrl, kvLocation, openStore } from "./kv.ts";
import { RecordStore } from "./records.ts";
import { BindingStore } from "./bindings.ts";
import { DoorStore } from "./doors.ts";

interface Run {
  code: number;
  out: string[];
  err: string[];
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function run(
  cmd: StoreCommandName,
  args: string[],
  env: Record<string, string> = {},
): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await storeCommand(cmd, args, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env,
  });
  return { code, out, err };
}

Deno.test("cli: bind add prints one JSON line with the token; list never shows tokens", async () => {
  await withDir(async (dir) => {
    const data = `${dir}/data`;
    const r = await run("bind", [
      "add",
      "--uid",
      "359608060142756",
      "--room",
      "Y00010108090",
      "--community",
      "花苑",
      "--data",
      data,
    ]);
    assertEquals([r.code, r.err, r.out.length], [0, [], 1]);
    const line = JSON.parse(r.out[0]!);
    assertEquals(Object.keys(line), [
      "uid",
      "roomAddress",
      "roomKey",
      "community",
      "token",
      "createdAt",
      "rotated",
    ]);
    assertEquals([line.uid, line.roomKey, line.community, line.rotated], [
      "359608060142756",
      "00010108090",
      "花苑",
      false,
    ]);
    const again = await run("bind", ["add", "--uid=359608060142756", "--room=S00010108090"], {
      INTERCOM_DATA: data,
    });
    assertEquals(again.code, 0);
    const second = JSON.parse(again.out[0]!);
    assertEquals(second.rotated, true);
    assert(second.token !== line.token);

    await run("bind", ["add", "--uid", "other", "--room", "Y00010108091", "--data", data]);
    const list = await run("bind", ["list", "--data", data]);
    assertEquals(list.code, 0);
    assertEquals(list.out.length, 2);
    for (const l of list.out) assert(!l.includes("token") && !l.includes(second.token), l);
    const byRoom = await run("bind", ["list", "--room", "00010108091", "--data", data]);
    assertEquals(byRoom.out.map((l) => JSON.parse(l).uid), ["other"]);
    const byUid = await run("bind", ["list", "--uid", "359608060142756", "--data", data]);
    assertEquals(byUid.out.map((l) => JSON.parse(l).roomAddress), ["S00010108090"]);

    // The token the CLI printed opens the binding in the store the gateway uses.
    const kv = await openStore(data);
    try {
      assert(await new BindingStore(kv).verify("359608060142756", "Y00010108090", second.token));
    } finally {
      kv.close();
    }
  });
});

Deno.test("cli: bind remove prints the count; exit 1 when nothing was bound", async () => {
  await withDir(async (dir) => {
    const data = ["--data", dir];
    await run("bind", ["add", "--uid", "a", "--room", "Y00010108090", ...data]);
    await run("bind", ["add", "--uid", "a", "--room", "Y00010108091", ...data]);
    await run("bind", ["add", "--uid", "b", "--room", "Y00010108091", ...data]);
    let r = await run("bind", ["remove", "--uid", "a", "--room", "S00010108090", ...data]);
    assertEquals([r.code, r.out], [0, ['{"removed":1}']]);
    r = await run("bind", ["remove", "--uid", "a", ...data]);
    assertEquals([r.code, r.out], [0, ['{"removed":1}']]);
    r = await run("bind", ["remove", "--uid", "a", ...data]);
    assertEquals([r.code, r.out], [1, ['{"removed":0}']]);
    assertEquals((await run("bind", ["list", ...data])).out.length, 1);
  });
});

Deno.test("cli: bind import prints one line per binding, or changes nothing", async () => {
  await withDir(async (dir) => {
    const good = `${dir}/good.json`;
    await Deno.writeTextFile(
      good,
      JSON.stringify([
        { uid: "a", room: "Y00010108090", community: "花苑" },
        { uid: "b", roomAddress: "Y00010108090", community: "花苑" },
      ]),
    );
    const bad = `${dir}/bad.json`;
    await Deno.writeTextFile(
      bad,
      JSON.stringify([{ uid: "c", room: "Y00010108090" }, { uid: "" }]),
    );
    const data = `${dir}/data`;

    let r = await run("bind", ["import", bad, "--data", data]);
    assertEquals(r.code, 2);
    assert(/bad\.json: Cannot bind entry 2: uid is empty/.test(r.err[0]!), r.err[0]);
    assertEquals((await run("bind", ["list", "--data", data])).out, []);

    r = await run("bind", ["import", good, "--data", data]);
    assertEquals([r.code, r.err, r.out.length], [0, [], 2]);
    const lines = r.out.map((l) => JSON.parse(l));
    assertEquals(lines.map((l) => [l.uid, typeof l.token, l.rotated]), [
      ["a", "string", false],
      ["b", "string", false],
    ]);

    await Deno.writeTextFile(`${dir}/obj.json`, "{}");
    r = await run("bind", ["import", `${dir}/obj.json`, "--data", data]);
    assertEquals(r.code, 2);
    assert(/expected a JSON array/.test(r.err[0]!));
    await Deno.writeTextFile(`${dir}/broken.json`, "[");
    r = await run("bind", ["import", `${dir}/broken.json`, "--data", data]);
    assertEquals(r.code, 2);
    r = await run("bind", ["import", `${dir}/missing.json`, "--data", data]);
    assertEquals(r.code, 2);
    assert(r.err[0]!.includes("missing.json"));
    r = await run("bind", ["import", "--data", data]);
    assertEquals(r.code, 2);
  });
});

Deno.test("cli: bad flags and values name the flag, exit 2, one line", async () => {
  await withDir(async (dir) => {
    const data = ["--data", dir];
    const cases: [StoreCommandName, string[], RegExp][] = [
      ["bind", ["add", "--uid", "a", "--room", "Y123", ...data], /--room/],
      ["bind", ["add", "--uid", "a", "--room", "00010108090", ...data], /--room/],
      ["bind", ["add", "--uid", "a b", "--room", "Y00010108090", ...data], /--uid/],
      ["bind", ["add", "--room", "Y00010108090", ...data], /--uid/],
      ["bind", ["add", "--uid", "a", ...data], /--room/],
      [
        "bind",
        ["add", "--uid", "a", "--room", "Y00010108090", "--community", "x".repeat(65)],
        /--community/,
      ],
      ["bind", ["add", "--uid", "a", "--room", "Y00010108090", "--bogus", ...data], /--bogus/],
      ["bind", ["add", "--uid"], /--uid/],
      ["bind", ["add", "--uid", "a", "--room", "Y00010108090", "--data", ""], /--data/],
      ["bind", ["list", "--room", "nope", ...data], /--room/],
      ["bind", ["list", "extra", ...data], /extra/],
      ["bind", ["remove", ...data], /--uid/],
      ["bind", ["frobnicate"], /frobnicate/],
      ["bind", [], /add, list, remove, import or export/],
      ["bind", ["export", "--room", "nope", ...data], /--room/],
      ["backup", ["--bogus", ...data], /--bogus/],
      ["backup", ["--to", "", ...data], /--to/],
      ["restore", ["--schema", "two", ...data], /--schema/],
      ["restore", ["a", "b", ...data], /"b"/],
      ["migrate", ["extra", ...data], /extra/],
      ["schema", ["--bogus"], /--bogus/],
      ["calls", ["--limit", "0", ...data], /--limit/],
      ["calls", ["--limit", "abc", ...data], /--limit/],
      ["calls", ["--limit", "-5", ...data], /limit/],
      ["calls", ["--nope", ...data], /--nope/],
      ["door", [], /list, forget or pin/],
      ["door", ["open"], /open/],
      ["door", ["list", "extra", ...data], /extra/],
      ["door", ["forget", ...data], /ADDR/],
      ["door", ["forget", "m0001", ...data], /not a door address/],
      ["door", ["forget", "M00010100", "M00010200", ...data], /M00010200/],
      ["door", ["pin", ...data], /ADDR or --all/],
      ["door", ["pin", "M00010100", "--all", ...data], /ADDR or --all/],
      ["door", ["pin", "10.0.0.5", ...data], /not a door address/],
    ];
    for (const [cmd, args, re] of cases) {
      const r = await run(cmd, args);
      assertEquals(r.code, 2, `${cmd} ${args.join(" ")}: ${r.err}`);
      assertEquals(r.err.length, 1);
      assert(!r.err[0]!.includes("\n"), r.err[0]);
      assert(re.test(r.err[0]!), `${cmd} ${args.join(" ")}: ${r.err[0]}`);
      assertEquals(r.out, []);
    }
    assertEquals((await run("bind", ["list", ...data])).out, []);
  });
});

Deno.test("cli: --help prints usage", async () => {
  for (const args of [["--help"], ["help"], ["add", "--help"], ["list", "-h"]]) {
    const r = await run("bind", args);
    assertEquals(r.code, 0);
    assert(r.out.join("\n").includes("bind add --uid UID --room ROOM"));
  }
  const r = await run("calls", ["--help"]);
  assertEquals(r.code, 0);
  assert(r.out.join("\n").includes("--unlocks"));
  for (const args of [["--help"], ["help"], ["list", "--help"], ["pin", "-h"]]) {
    const d = await run("door", args);
    assertEquals(d.code, 0);
    assert(d.out.join("\n").includes("door pin ADDR|--all"), args.join(" "));
  }
});

Deno.test("cli: calls and door list say so, on stderr, when there is nothing", async () => {
  await withDir(async (dir) => {
    let r = await run("calls", ["--data", dir]);
    assertEquals([r.code, r.out, r.err], [0, [], ["no calls recorded"]]);
    r = await run("calls", ["--unlocks", "--data", dir]);
    assertEquals([r.code, r.out, r.err], [0, [], ["no unlock attempts recorded"]]);
    r = await run("door", ["list", "--data", dir]);
    assertEquals([r.code, r.out, r.err], [0, [], ["no doors recorded"]]);
  });
});

Deno.test("cli: door list, forget and pin", async () => {
  await withDir(async (dir) => {
    const data = ["--data", dir];
    const kv = await openStore(dir);
    try {
      const store = new DoorStore(kv);
      await store.save({
        address: "M00010100",
        ip: "10.0.0.5",
        mode: "learned",
        firstHeard: Date.UTC(2025, 0, 1),
        lastHeard: Date.UTC(2025, 0, 2),
        headerForm: 86,
        law: "ulaw",
        needsTalkForUnlock: true,
      }, null);
      await store.save({
        address: "S00010108090",
        ip: "10.0.0.6",
        mode: "learned",
        needsTalkForUnlock: false,
      }, null);
      await kv.set(["door", "M0001030"], "10.0.0.7"); // as 0.1.0 wrote it
    } finally {
      kv.close();
    }
    let r = await run("door", ["list", ...data]);
    assertEquals([r.code, r.err], [0, []]);
    assertEquals(r.out.map((l) => JSON.parse(l)), [
      {
        address: "M00010100",
        ip: "10.0.0.5",
        mode: "learned",
        firstHeard: "2025-01-01T00:00:00.000Z",
        lastHeard: "2025-01-02T00:00:00.000Z",
        headerForm: 86,
        law: "ulaw",
        needsTalkForUnlock: true,
      },
      {
        address: "M00010300",
        ip: "10.0.0.7",
        mode: "learned",
        firstHeard: null,
        lastHeard: null,
        headerForm: null,
        law: null,
        needsTalkForUnlock: false,
      },
      {
        address: "S00010108090",
        ip: "10.0.0.6",
        mode: "learned",
        firstHeard: null,
        lastHeard: null,
        headerForm: null,
        law: null,
        needsTalkForUnlock: false,
      },
    ]);

    r = await run("door", ["pin", "M0001010", ...data]);
    assertEquals([r.code, r.out.map((l) => JSON.parse(l).mode)], [0, ["pinned"]]);
    r = await run("door", ["pin", "M00010900", ...data]);
    assertEquals([r.code, r.out], [1, []]);
    assert(/Cannot pin door M00010900: no such door/.test(r.err[0]!), r.err[0]);
    r = await run("door", ["pin", "--all"], { INTERCOM_DATA: dir });
    assertEquals(r.code, 0);
    assertEquals(r.out.map((l) => [JSON.parse(l).address, JSON.parse(l).mode]), [
      ["M00010100", "pinned"],
      ["M00010300", "pinned"],
      ["S00010108090", "pinned"],
    ]);

    r = await run("door", ["forget", "M00010300", ...data]);
    assertEquals([r.code, r.out], [0, ['{"forgotten":1}']]);
    r = await run("door", ["forget", "M00010300", ...data]);
    assertEquals([r.code, r.out], [1, ['{"forgotten":0}']]);
    r = await run("door", ["list", ...data]);
    assertEquals(r.out.map((l) => JSON.parse(l).address), ["M00010100", "S00010108090"]);
    await run("door", ["forget", "M00010100", ...data]);
    await run("door", ["forget", "S00010108090", ...data]);
    r = await run("door", ["pin", "--all", ...data]);
    assertEquals([r.code, r.out, r.err], [1, [], ["no doors recorded"]]);
  });
});

Deno.test("cli: calls prints recent records and the unlock audit", async () => {
  await withDir(async (dir) => {
    const kv = await openStore(dir);
    try {
      const store = new RecordStore(kv);
      for (let i = 0; i < 3; i++) {
        await store.start({
          callId: `c${i}`,
          door: "M00010100",
          doorIp: "192.168.31.189",
          roomAddress: "S00010108090",
          ringAt: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
        });
      }
      await store.auditUnlock({
        uid: "u1",
        roomAddress: "Y00010108090",
        doorAddress: "M00010100",
        result: "not_in_call",
      });
      // A flood, counted in one row.
      await store.auditUnlock({
        uid: "u1",
        roomAddress: "Y00010108090",
        doorAddress: "M00010100",
        result: "rate_limited",
        at: new Date(Date.now() + 1000).toISOString(),
        lastAt: new Date(Date.now() + 1500).toISOString(),
        count: 412,
      });
    } finally {
      kv.close();
    }
    let r = await run("calls", ["--data", dir]);
    assertEquals(r.code, 0);
    assertEquals(r.out.map((l) => JSON.parse(l).callId), ["c2", "c1", "c0"]);
    r = await run("calls", ["--limit", "1"], { INTERCOM_DATA: dir });
    assertEquals(r.out.map((l) => JSON.parse(l).callId), ["c2"]);
    r = await run("calls", ["--unlocks", "--data", dir]);
    assertEquals(r.out.map((l) => [JSON.parse(l).result, JSON.parse(l).count]), [
      ["rate_limited", 412],
      ["not_in_call", 1],
    ]);
  });
});

Deno.test("kv: openStore creates the directory; URLs and :memory: pass through", async () => {
  await withDir(async (dir) => {
    const data = `${dir}/a/b`;
    assertEquals(await kvLocation(data), `${data}/gateway.kv`);
    const kv = await openStore(data);
    kv.close();
    assert((await Deno.stat(`${data}/gateway.kv`)).isFile);
    // An existing database file is opened as is.
    assertEquals(await kvLocation(`${data}/gateway.kv`), `${data}/gateway.kv`);
    assertEquals(await kvLocation(":memory:"), ":memory:");
    const url = "https://api.deno.com/databases/x/connect";
    assert(isKvUrl(url));
    assertEquals(await kvLocation(url), url);
    const mem = await openStore(":memory:");
    mem.close();
    await Deno.writeTextFile(`${dir}/file`, "");
    try {
      await openStore(`${dir}/file/sub`);
      assert(false, "must fail");
    } catch (e) {
      assert(e instanceof Error && e.message.startsWith(`Cannot open store at ${dir}/file/sub`));
    }
  });
});

Deno.test("cli: bind export --with-token-hashes, then bind import elsewhere: old tokens work", async () => {
  await withDir(async (dir) => {
    const a = ["--data", `${dir}/a`];
    const add = await run("bind", ["add", "--uid", "u1", "--room", "Y00010108090", ...a]);
    const token = JSON.parse(add.out[0]!).token;
    await run("bind", [
      "add",
      "--uid",
      "u2",
      "--room",
      "Y00010208050",
      "--community",
      "花苑",
      ...a,
    ]);
    const plain = await run("bind", ["export", ...a]);
    assertEquals(plain.code, 0);
    const entries = JSON.parse(plain.out.join("\n"));
    assertEquals(entries.map((e: Record<string, unknown>) => Object.keys(e)), [
      ["uid", "roomAddress", "community", "createdAt"],
      ["uid", "roomAddress", "community", "createdAt"],
    ]);
    const withHashes = await run("bind", ["export", "--with-token-hashes", "--uid", "u1", ...a]);
    await Deno.writeTextFile(`${dir}/export.json`, withHashes.out.join("\n"));
    const b = ["--data", `${dir}/b`];
    const imported = await run("bind", ["import", `${dir}/export.json`, ...b]);
    assertEquals(imported.code, 0);
    assertEquals("token" in JSON.parse(imported.out[0]!), false);
    const kv = await openStore(`${dir}/b`);
    try {
      assert(await new BindingStore(kv).verify("u1", "Y00010108090", token));
    } finally {
      kv.close();
    }
  });
});

/** A 0.1.0 store in `dir`: a binding and a learned door, no schema mark. */
async function v1Store(dir: string): Promise<void> {
  const kv = await Deno.openKv(`${dir}/gateway.kv`);
  try {
    await kv.set(["binding", "00010108090", "u1"], {
      uid: "u1",
      roomAddress: "Y00010108090",
      roomKey: "00010108090",
      community: "",
      createdAt: "2025-01-01T00:00:00.000Z",
      tokenHash: "0".repeat(64),
    });
    await kv.set(["binding_by_uid", "u1", "00010108090"], true);
    await kv.set(["door", "M0001010"], "10.0.0.5");
  } finally {
    kv.close();
  }
}

Deno.test("cli: a 0.1.0 store is refused until migrated; migrate backs it up first", async () => {
  await withDir(async (dir) => {
    const data = ["--data", dir];
    await v1Store(dir);
    let r = await run("schema", data);
    assertEquals([r.code, JSON.parse(r.out[0]!).store, JSON.parse(r.out[0]!).known], [0, 1, 2]);
    r = await run("bind", ["list", ...data]);
    assertEquals(r.code, 1);
    assert(
      /it has schema version 1, this gateway uses 2; .*intercom-gateway migrate/.test(r.err[0]!),
      r.err[0],
    );
    r = await run("migrate", data);
    assertEquals(r.code, 0);
    const done = JSON.parse(r.out[0]!);
    assertEquals([done.from, done.to, done.migrations.length], [1, 2, 1]);
    assert(done.backup.startsWith(`${dir}/backup/1-`), done.backup);
    assert(r.err.some((l) => /store migrated from=1 to=2/.test(l)), r.err.join("\n"));
    r = await run("door", ["list", ...data]);
    assertEquals(r.out.map((l) => JSON.parse(l).address), ["M00010100"]);
    r = await run("backup", ["list", ...data]);
    assertEquals(r.out.map((l) => JSON.parse(l).dir), [done.backup]);
    r = await run("schema", ["--known"]);
    assertEquals(r.out, ["2"]);
  });
});

Deno.test("cli: a store of a newer gateway is refused, never read", async () => {
  await withDir(async (dir) => {
    const kv = await openStore(dir);
    await kv.set(SCHEMA_KEY, { version: 3, writtenBy: "0.3.0" });
    kv.close();
    const r = await run("calls", ["--data", dir]);
    assertEquals(r.code, 1);
    assert(
      r.err[0]!.startsWith(
        `Cannot open the store ${dir}/gateway.kv: it was written by schema version 3 ` +
          "(intercom-gateway 0.3.0), this gateway knows up to 2; restore a backup with",
      ),
      r.err[0],
    );
  });
});

Deno.test("cli: backup [--to DIR], restore DIR; restore refused while the store is held", async () => {
  await withDir(async (dir) => {
    const data = ["--data", `${dir}/data`];
    await run("bind", ["add", "--uid", "u1", "--room", "Y00010108090", ...data]);
    let r = await run("backup", ["--to", `${dir}/usb`, ...data]);
    assertEquals(r.code, 0);
    assertEquals([JSON.parse(r.out[0]!).dir, JSON.parse(r.out[0]!).reason], [
      `${dir}/usb`,
      "manual",
    ]);
    r = await run("backup", data);
    assert(JSON.parse(r.out[0]!).dir.startsWith(`${dir}/data/backup/2-`), r.out[0]);
    await run("bind", ["add", "--uid", "u2", "--room", "Y00010108090", ...data]);
    const held = await lockStore(`${dir}/data`);
    r = await run("restore", [`${dir}/usb`, ...data]);
    held?.release();
    assertEquals(r.code, 1);
    assert(/^Cannot restore into .*: it is locked by process \d+/.test(r.err[0]!), r.err[0]);
    r = await run("restore", [`${dir}/usb`, ...data]);
    assertEquals([r.code, JSON.parse(r.out[0]!).restored], [0, true]);
    r = await run("bind", ["list", ...data]);
    assertEquals(r.out.map((l) => JSON.parse(l).uid), ["u1"]);
    // The new box: an empty --data, restored from the USB stick.
    r = await run("restore", [`${dir}/usb`, "--data", `${dir}/newbox`]);
    assertEquals(r.code, 0);
    r = await run("bind", ["list", "--data", `${dir}/newbox`]);
    assertEquals(r.out.map((l) => JSON.parse(l).uid), ["u1"]);
    // Usage errors.
    r = await run("restore", data);
    assertEquals([r.code, r.err], [2, [
      "Cannot run restore: expected DIR or --schema N (one of them)",
    ]]);
    r = await run("backup", ["--data", `${dir}/none`]);
    assertEquals(r.code, 1);
    assert(/^Cannot back up .*: no store there/.test(r.err[0]!), r.err[0]);
  });
});
