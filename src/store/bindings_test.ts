import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { BindingStore, toRoomKey } from "./bindings.ts";
import { hashToken } from "./token.ts";

const ROOM = "Y00010108090";
const DOOR_SIDE = "S00010108090";
const UID = "359608060142756";
const FIXED = () => new Date("2025-01-02T03:04:05.000Z");

async function withStore(fn: (store: BindingStore, kv: Deno.Kv) => Promise<void>): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  try {
    await fn(new BindingStore(kv, FIXED), kv);
  } finally {
    kv.close();
  }
}

async function rejectsWith(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof TypeError, `expected TypeError, got ${e}`);
    assert(re.test(e.message), e.message);
    return;
  }
  assert(false, `expected a rejection matching ${re}`);
}

Deno.test("bindings: add stores the binding and a token hash, never the token", async () => {
  await withStore(async (store, kv) => {
    const r = await store.add({ uid: UID, roomAddress: ROOM, community: "花苑" });
    assertEquals(r.binding, {
      uid: UID,
      roomAddress: ROOM,
      roomKey: "00010108090",
      community: "花苑",
      createdAt: "2025-01-02T03:04:05.000Z",
    });
    assertEquals(r.rotated, false);
    assert(/^[A-Za-z0-9_-]{43}$/.test(r.token));
    const raw = await kv.get<Record<string, unknown>>(["binding", "00010108090", UID]);
    assertEquals(raw.value?.tokenHash, await hashToken(r.token));
    assert(!JSON.stringify(raw.value).includes(r.token));
    assertEquals((await kv.get(["binding_by_uid", UID, "00010108090"])).value, true);
  });
});

Deno.test("bindings: Y and S addresses name the same room", async () => {
  await withStore(async (store) => {
    const { token } = await store.add({ uid: UID, roomAddress: ROOM, community: "花苑" });
    assert(await store.isBound(UID, DOOR_SIDE));
    assert(await store.isBound(UID, "00010108090"));
    assertEquals((await store.get(UID, "00010108090"))?.roomAddress, ROOM);
    assertEquals((await store.verify(UID, DOOR_SIDE, token))?.uid, UID);
    assertEquals(await store.uidsOf(DOOR_SIDE), [UID]);
    assertEquals(toRoomKey("bad"), undefined);
  });
});

Deno.test("bindings: re-adding rotates the token and keeps createdAt", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const first = await new BindingStore(kv, FIXED).add({ uid: UID, roomAddress: ROOM });
    const later = new BindingStore(kv, () => new Date("2026-01-01T00:00:00.000Z"));
    const second = await later.add({ uid: UID, roomAddress: DOOR_SIDE, community: "花苑" });
    assertEquals(second.rotated, true);
    assert(second.token !== first.token);
    assertEquals(second.binding.createdAt, "2025-01-02T03:04:05.000Z");
    assertEquals(second.binding.roomAddress, DOOR_SIDE);
    assertEquals(second.binding.community, "花苑");
    assertEquals(await later.verify(UID, ROOM, first.token), undefined);
    assertEquals((await later.verify(UID, ROOM, second.token))?.community, "花苑");
    assertEquals((await later.list()).length, 1);
  } finally {
    kv.close();
  }
});

Deno.test("bindings: several phones per room, several rooms per phone, own tokens", async () => {
  await withStore(async (store) => {
    const a1 = await store.add({ uid: "a", roomAddress: ROOM, community: "花苑" });
    const b1 = await store.add({ uid: "b", roomAddress: ROOM, community: "花苑" });
    const a2 = await store.add({ uid: "a", roomAddress: "Y00010108091", community: "花苑" });
    assertEquals(await store.uidsOf(ROOM), ["a", "b"]);
    assertEquals(await store.roomsOf("a"), ["00010108090", "00010108091"]);
    assertEquals(await store.roomsOf("b"), ["00010108090"]);
    assertEquals((await store.list({ room: ROOM })).map((b) => b.uid), ["a", "b"]);
    assertEquals((await store.list({ uid: "a" })).map((b) => b.roomKey), [
      "00010108090",
      "00010108091",
    ]);
    assertEquals((await store.list({ uid: "a", room: "Y00010108091" })).length, 1);
    assertEquals((await store.list({ uid: "b", room: "Y00010108091" })).length, 0);
    assertEquals((await store.list()).length, 3);
    // Each token opens only its own binding.
    assert(await store.verify("a", ROOM, a1.token));
    assert(await store.verify("a", "Y00010108091", a2.token));
    assertEquals(await store.verify("a", "Y00010108091", a1.token), undefined);
    assertEquals(await store.verify("b", ROOM, a1.token), undefined);
    assert(await store.verify("b", ROOM, b1.token));
  });
});

