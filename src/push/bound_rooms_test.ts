import { assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock, nullLogger } from "../testing/mod.ts";
import { type BoundPhone, BoundRooms } from "./bound_rooms.ts";

Deno.test("bound rooms: sleepers are the bound phones not connected; DND ones are not woken", async () => {
  const clock = new FakeClock();
  let bindings: BoundPhone[] = [
    { uid: "a", roomKey: "r1", community: "花苑", roomAddress: "Y1" },
    { uid: "b", roomKey: "r1", community: "花苑", roomAddress: "Y1" },
  ];
  let version = "1";
  const connected = new Set<string>();
  const dnd = new Set<string>();
  const rooms = new BoundRooms({
    list: () => Promise.resolve(bindings),
    version: () => Promise.resolve(version),
    isConnected: (uid) => connected.has(uid),
    inDnd: (uid) => dnd.has(uid),
    anyWakes: true,
    clock,
    logger: nullLogger,
    pollMs: 1000,
  });
  await rooms.start();
  assertEquals(rooms.sleepersOf("r1"), { uids: ["a", "b"], community: "花苑", roomAddress: "Y1" });
  assertEquals(rooms.sleepersOf("r2"), { uids: [], community: "" });
  assertEquals([rooms.canWake("r1"), rooms.canWake("r2")], [true, false]);
  connected.add("a");
  dnd.add("b");
  assertEquals(rooms.sleepersOf("r1").uids, ["b"]);
  assertEquals(rooms.canWake("r1"), false, "the only sleeper is in do-not-disturb");
  // A new binding is seen once the marker moves (next poll).
  bindings = [...bindings, { uid: "c", roomKey: "r1", community: "花苑", roomAddress: "Y1" }];
  version = "2";
  clock.advance(1000);
  await rooms.close();
  assertEquals(rooms.sleepersOf("r1").uids, ["b", "c"]);
  assertEquals(rooms.canWake("r1"), true);
});

Deno.test("bound rooms without the webhook: only a sleeper with a Web Push subscription wakes", async () => {
  const clock = new FakeClock();
  let bindings: BoundPhone[] = [
    { uid: "a", roomKey: "r1", community: "", roomAddress: "Y1" },
    { uid: "b", roomKey: "r1", community: "", roomAddress: "Y1" },
  ];
  const connected = new Set<string>();
  const dnd = new Set<string>();
  let version = "1";
  const rooms = new BoundRooms({
    list: () => Promise.resolve(bindings),
    version: () => Promise.resolve(version),
    isConnected: (uid) => connected.has(uid),
    inDnd: (uid) => dnd.has(uid),
    clock,
    logger: nullLogger,
  });
  await rooms.refresh();
  assertEquals(rooms.canWake("r1"), false, "bound, asleep, but nothing can wake them");
  bindings = [bindings[0]!, { ...bindings[1]!, subscribed: true }];
  version = "2";
  await rooms.refresh();
  assertEquals(rooms.canWake("r1"), true);
  assertEquals(rooms.toWake("r1").uids, ["a", "b"]);
  dnd.add("b");
  assertEquals(rooms.canWake("r1"), false, "the subscribed phone is in do-not-disturb");
  assertEquals(rooms.toWake("r1").uids, ["a"]);
  dnd.clear();
  connected.add("b");
  assertEquals(rooms.canWake("r1"), false, "the subscribed phone is online: the usual flow");
  await rooms.close();
});
