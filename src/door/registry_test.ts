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

/** A call from `address` at `ip` that completed the handshake: admitted, then learned. */
function answered(r: DoorRegistry, address: string, ip: string): boolean {
  return r.admit(address, ip) !== "refused" && r.learn(address, ip);
}

Deno.test("door registry: NS asks and other single packets never create or move an entry", () => {
  const { registry: r, logger } = setup();
  // A flood of NS asks for new addresses: served as unknown, nothing stored.
  for (let i = 0; i < 1000; i++) {
    assertEquals(r.admit(`M0001${String(i).padStart(4, "0")}`, "10.0.0.66"), "unknown");
  }
  assertEquals([r.list().length, logger.records.length], [0, 0]);
  // The first answered call learns the door; a stranger's packets do not move it.
  assert(answered(r, "M00010100", "10.0.0.5"));
  assertEquals(r.admit("M00010100", "10.0.0.5"), "known");
  assertEquals(r.admit("M00010100", "10.0.0.66"), "refused");
  assertEquals(r.get("M00010100")?.ip, "10.0.0.5");
  assertEquals(r.list().length, 1);
});

Deno.test("door registry: a hijack attempt on an unseen address does not pin it to the attacker", () => {
  const { registry: r } = setup();
  // The attacker's NS ask claims the real door's address first: nothing is learned.
  assertEquals(r.admit("M00010100", "10.0.0.66"), "unknown");
  assertEquals(r.get("M00010100"), undefined);
  // The real door then calls and its call is answered: it is the one learned.
  assert(answered(r, "M00010100", "10.0.0.5"));
  assertEquals(r.get("M00010100")?.ip, "10.0.0.5");
});

Deno.test("door registry: learned on an answered call, logged in display form; another IP is a conflict", () => {
  const metrics = new Metrics();
  const events: unknown[] = [];
  const { registry: r, logger } = setup({
    metrics,
    events: { emit: (e) => events.push(e), wants: () => true },
  });
  assert(answered(r, "M00010100", "10.0.0.5"));
  assert(answered(r, "M00010100", "10.0.0.5"));
  assertEquals(r.admit("M00010100", "10.0.0.66"), "refused");
  assert(!r.learn("M00010100", "10.0.0.66"), "a handshake from a second IP moves nothing");
  assert(answered(r, "S00010108090", "10.0.0.6"));
  assertEquals(
    logger.records.map((l) => [l.level, l.msg, l.door, l.ip]),
    [
      ["info", "door learned", "M00010100", "10.0.0.5"],
      [
        "warn",
        "door address conflict: its address is claimed from a second IP",
        "M00010100",
        "10.0.0.66",
      ],
      ["info", "door learned", "S00010108090", "10.0.0.6"],
    ],
  );
  assertEquals(metrics.get("door_address_conflicts_total"), 2);
  assertEquals(events, [{
    type: "door_conflict",
    at: EPOCH,
    address: "M00010100",
    knownIp: "10.0.0.5",
    claimedIp: "10.0.0.66",
  }]);
});

Deno.test("door registry: a conflict is logged at warn with both IPs and what to run, once a minute", () => {
  const { registry: r, logger, clock } = setup({ relearnAfterMs: 60_000 });
  answered(r, "M00010100", "10.0.0.5");
  for (let i = 0; i < 20; i++) r.admit("M00010100", "10.0.0.66");
  const conflicts = () => logger.records.filter((l) => String(l.msg).includes("conflict"));
  assertEquals(conflicts().length, 1);
  const line = conflicts()[0]!;
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
  assertEquals(conflicts().length, 2);
});