Deno.test("bindings: verify rejects unknown or malformed input without throwing", async () => {
  await withStore(async (store) => {
    const { token } = await store.add({ uid: UID, roomAddress: ROOM, community: "" });
    assertEquals(await store.verify("other", ROOM, token), undefined);
    assertEquals(await store.verify(UID, "Y00010108099", token), undefined);
    assertEquals(await store.verify(UID, "garbage", token), undefined);
    assertEquals(await store.verify("", ROOM, token), undefined);
    assertEquals(await store.verify("x".repeat(5000), ROOM, token), undefined);
    assertEquals(await store.verify(UID, ROOM, ""), undefined);
    assertEquals(await store.verify(UID, ROOM, undefined as unknown as string), undefined);
    assertEquals(await store.get("", ROOM), undefined);
    assertEquals(await store.isBound(UID, "nope"), false);
    assertEquals(await store.roomsOf(""), []);
    assertEquals(await store.uidsOf("nope"), []);
    assertEquals(await store.list({ room: "nope" }), []);
  });
});

Deno.test("bindings: remove one room or all of a uid's rooms", async () => {
  await withStore(async (store, kv) => {
    await store.add({ uid: "a", roomAddress: ROOM });
    await store.add({ uid: "a", roomAddress: "Y00010108091" });
    await store.add({ uid: "b", roomAddress: ROOM });
    assertEquals(await store.remove("a", DOOR_SIDE), 1);
    assertEquals(await store.remove("a", ROOM), 0);
    assertEquals(await store.roomsOf("a"), ["00010108091"]);
    assertEquals(await store.remove("a"), 1);
    assertEquals(await store.remove("a"), 0);
    assertEquals(await store.remove("nobody"), 0);
    assertEquals(await store.uidsOf(ROOM), ["b"]);
    const index = [];
    for await (const e of kv.list({ prefix: ["binding_by_uid", "a"] })) index.push(e.key);
    assertEquals(index, []);
    await rejectsWith(() => store.remove("b", "Y1"), /^Cannot unbind "b" from "Y1": /);
  });
});

Deno.test("bindings: bad input is a TypeError naming the problem", async () => {
  await withStore(async (store) => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ uid: "", roomAddress: ROOM }, /uid is empty/],
      [{ uid: "a b", roomAddress: ROOM }, /printable/],
      [{ uid: "a\u0000", roomAddress: ROOM }, /printable/],
      [{ uid: "x".repeat(65), roomAddress: ROOM }, /longer than 64/],
      [{ uid: 123, roomAddress: ROOM }, /uid must be a string/],
      [{ uid: "a", roomAddress: "Y0001010809" }, /roomAddress must be a letter followed by 11/],
      [{ uid: "a", roomAddress: "Y000101080900" }, /roomAddress/],
      [{ uid: "a", roomAddress: "00010108090" }, /roomAddress/],
      [{ uid: "a", roomAddress: ROOM, community: "花".repeat(65) }, /community is longer/],
      [{ uid: "a", roomAddress: ROOM, community: "a\nb" }, /control/],
    ];
    for (const [input, re] of cases) {
      await rejectsWith(() => store.add(input as never), re);
      await rejectsWith(() => store.add(input as never), /^Cannot bind .*: /);
    }
    assertEquals(await store.list(), []);
    // Limits are inclusive, counted in characters.
    await store.add({ uid: "x".repeat(64), roomAddress: ROOM, community: "花".repeat(64) });
  });
});

