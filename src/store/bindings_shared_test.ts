/**
 * `BindingStore` with a `SharedBindings` port (several gateways): changes go to the shared store
 * first (compare-and-set on its revision), then to the local KV; reads stay local; an unreachable
 * shared store refuses the change with a clear message and leaves the local copy alone.
 */

import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import {
  BindingStore,
  BindingsUnavailableError,
  type SharedBindings,
  type StoredBinding,
} from "./bindings.ts";
import { PushSubscriptionStore } from "./push_subscriptions.ts";

const ROOM = "Y00010108090";

class MemoryShared implements SharedBindings {
  readonly map = new Map<string, { value: StoredBinding | null; revision: number }>();
  seq = 0;
  down = false;
  /** Conflicts to fake before the next put succeeds. */
  conflicts = 0;
  #check(): void {
    if (this.down) throw new Error("no answer from the hub through the leaf node");
  }
  get(roomKey: string, uid: string) {
    this.#check();
    return Promise.resolve(this.map.get(`${roomKey}/${uid}`) ?? { value: null, revision: 0 });
  }
  put(value: StoredBinding, revision: number) {
    this.#check();
    const key = `${value.roomKey}/${value.uid}`;
    if (this.conflicts > 0) {
      this.conflicts--;
      return Promise.resolve(false);
    }
    if ((this.map.get(key)?.revision ?? 0) !== revision) return Promise.resolve(false);
    this.map.set(key, { value, revision: ++this.seq });
    return Promise.resolve(true);
  }
  delete(roomKey: string, uid: string, revision: number) {
    this.#check();
    const key = `${roomKey}/${uid}`;
    if ((this.map.get(key)?.revision ?? 0) !== revision) return Promise.resolve(false);
    this.map.set(key, { value: null, revision: ++this.seq });
    return Promise.resolve(true);
  }
  roomsOf(uid: string) {
    this.#check();
    return Promise.resolve(
      [...this.map].filter(([k, v]) => v.value && k.endsWith(`/${uid}`)).map(([k]) =>
        k.split("/")[0]!
      ),
    );
  }
}

async function withStores(
  fn: (
    store: BindingStore,
    shared: MemoryShared,
    local: BindingStore,
    kv: Deno.Kv,
  ) => Promise<void>,
) {
  const kv = await Deno.openKv(":memory:");
  const shared = new MemoryShared();
  try {
    await fn(new BindingStore(kv, undefined, shared), shared, new BindingStore(kv), kv);
  } finally {
    kv.close();
  }
}

Deno.test("shared bindings: add and remove go to the shared store, then the local copy", async () => {
  await withStores(async (store, shared, local) => {
    shared.conflicts = 2; // another gateway wrote meanwhile: retried on the new revision
    const r = await store.add({ uid: "u1", roomAddress: ROOM });
    assert(r.token && !r.rotated);
    assertEquals(shared.map.get("00010108090/u1")?.value?.uid, "u1");
    assert(await local.verify("u1", ROOM, r.token), "the local copy logs in at once");
    const again = await store.add({ uid: "u1", roomAddress: ROOM });
    assert(again.rotated);
    assertEquals(await local.verify("u1", ROOM, r.token), undefined, "old token gone");
    assertEquals(await store.remove("u1"), 1);
    assertEquals(shared.map.get("00010108090/u1")?.value, null);
    assertEquals(await local.list(), []);
  });
});

Deno.test("shared bindings: an unreachable hub refuses the change and keeps the local copy", async () => {
  await withStores(async (store, shared, local) => {
    const { token } = await store.add({ uid: "u1", roomAddress: ROOM });
    shared.down = true;
    for (
      const [op, fn] of [
        ["add", () => store.add({ uid: "u2", roomAddress: ROOM })],
        ["remove", () => store.remove("u1", ROOM)],
        ["remove", () => store.remove("u1")],
      ] as const
    ) {
      try {
        await fn();
        assert(false, "must fail");
      } catch (e) {
        assert(e instanceof BindingsUnavailableError, String(e));
        assert(
          e.message.startsWith(`Cannot ${op} binding: the community hub is unreachable (no answer`),
          e.message,
        );
      }
    }
    assert(await local.verify("u1", ROOM, token), "last-seen binding still logs in");
    assertEquals((await local.list()).map((b) => b.uid), ["u1"]);
  });
});

Deno.test("shared bindings: a rotation or removal drops the binding's push subscriptions", async () => {
  await withStores(async (store, _shared, _local, kv) => {
    const subs = new PushSubscriptionStore(kv);
    const sub = (n: number) => ({
      endpoint: `https://push.example.net/send/${n}`,
      p256dh:
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
      auth: "BTBZMqHH6r4Tts7J_aSIgg",
    });
    await store.add({ uid: "u1", roomAddress: ROOM });
    await store.add({ uid: "u2", roomAddress: ROOM });
    assert((await subs.add("u1", "00010108090", sub(1))).ok);
    assert((await subs.add("u2", "00010108090", sub(2))).ok);
    const v0 = await subs.version();
    await store.add({ uid: "u1", roomAddress: ROOM }); // rotated: a new token
    assertEquals((await subs.list()).map((s) => s.uid), ["u2"], "the old token's are gone");
    assert((await subs.version()) !== v0, "the push directory sees the change");
    assertEquals(await store.remove("u2", ROOM), 1);
    assertEquals(await subs.list(), []);
    // The sync brings the same removal back from the hub: nothing left to do, nothing fails.
    const local = new BindingStore(kv);
    assertEquals(await local.remove("u2", ROOM), 0);
  });
});