Deno.test("door registry: a door not on the allowlist is logged with the entry to add", () => {
  const { registry: r, logger } = setup({ allowlist: ["M00010100=10.0.0.5"] });
  assertEquals(r.admit("M00010200", "10.0.0.7"), "refused");
  assertEquals(r.admit("M00010200", "10.0.0.7"), "refused");
  assert(!r.learn("M00010200", "10.0.0.7"));
  const lines = logger.records.filter((l) => String(l.msg).includes("allowlist"));
  assertEquals(lines.map((l) => [l.door, l.ip, l.hint]), [[
    "M00010200",
    "10.0.0.7",
    "add M00010200=10.0.0.7 to --door-allowlist (INTERCOM_DOOR_ALLOWLIST)",
  ]]);
});

Deno.test("door registry: a learned door silent for relearnAfterMs is re-learned by an answered call from its new IP", () => {
  const { registry: r, clock, logger } = setup();
  assert(answered(r, "M00010100", "10.0.0.5"));
  clock.advance(59_999);
  assertEquals(r.admit("M00010100", "10.0.0.9"), "refused", "default 60 s: not yet");
  // The door keeps speaking: its silence starts again.
  assertEquals(r.admit("M00010100", "10.0.0.5"), "known");
  clock.advance(59_999);
  assertEquals(r.admit("M00010100", "10.0.0.9"), "refused", "heard 59.999 s ago");
  clock.advance(1);
  assertEquals(r.admit("M00010100", "10.0.0.9"), "unknown", "silent for 60 s: learnable");
  assertEquals(r.get("M00010100")?.ip, "10.0.0.5", "but not moved by a packet");
  assert(r.learn("M00010100", "10.0.0.9"), "its call completed: re-learned");
  assertEquals(r.admit("M00010100", "10.0.0.5"), "refused", "the old IP is now the stranger");
  assertEquals(r.get("M00010100")?.ip, "10.0.0.9");
  const warn = logger.records.filter((l) => l.msg === "door re-learned at a new IP");
  assertEquals(warn.map((l) => [l.level, l.door, l.ip, l.oldIp, l.silentS]), [
    ["warn", "M00010100", "10.0.0.9", "10.0.0.5", 60],
  ]);
});

Deno.test("door registry: relearnAfterMs 0 never re-learns; a shorter one re-learns sooner", () => {
  const never = setup({ relearnAfterMs: 0 });
  assert(answered(never.registry, "M00010100", "10.0.0.5"));
  never.clock.advance(7 * 86_400_000);
  assert(!answered(never.registry, "M00010100", "10.0.0.9"));
  assertEquals(never.registry.get("M00010100")?.ip, "10.0.0.5");

  const metrics = new Metrics();
  const quick = setup({ relearnAfterMs: 5000, metrics });
  assert(answered(quick.registry, "M00010100", "10.0.0.5"));
  quick.clock.advance(5000);
  assert(answered(quick.registry, "M00010100", "10.0.0.9"));
  assertEquals(metrics.get("doors_relearned_total"), 1);
  assertThrows(() => setup({ relearnAfterMs: -1 }), RangeError);
});

Deno.test("door registry: an allowlisted ADDR=IP never moves; ADDR alone gets its IP from an answered call; others refused", () => {
  const { registry: r, clock } = setup({ allowlist: ["M00010100=10.0.0.5", "M00010200"] });
  assertEquals(r.admit("M00010300", "10.0.0.7"), "refused", "not in the allowlist");
  assertEquals(r.admit("M00010200", "10.0.0.66"), "unknown", "listed without IP: learnable");
  assertEquals(r.get("M00010200")?.ip, undefined, "an NS ask gives it no IP");
  assert(r.learn("M00010200", "10.0.0.6"), "its first answered call does");
  assertEquals(r.admit("M00010100", "10.0.0.5"), "known", "configured: known at once");
  clock.advance(86_400_000);
  assertEquals(r.admit("M00010100", "10.0.0.9"), "refused", "fixed IP, silent for a day");
  assertEquals(r.admit("M00010100", "10.0.0.5"), "known");
  assert(answered(r, "M00010200", "10.0.0.8"), "listed without IP and silent: re-learned");
  assertEquals(
    r.list().map((d) => [d.address, d.ip, d.mode, d.allowlisted]),
    [["M00010100", "10.0.0.5", "pinned", true], ["M00010200", "10.0.0.8", "learned", true]],
  );
  for (const bad of ["M1=300.1.1.1", "=10.0.0.1", "M1=10.0.0.1=x"]) {
    assertThrows(() => setup({ allowlist: [bad] }), RangeError);
  }
});