Deno.test("bindings: import checks everything first, then binds with tokens", async () => {
  await withStore(async (store) => {
    await rejectsWith(
      () =>
        store.import([
          { uid: "a", room: ROOM, community: "花苑" },
          { uid: "b", roomAddress: "bad", community: "花苑" },
        ]),
      /^Cannot bind entry 2: roomAddress/,
    );
    await rejectsWith(
      () => store.import([{ uid: "a", room: ROOM }, { uid: "a", roomAddress: DOOR_SIDE }]),
      /entry 2: "a" is bound to room 00010108090 by entry 1/,
    );
    await rejectsWith(() => store.import([null as never]), /entry 1: expected an object/);
    await rejectsWith(
      () => store.import([{ uid: "a", room: ROOM, roomAddress: "Y00010108091" }]),
      /differ/,
    );
    assertEquals(await store.list(), []);
    await store.add({ uid: "b", roomAddress: ROOM });
    const results = await store.import([
      { uid: "a", room: ROOM, community: "花苑" },
      { uid: "b", roomAddress: ROOM, community: "花苑" },
    ]);
    assertEquals(results.map((r) => [r.binding.uid, r.rotated]), [["a", false], ["b", true]]);
    for (const r of results) assert(await store.verify(r.binding.uid, ROOM, r.token!));
  });
});

Deno.test("bindings: export, without and with token hashes, in the format import reads", async () => {
  await withStore(async (store) => {
    const { token } = await store.add({ uid: UID, roomAddress: ROOM, community: "花苑" });
    await store.add({ uid: "b", roomAddress: "Y00010208050" });
    assertEquals(await store.export({ uid: UID }), [
      { uid: UID, roomAddress: ROOM, community: "花苑", createdAt: FIXED().toISOString() },
    ]);
    const withHashes = await store.export({}, { withTokenHashes: true });
    assertEquals(withHashes.map((e) => e.uid), [UID, "b"]);
    assertEquals(withHashes[0]!.tokenHash, await hashToken(token));
  });
});

Deno.test("bindings: import with tokenHash keeps the phone's token and createdAt", async () => {
  const kv = await Deno.openKv(":memory:");
  const other = await Deno.openKv(":memory:");
  try {
    const source = new BindingStore(kv, FIXED);
    const { token } = await source.add({ uid: UID, roomAddress: ROOM, community: "花苑" });
    const exported = await source.export({}, { withTokenHashes: true });
    // Another box, another day.
    const target = new BindingStore(other, () => new Date("2030-01-01T00:00:00.000Z"));
    const results = await target.import(JSON.parse(JSON.stringify(exported)));
    assertEquals(results.map((r) => [r.token, r.rotated]), [[undefined, false]]);
    assert(await target.verify(UID, ROOM, token), "the old token logs in");
    assertEquals((await target.get(UID, ROOM))?.createdAt, FIXED().toISOString());
    // Without the hash: a new token, the old one no longer works.
    const fresh = await target.import([{ uid: UID, roomAddress: ROOM, community: "花苑" }]);
    assert(fresh[0]!.token && await target.verify(UID, ROOM, fresh[0]!.token));
    assertEquals(await target.verify(UID, ROOM, token), undefined);
    await rejectsWith(
      () => target.import([{ uid: UID, roomAddress: ROOM, tokenHash: "ABC" }]),
      /^Cannot bind entry 1: tokenHash must be 64 lowercase hex digits/,
    );
    await rejectsWith(
      () => target.import([{ uid: UID, roomAddress: ROOM, createdAt: "yesterday" }]),
      /^Cannot bind entry 1: createdAt must be an ISO 8601 time/,
    );
  } finally {
    kv.close();
    other.close();
  }
});

Deno.test("bindings: concurrent adds of one (uid, room) leave one binding whose token works", async () => {
  await withStore(async (store) => {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => store.add({ uid: UID, roomAddress: ROOM })),
    );
    assertEquals(results.filter((r) => !r.rotated).length, 1);
    assertEquals((await store.list()).length, 1);
    const valid = [];
    for (const r of results) if (await store.verify(UID, ROOM, r.token)) valid.push(r);
    assertEquals(valid.length, 1);
  });
});

Deno.test("bindings: survive closing and reopening the database", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let kv = await Deno.openKv(`${dir}/b.kv`);
    const { token } = await new BindingStore(kv).add({ uid: UID, roomAddress: ROOM });
    kv.close();
    kv = await Deno.openKv(`${dir}/b.kv`);
    try {
      assert(await new BindingStore(kv).verify(UID, ROOM, token));
    } finally {
      kv.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
