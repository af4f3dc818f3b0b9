import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { FakeClock, memoryLogger } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import {
  type DoorPersistence,
  type DoorRecord,
  DoorRegistry,
  type DoorRegistryOptions,
  type DoorSnapshot,
} from "./registry.ts";

/** Wall clock of the tests: 2025-01-01T00:00:00Z plus the fake clock. */
const EPOCH = Date.UTC(2025, 0, 1);

/** A store in memory, with the KV store's version rule, and writes from "another process". */
class MemoryDoors implements DoorPersistence {
  records = new Map<string, DoorRecord>();
  #version = 0;
  saves: DoorRecord[] = [];
  versionReads = 0;

  version(): Promise<string | null> {
    this.versionReads++;
    return Promise.resolve(this.#version === 0 ? null : String(this.#version));
  }
  async load(): Promise<DoorSnapshot> {
    return { doors: [...this.records.values()], version: await this.version() };
  }
  async save(record: DoorRecord, version: string | null): Promise<boolean> {
    if ((await this.version()) !== version) return false;
    this.records.set(record.address, record);
    this.saves.push(record);
    return true;
  }
  async delete(address: string, version: string | null): Promise<boolean> {
    if ((await this.version()) !== version) return false;
    for (const k of this.records.keys()) if (k.startsWith(address)) this.records.delete(k);
    return true;
  }
  /** What the CLI does: change a record and bump the version. */
  external(address: string, record: DoorRecord | undefined): void {
    if (record) this.records.set(address, record);
    else this.records.delete(address);
    this.#version++;
  }
}

function setup(options: Partial<DoorRegistryOptions> = {}) {
  const clock = new FakeClock();
  const logger = memoryLogger("info");
  const registry = new DoorRegistry({
    clock,
    wallClock: () => EPOCH + clock.now(),
    logger,
    ...options,
  });
  return { clock, logger, registry };
}

Deno.test("door registry: learned on first contact, logged in display form; another IP is rejected", () => {
  const { registry: r, logger } = setup();
  assert(r.admit("M00010100", "10.0.0.5"));
  assert(r.admit("M00010100", "10.0.0.5"));
  assert(!r.admit("M00010100", "10.0.0.66"));
  assert(r.admit("S00010108090", "10.0.0.6"));
  assertEquals(
    logger.records.map((l) => [l.level, l.msg, l.door, l.ip]),
    [
      ["info", "door learned", "M00010100", "10.0.0.5"],
      ["info", "door refused: its address is known at another IP", "M00010100", "10.0.0.66"],
      ["info", "door learned", "S00010108090", "10.0.0.6"],
    ],
  );
});

Deno.test("door registry: a refused door is logged at info with both IPs and what to run, once a minute", () => {
  const { registry: r, logger, clock } = setup({ relearnAfterMs: 60_000 });
  r.admit("M00010100", "10.0.0.5");
  for (let i = 0; i < 20; i++) r.admit("M00010100", "10.0.0.66");
  const refused = () => logger.records.filter((l) => String(l.msg).startsWith("door refused"));
  assertEquals(refused().length, 1);
  const line = refused()[0]!;
  assertEquals([line.door, line.ip, line.knownIp, line.mode], [
    "M00010100",
    "10.0.0.66",
    "10.0.0.5",
    "learned",
  ]);
  assert(String(line.hint).includes("door forget M00010100"), String(line.hint));
  clock.advance(30_000);
  r.admit("M00010100", "10.0.0.5"); // the old door is still alive: no relearn
  clock.advance(30_000);
  r.admit("M00010100", "10.0.0.66");
  assertEquals(refused().length, 2);
});

Deno.test("door registry: a door not on the allowlist is logged with the entry to add", () => {
  const { registry: r, logger } = setup({ allowlist: ["M00010100=10.0.0.5"] });
  assert(!r.admit("M00010200", "10.0.0.7"));
  assert(!r.admit("M00010200", "10.0.0.7"));
  const lines = logger.records.filter((l) => String(l.msg).includes("allowlist"));
  assertEquals(lines.map((l) => [l.door, l.ip, l.hint]), [[
    "M00010200",
    "10.0.0.7",
    "add M00010200=10.0.0.7 to --door-allowlist (INTERCOM_DOOR_ALLOWLIST)",
  ]]);
});

Deno.test("door registry: a learned door silent for relearnAfterMs is re-learned at its new IP, warned with both IPs", () => {
  const { registry: r, clock, logger } = setup();
  assert(r.admit("M00010100", "10.0.0.5"));
  clock.advance(59_999);
  assert(!r.admit("M00010100", "10.0.0.9"), "default 60 s: not yet");
  // The door keeps speaking: its silence starts again.
  assert(r.admit("M00010100", "10.0.0.5"));
  clock.advance(59_999);
  assert(!r.admit("M00010100", "10.0.0.9"), "heard 59.999 s ago");
  clock.advance(1);
  assert(r.admit("M00010100", "10.0.0.9"), "silent for 60 s: re-learned");
  assert(!r.admit("M00010100", "10.0.0.5"), "the old IP is now the stranger");
  assertEquals(r.get("M00010100")?.ip, "10.0.0.9");
  const warn = logger.records.filter((l) => l.level === "warn");
  assertEquals(warn.map((l) => [l.msg, l.door, l.ip, l.oldIp, l.silentS]), [
    ["door re-learned at a new IP", "M00010100", "10.0.0.9", "10.0.0.5", 60],
  ]);
});

Deno.test("door registry: relearnAfterMs 0 never re-learns; a shorter one re-learns sooner", () => {
  const never = setup({ relearnAfterMs: 0 });
  assert(never.registry.admit("M00010100", "10.0.0.5"));
  never.clock.advance(7 * 86_400_000);
  assert(!never.registry.admit("M00010100", "10.0.0.9"));
  assertEquals(never.registry.get("M00010100")?.ip, "10.0.0.5");

  const metrics = new Metrics();
  const quick = setup({ relearnAfterMs: 5000, metrics });
  assert(quick.registry.admit("M00010100", "10.0.0.5"));
  quick.clock.advance(5000);
  assert(quick.registry.admit("M00010100", "10.0.0.9"));
  assertEquals(metrics.get("doors_relearned_total"), 1);
  assertThrows(() => setup({ relearnAfterMs: -1 }), RangeError);
});

Deno.test("door registry: an allowlisted ADDR=IP never moves; ADDR alone is learned; others refused", () => {
  const { registry: r, clock } = setup({ allowlist: ["M00010100=10.0.0.5", "M00010200"] });
  assert(!r.admit("M00010300", "10.0.0.7"), "not in the allowlist");
  assert(r.admit("M00010200", "10.0.0.6"), "listed without IP: learned");
  clock.advance(86_400_000);
  assert(!r.admit("M00010100", "10.0.0.9"), "fixed IP, silent for a day");
  assert(r.admit("M00010100", "10.0.0.5"));
  assert(r.admit("M00010200", "10.0.0.8"), "listed without IP and silent: re-learned");
  assertEquals(
    r.list().map((d) => [d.address, d.ip, d.mode, d.allowlisted]),
    [["M00010100", "10.0.0.5", "pinned", true], ["M00010200", "10.0.0.8", "learned", true]],
  );
  for (const bad of ["M1=300.1.1.1", "=10.0.0.1", "M1=10.0.0.1=x"]) {
    assertThrows(() => setup({ allowlist: [bad] }), RangeError);
  }
});

Deno.test("door registry: pin fixes learned doors (one or all); forget lets a door be learned afresh", async () => {
  const { registry: r, clock } = setup();
  assert(r.admit("M00010100", "10.0.0.5"));
  assert(r.admit("M00010200", "10.0.0.6"));
  assert(r.admit("M00010300", "10.0.0.7"));
  assertEquals((await r.pin("M0001010")).map((d) => [d.address, d.mode]), [[
    "M00010100",
    "pinned",
  ]]);
  assertEquals((await r.pin()).map((d) => d.address), ["M00010200", "M00010300"]);
  assertEquals(await r.pin(), [], "nothing left to pin");
  clock.advance(86_400_000);
  assert(!r.admit("M00010100", "10.0.0.9"), "pinned: never moves");
  assert(!r.admit("M00010300", "10.0.0.9"), "pinned by pin(): never moves");

  assert(await r.forget("M00010100"));
  assert(!(await r.forget("M00010100")), "already forgotten");
  assertEquals(r.get("M00010100"), undefined);
  assert(r.admit("M00010100", "10.0.0.9"), "forgotten: learned afresh at once");
  assertEquals(r.get("M00010100")?.mode, "learned");
});

Deno.test("door registry: forgetting an allowlisted door returns it to its entry", async () => {
  const { registry: r } = setup({ allowlist: ["M00010100=10.0.0.5", "M00010200"] });
  assert(r.admit("M00010200", "10.0.0.6"));
  await r.pin("M00010200");
  assert(await r.forget("M00010200"));
  assert(await r.forget("M00010100"));
  assertEquals(
    r.list().map((d) => [d.address, d.ip, d.mode]),
    [["M00010100", "10.0.0.5", "pinned"], ["M00010200", undefined, "learned"]],
  );
  assert(r.admit("M00010200", "10.0.0.9"));
});

Deno.test("door registry: bounded; new doors beyond maxDoors are refused, counted, warned once", () => {
  const metrics = new Metrics();
  const { registry: r, logger } = setup({ maxDoors: 2, metrics });
  assert(r.admit("M00010100", "10.0.0.1"));
  assert(r.admit("M00010200", "10.0.0.2"));
  assert(!r.admit("M00010300", "10.0.0.3"));
  assert(!r.admit("M00010400", "10.0.0.4"));
  assert(r.admit("M00010100", "10.0.0.1"), "known doors still speak");
  assertEquals([r.refused, metrics.get("doors_refused_total", { reason: "full" })], [2, 2]);
  assertEquals(r.list().length, 2);
  assertEquals(logger.records.filter((l) => l.level === "warn").map((l) => l.door), [
    "M00010300",
  ]);
  assertThrows(() => setup({ maxDoors: 0 }), RangeError);
});

Deno.test("door registry: the inventory keeps first/last heard, header form, audio law, needs-talk", () => {
  const { registry: r, clock } = setup();
  r.noteMedia("M00010100", { headerForm: 86 }); // unknown door: ignored
  assertEquals(r.list(), []);
  assert(r.admit("M00010100", "10.0.0.5"));
  clock.advance(30_000);
  r.heard("M00010100", "10.0.0.5");
  r.heard("M00010100", "10.0.0.99"); // not its IP: no sign of life
  r.noteMedia("M00010100", { headerForm: 86, law: "alaw" });
  r.noteMedia("M00010100", { headerForm: 99, law: "opus" }); // not a form or law: ignored
  r.setNeedsTalkForUnlock("M00010100");
  assertEquals(r.list(), [{
    address: "M00010100",
    ip: "10.0.0.5",
    mode: "learned",
    allowlisted: false,
    firstHeard: EPOCH,
    lastHeard: EPOCH + 30_000,
    headerForm: 86,
    law: "alaw",
    needsTalkForUnlock: true,
  }]);
  // heard() counts as a sign of life for relearning.
  clock.advance(59_000);
  assert(!r.admit("M00010100", "10.0.0.9"));
});

Deno.test("door registry: writes on learn and change, lastHeard at most once a minute per door", async () => {
  const store = new MemoryDoors();
  const { registry: r, clock } = setup({ store });
  await r.load();
  assert(r.admit("M00010100", "10.0.0.5"));
  await r.flush();
  for (let i = 0; i < 600; i++) {
    clock.advance(100);
    assert(r.admit("M00010100", "10.0.0.5"));
    r.heard("M00010100", "10.0.0.5");
    await r.flush(); // datagrams come one by one
  }
  assertEquals(store.saves.length, 2, "learned, then once after a minute");
  assertEquals(store.saves.map((s) => s.lastHeard), [EPOCH, EPOCH + 60_000]);
  r.noteMedia("M00010100", { headerForm: 77 });
  await r.flush();
  r.noteMedia("M00010100", { headerForm: 77 }); // no change
  await r.flush();
  assertEquals(store.saves.length, 3, "a change is written at once");
  r.setNeedsTalkForUnlock("M00010100");
  r.noteMedia("M00010100", { law: "ulaw" });
  await r.flush();
  assertEquals(store.saves.length, 4, "changes of one moment make one write");
  assertEquals(store.records.get("M00010100"), {
    address: "M00010100",
    ip: "10.0.0.5",
    mode: "learned",
    firstHeard: EPOCH,
    lastHeard: EPOCH + 60_000,
    headerForm: 77,
    law: "ulaw",
    needsTalkForUnlock: true,
  });
});

Deno.test("door registry: restored doors keep their pins and inventory; silence counts across a restart", async () => {
  const store = new MemoryDoors();
  const clock = new FakeClock();
  const wall = { now: EPOCH + 3_600_000 };
  store.records.set("M00010100", {
    address: "M00010100",
    ip: "10.0.0.5",
    mode: "learned",
    lastHeard: EPOCH, // an hour before the restart
    needsTalkForUnlock: false,
  });
  store.records.set("M00010200", {
    address: "M00010200",
    ip: "10.0.0.6",
    mode: "learned",
    lastHeard: wall.now - 1000, // a second before
    headerForm: 86,
    needsTalkForUnlock: true,
  });
  store.records.set("M00010300", {
    address: "M00010300",
    ip: "10.0.0.7",
    mode: "pinned",
    lastHeard: EPOCH,
    needsTalkForUnlock: false,
  });
  const r = new DoorRegistry({ clock, wallClock: () => wall.now, store });
  await r.load();
  assertEquals(r.list().map((d) => [d.address, d.mode, d.headerForm, d.needsTalkForUnlock]), [
    ["M00010100", "learned", undefined, false],
    ["M00010200", "learned", 86, true],
    ["M00010300", "pinned", undefined, false],
  ]);
  assert(r.admit("M00010100", "10.0.0.9"), "silent for an hour before the restart: re-learned");
  assert(!r.admit("M00010200", "10.0.0.9"), "heard a second before the restart");
  assert(!r.admit("M00010300", "10.0.0.9"), "pinned");
  clock.advance(59_000);
  assert(r.admit("M00010200", "10.0.0.9"), "60 s of silence in all");
  await r.flush();
  assertEquals(store.records.get("M00010100")?.ip, "10.0.0.9");
});

Deno.test("door registry: a forget or pin from another process applies on sync and is never overwritten", async () => {
  const store = new MemoryDoors();
  const { registry: r, clock } = setup({ store });
  await r.load();
  assert(r.admit("M00010100", "10.0.0.5"));
  assert(r.admit("M00010200", "10.0.0.6"));
  await r.flush();

  // The CLI forgets M00010100 and pins M00010200; the gateway has not synced yet and writes a
  // lastHeard of the forgotten door: the write fails on the version, the registry reloads.
  store.external("M00010100", undefined);
  store.external("M00010200", { ...store.records.get("M00010200")!, mode: "pinned" });
  clock.advance(60_000);
  assert(r.admit("M00010100", "10.0.0.5"));
  await r.flush();
  assertEquals(store.records.has("M00010100"), false, "the forget holds");
  assertEquals(r.get("M00010100"), undefined);
  assertEquals(r.get("M00010200")?.mode, "pinned");
  assert(r.admit("M00010100", "10.0.0.8"), "learned afresh");
  await r.flush();
  assertEquals(store.records.get("M00010100")?.ip, "10.0.0.8");

  // Without a write of its own, sync() takes the change in.
  store.external("M00010100", undefined);
  await r.sync();
  assertEquals(r.get("M00010100"), undefined);
  clock.advance(86_400_000);
  assert(!r.admit("M00010200", "10.0.0.9"), "pinned elsewhere: never moves");
});

Deno.test("door registry: start() polls the store's version every pollMs until close()", async () => {
  const store = new MemoryDoors();
  const { registry: r, clock } = setup({ store, pollMs: 1000 });
  await r.load();
  const reads = store.versionReads;
  r.start();
  clock.advance(999);
  assertEquals(store.versionReads, reads);
  clock.advance(1);
  assertEquals(store.versionReads, reads + 1);
  store.external("M00010100", {
    address: "M00010100",
    ip: "10.0.0.5",
    mode: "pinned",
    needsTalkForUnlock: false,
  });
  await new Promise((resolve) => setTimeout(resolve, 0));
  clock.advance(1000);
  await r.close();
  assertEquals(r.get("M00010100")?.mode, "pinned");
  assertEquals(clock.pending, 0, "no timer left");
});

Deno.test("door registry: allowlist entries win over the store; unlisted stored doors are ignored", async () => {
  const store = new MemoryDoors();
  for (const [address, ip] of [["M00010100", "10.0.0.99"], ["M00010300", "10.0.0.7"]]) {
    store.records.set(address!, {
      address: address!,
      ip: ip!,
      mode: "learned",
      lastHeard: EPOCH - 3_600_000,
      headerForm: 77,
      needsTalkForUnlock: false,
    });
  }
  const { registry: r } = setup({ store, allowlist: ["M00010100=10.0.0.5"] });
  await r.load();
  assertEquals(r.list().map((d) => [d.address, d.ip, d.mode, d.headerForm]), [
    ["M00010100", "10.0.0.5", "pinned", 77],
  ]);
  assert(!r.admit("M00010100", "10.0.0.99"), "the stored IP does not move an ADDR=IP");
  assert(!r.admit("M00010300", "10.0.0.7"), "not allowlisted");
  await r.flush();
  assertEquals(
    [store.records.get("M00010100")?.ip, store.records.get("M00010100")?.mode],
    ["10.0.0.5", "pinned"],
  );
});