Deno.test("door registry: a pinned building learns no new address; a forgotten door may be learned again", async () => {
  const { registry: r, logger } = setup();
  assert(answered(r, "M00010100", "10.0.0.5"));
  assert(answered(r, "M00010200", "10.0.0.6"));
  await r.pin("M00010100");
  assertEquals(r.admit("M00010300", "10.0.0.7"), "unknown", "one door still learned: open");
  await r.pin();
  assertEquals(r.admit("M00010300", "10.0.0.7"), "refused", "every door pinned: closed");
  assert(!r.learn("M00010300", "10.0.0.7"));
  assertEquals(r.get("M00010300"), undefined);
  const line = logger.records.find((l) => String(l.msg).includes("every known door is pinned"));
  assertEquals([line?.door, line?.ip], ["M00010300", "10.0.0.7"]);
  assert(await r.forget("M00010200"));
  assertEquals(r.admit("M00010200", "10.0.0.9"), "unknown", "a replaced door: learnable");
  assertEquals(r.admit("M00010300", "10.0.0.7"), "refused", "still no new address");
  assert(r.learn("M00010200", "10.0.0.9"));
  assertEquals(r.get("M00010200")?.mode, "pinned", "learned into a pinned building: pinned");
  assertEquals(r.admit("M00010300", "10.0.0.7"), "refused", "the building stays closed");
});

Deno.test("door registry: pin fixes learned doors (one or all); forget lets a door be learned afresh", async () => {
  const { registry: r, clock } = setup();
  assert(answered(r, "M00010100", "10.0.0.5"));
  assert(answered(r, "M00010200", "10.0.0.6"));
  assert(answered(r, "M00010300", "10.0.0.7"));
  assertEquals((await r.pin("M0001010")).map((d) => [d.address, d.mode]), [[
    "M00010100",
    "pinned",
  ]]);
  assertEquals((await r.pin()).map((d) => d.address), ["M00010200", "M00010300"]);
  assertEquals(await r.pin(), [], "nothing left to pin");
  clock.advance(86_400_000);
  assertEquals(r.admit("M00010100", "10.0.0.9"), "refused", "pinned: never moves");
  assertEquals(r.admit("M00010300", "10.0.0.9"), "refused", "pinned by pin(): never moves");

  assert(await r.forget("M00010100"));
  assert(!(await r.forget("M00010100")), "already forgotten");
  assertEquals(r.get("M00010100"), undefined);
  assert(answered(r, "M00010100", "10.0.0.9"), "forgotten: learned afresh on its next call");
});

Deno.test("door registry: forgetting an allowlisted door returns it to its entry", async () => {
  const { registry: r } = setup({ allowlist: ["M00010100=10.0.0.5", "M00010200"] });
  assert(answered(r, "M00010200", "10.0.0.6"));
  await r.pin("M00010200");
  assert(await r.forget("M00010200"));
  assert(await r.forget("M00010100"));
  assertEquals(
    r.list().map((d) => [d.address, d.ip, d.mode]),
    [["M00010100", "10.0.0.5", "pinned"], ["M00010200", undefined, "learned"]],
  );
  assert(answered(r, "M00010200", "10.0.0.9"));
});

