import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { BindingStore } from "./bindings.ts";
import {
  MAX_ENDPOINT_LENGTH,
  MAX_SUBSCRIPTIONS_PER_BINDING,
  pushSubscriptionProblem,
  PushSubscriptionStore,
} from "./push_subscriptions.ts";
import { vapidKeysOf } from "./vapid_keys.ts";

const ROOM = "Y00010108090";
const KEY = "00010108090";
const UID = "359608060142756";
const P256DH =
  "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH = "BTBZMqHH6r4Tts7J_aSIgg";
const sub = (n: number | string) => ({
  endpoint: `https://push.example.net/send/${n}`,
  p256dh: P256DH,
  auth: AUTH,
});

async function withStores(
  fn: (b: BindingStore, s: PushSubscriptionStore, kv: Deno.Kv) => Promise<void>,
): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  let t = Date.parse("2026-01-01T00:00:00Z");
  const now = () => new Date(t++);
  try {
    await fn(new BindingStore(kv, now), new PushSubscriptionStore(kv, now), kv);
  } finally {
    kv.close();
  }
}

Deno.test("push subscriptions: kept per binding, only while the binding exists", async () => {
  await withStores(async (bindings, subs) => {
    assertEquals(await subs.add(UID, KEY, sub(1)), { ok: false, reason: "not_bound" });
    await bindings.add({ uid: UID, roomAddress: ROOM });
    const v0 = await subs.version();
    assertEquals(await subs.add(UID, KEY, sub(1)), { ok: true, count: 1, replaced: 0 });
    assert((await subs.version()) !== v0, "the marker moves");
    // The same endpoint again: refreshed, not doubled.
    assertEquals(await subs.add(UID, KEY, sub(1)), { ok: true, count: 1, replaced: 0 });
    assertEquals((await subs.of(UID, KEY)).map((s) => s.endpoint), [sub(1).endpoint]);
    assertEquals(await subs.remove(UID, KEY, sub(1).endpoint), true);
    assertEquals(await subs.remove(UID, KEY, sub(1).endpoint), false);
    assertEquals(await subs.of(UID, KEY), []);
  });
});

Deno.test("push subscriptions: bounded per binding, the oldest replaced", async () => {
  await withStores(async (bindings, subs) => {
    await bindings.add({ uid: UID, roomAddress: ROOM });
    for (let i = 0; i < MAX_SUBSCRIPTIONS_PER_BINDING + 2; i++) {
      const r = await subs.add(UID, KEY, sub(i));
      assert(r.ok);
      assertEquals(r.count, Math.min(i + 1, MAX_SUBSCRIPTIONS_PER_BINDING));
    }
    const kept = (await subs.of(UID, KEY)).map((s) => s.endpoint).sort();
    assertEquals(
      kept,
      [2, 3, 4, 5].map((i) => sub(i).endpoint).sort(),
    );
  });
});

Deno.test("push subscriptions: removing or rotating the binding removes them", async () => {
  await withStores(async (bindings, subs) => {
    await bindings.add({ uid: UID, roomAddress: ROOM });
    await bindings.add({ uid: "other", roomAddress: ROOM });
    await subs.add(UID, KEY, sub(1));
    await subs.add("other", KEY, sub(2));
    const session = await bindings.tokenIdOf(UID, ROOM);
    await bindings.add({ uid: UID, roomAddress: ROOM }); // rotated: a new token
    assertEquals(await subs.of(UID, KEY), []);
    assertEquals((await subs.list()).map((s) => s.uid), ["other"]);
    // The old token's session can no longer subscribe.
    assertEquals(await subs.add(UID, KEY, sub(3), session), { ok: false, reason: "not_bound" });
    assertEquals([...await subs.subscribedBindings()], [`${KEY}|other`]);
    assertEquals(await bindings.remove("other"), 1);
    assertEquals(await subs.list(), []);
  });
});

Deno.test("push subscriptions: an import that keeps the token keeps them", async () => {
  await withStores(async (bindings, subs) => {
    await bindings.add({ uid: UID, roomAddress: ROOM });
    await subs.add(UID, KEY, sub(1));
    const [entry] = await bindings.export({}, { withTokenHashes: true });
    await bindings.import([entry!]);
    assertEquals((await subs.of(UID, KEY)).length, 1);
  });
});

Deno.test("push subscriptions: hostile input is refused with a reason", () => {
  const ok = sub(1);
  assertEquals(pushSubscriptionProblem(ok), undefined);
  const cases: [Record<string, unknown>, string][] = [
    [{ endpoint: "http://push.example.net/x" }, "https URL"],
    [{ endpoint: "ftp://push.example.net/x" }, "https URL"],
    [{ endpoint: "not a url" }, "URL"],
    [{ endpoint: "https://" + "a".repeat(MAX_ENDPOINT_LENGTH) }, "longer"],
    [{ endpoint: "https://u:p@push.example.net/x" }, "credentials"],
    [{ endpoint: "https://127.0.0.1/x" }, "DNS name"],
    [{ endpoint: "https://[::1]/x" }, "DNS name"],
    [{ endpoint: "https://localhost/x" }, "DNS name"],
    [{ endpoint: 42 }, "URL"],
    [{ p256dh: "abc" }, "p256dh"],
    [{ p256dh: P256DH + "AA" }, "p256dh"],
    [{ p256dh: "!" + P256DH.slice(1) }, "p256dh"],
    [{ auth: "AAAA" }, "auth"],
    [{ auth: null }, "auth"],
  ];
  for (const [change, why] of cases) {
    const problem = pushSubscriptionProblem({ ...ok, ...change } as typeof ok);
    assert(problem?.includes(why), `${JSON.stringify(change)}: ${problem}`);
  }
  // The tests' loopback push service, with --push-allow-http on.
  assertEquals(
    pushSubscriptionProblem({ ...ok, endpoint: "http://127.0.0.1:9/p/1" }, { allowHttp: true }),
    undefined,
  );
});

Deno.test("vapid keys: made once, then read back", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    let made = 0;
    const create = () => Promise.resolve({ n: ++made });
    assertEquals(await vapidKeysOf(kv, create), { n: 1 });
    assertEquals(await vapidKeysOf(kv, create), { n: 1 });
    assertEquals(made, 1);
  } finally {
    kv.close();
  }
});