Deno.test("door registry: bounded; new doors beyond maxDoors are refused, counted, warned once", () => {
  const metrics = new Metrics();
  const { registry: r, logger } = setup({ maxDoors: 2, metrics });
  assert(answered(r, "M00010100", "10.0.0.1"));
  assert(answered(r, "M00010200", "10.0.0.2"));
  assertEquals(r.admit("M00010300", "10.0.0.3"), "refused");
  assert(!answered(r, "M00010400", "10.0.0.4"));
  assertEquals(r.admit("M00010100", "10.0.0.1"), "known", "known doors still speak");
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
  assert(answered(r, "M00010100", "10.0.0.5"));
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
  assertEquals(r.admit("M00010100", "10.0.0.9"), "refused");
});

Deno.test("door registry: writes on learn and change, lastHeard at most once a minute per door", async () => {
  const store = new MemoryDoors();
  const { registry: r, clock } = setup({ store });
  await r.load();
  assert(answered(r, "M00010100", "10.0.0.5"));
  await r.flush();
  for (let i = 0; i < 600; i++) {
    clock.advance(100);
    assertEquals(r.admit("M00010100", "10.0.0.5"), "known");
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
  assert(answered(r, "M00010100", "10.0.0.9"), "silent for an hour before the restart: re-learned");
  assertEquals(r.admit("M00010200", "10.0.0.9"), "refused", "heard a second before the restart");
  assertEquals(r.admit("M00010300", "10.0.0.9"), "refused", "pinned");
  clock.advance(59_000);
  assert(answered(r, "M00010200", "10.0.0.9"), "60 s of silence in all");
  await r.flush();
  assertEquals(store.records.get("M00010100")?.ip, "10.0.0.9");
});

Deno.test("door registry: a forget or pin from another process applies on sync and is never overwritten", async () => {
  const store = new MemoryDoors();
  const { registry: r, clock } = setup({ store });
  await r.load();
  assert(answered(r, "M00010100", "10.0.0.5"));
  assert(answered(r, "M00010200", "10.0.0.6"));
  await r.flush();

  // The CLI forgets M00010100 and pins M00010200; the gateway has not synced yet and writes a
  // lastHeard of the forgotten door: the write fails on the version, the registry reloads.
  store.external("M00010100", undefined);
  store.external("M00010200", { ...store.records.get("M00010200")!, mode: "pinned" });
  clock.advance(60_000);
  assertEquals(r.admit("M00010100", "10.0.0.5"), "known");
  await r.flush();
  assertEquals(store.records.has("M00010100"), false, "the forget holds");
  assertEquals(r.get("M00010100"), undefined);
  assertEquals(r.get("M00010200")?.mode, "pinned");
  assert(answered(r, "M00010100", "10.0.0.8"), "learned afresh");
  await r.flush();
  assertEquals(store.records.get("M00010100")?.ip, "10.0.0.8");

  // Without a write of its own, sync() takes the change in.
  store.external("M00010100", undefined);
  await r.sync();
  assertEquals(r.get("M00010100"), undefined);
  clock.advance(86_400_000);
  assertEquals(r.admit("M00010200", "10.0.0.9"), "refused", "pinned elsewhere: never moves");
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
  assertEquals(
    r.admit("M00010100", "10.0.0.99"),
    "refused",
    "the stored IP does not move an ADDR=IP",
  );
  assertEquals(r.admit("M00010300", "10.0.0.7"), "refused", "not allowlisted");
  await r.flush();
  assertEquals(
    [store.records.get("M00010100")?.ip, store.records.get("M00010100")?.mode],
    ["10.0.0.5", "pinned"],
  );
});

Deno.test("door registry: media seen before the door is learned is kept for it, at that IP only", () => {
  const { registry: r } = setup();
  r.noteMedia("M00010100", { headerForm: 86 }, "10.0.0.5"); // the call's video, before its handshake
  r.noteMedia("M00010200", { headerForm: 86 }, "10.0.0.66");
  assertEquals(r.list(), []);
  assert(answered(r, "M00010100", "10.0.0.5"));
  assert(answered(r, "M00010200", "10.0.0.6"));
  assertEquals(r.list().map((d) => [d.address, d.headerForm]), [
    ["M00010100", 86],
    ["M00010200", undefined],
  ]);
});
