/**
 * Web Push subscriptions of the web phones, per binding (uid, room): where the gateway sends an
 * encrypted push when a door calls the room while the phone sleeps.
 *
 * KV layout (new prefixes; no migration needed: older gateways ignore them):
 * - `["push_sub", roomKey, uid, id]` → {@linkcode StoredSubscription}; `id` is the first 32 hex
 *   digits of the SHA-256 of the endpoint (one entry per endpoint and binding)
 * - `["push_version"]` → a new random value on every change (the push directory polls it)
 *
 * Bounds: {@linkcode MAX_SUBSCRIPTIONS_PER_BINDING} per binding (a new one beyond replaces the
 * oldest: browsers renew endpoints). A subscription belongs to the binding's token: it is
 * written only while the binding exists (checked in the same atomic commit), it carries the
 * token's id, and the binding store deletes it when the binding is removed or its token rotated
 * (`bindings.ts`). One whose token id no longer matches (a store touched by an older gateway) is
 * never used.
 *
 * @module
 */

import { BINDING_KEY_PREFIX, PUSH_SUB_PREFIX, PUSH_VERSION_KEY } from "./bindings.ts";

/** A subscription as the web app's `PushSubscription.toJSON()` gives it. */
export interface PushSubscriptionInput {
  /** The push service's URL for this browser (https). */
  readonly endpoint: string;
  /** base64url of the browser's P-256 public key (65 bytes uncompressed). */
  readonly p256dh: string;
  /** base64url of the 16-byte authentication secret. */
  readonly auth: string;
}

/** A stored subscription. */
export interface StoredSubscription extends PushSubscriptionInput {
  readonly uid: string;
  readonly roomKey: string;
  /** The id of the binding's token when it was registered. */
  readonly tokenId: string;
  /** ISO 8601. */
  readonly createdAt: string;
}

/** Subscriptions kept per binding (uid, room). */
export const MAX_SUBSCRIPTIONS_PER_BINDING = 4;
/** Longest endpoint accepted (push services use ~150–300 characters). */
export const MAX_ENDPOINT_LENGTH = 1024;

const B64U = /^[A-Za-z0-9_-]+$/;
const MAX_CAS_ATTEMPTS = 20;

/** Options of {@linkcode pushSubscriptionProblem}. */
export interface EndpointRules {
  /**
   * Also `http:` endpoints and IP-literal or `localhost` hosts (`--push-allow-http on`: tests, a
   * push service on the LAN). Off: only `https:` with a DNS name.
   */
  readonly allowHttp?: boolean;
}

/** Why `sub` is not an acceptable subscription, or `undefined` (shape only; see the module). */
export function pushSubscriptionProblem(
  sub: PushSubscriptionInput,
  rules: EndpointRules = {},
): string | undefined {
  const { endpoint, p256dh, auth } = sub;
  if (typeof endpoint !== "string" || endpoint.length === 0) return "endpoint must be a URL";
  if (endpoint.length > MAX_ENDPOINT_LENGTH) {
    return `endpoint is longer than ${MAX_ENDPOINT_LENGTH} characters`;
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return "endpoint must be a URL";
  }
  const http = url.protocol === "http:";
  if (url.protocol !== "https:" && !(http && rules.allowHttp)) {
    return rules.allowHttp ? "endpoint must be an http(s) URL" : "endpoint must be an https URL";
  }
  if (url.username || url.password) return "endpoint must not carry credentials";
  if (url.hash) return "endpoint must not have a fragment";
  const host = url.hostname;
  const literal = /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.startsWith("[") ||
    host === "localhost" || host.endsWith(".localhost");
  if (literal && !rules.allowHttp) {
    return "endpoint must name a push service by its DNS name, not an address or localhost";
  }
  if (typeof p256dh !== "string" || !B64U.test(p256dh) || decodedLength(p256dh) !== 65) {
    return "p256dh must be base64url of a 65-byte P-256 public key";
  }
  if (typeof auth !== "string" || !B64U.test(auth) || decodedLength(auth) !== 16) {
    return "auth must be base64url of 16 bytes";
  }
  return undefined;
}

function decodedLength(b64u: string): number {
  return Math.floor((b64u.replace(/=+$/, "").length * 3) / 4);
}

/** The key id of an endpoint. */
export async function endpointId(endpoint: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(endpoint));
  return new Uint8Array(digest).toHex().slice(0, 32);
}

/** The result of {@linkcode PushSubscriptionStore.add}. */
export type AddResult =
  | { readonly ok: true; readonly count: number; readonly replaced: number }
  | { readonly ok: false; readonly reason: "not_bound" };

interface StoredBindingLike {
  readonly tokenHash: string;
}

/** Subscriptions over a Deno KV store (which the caller opens and closes). */
export class PushSubscriptionStore {
  readonly #kv: Deno.Kv;
  readonly #now: () => Date;

  /** Uses `kv`; `now` supplies `createdAt`. */
  constructor(kv: Deno.Kv, now: () => Date = () => new Date()) {
    this.#kv = kv;
    this.#now = now;
  }

  /**
   * Keeps `sub` for the binding of `uid` to `roomKey` (again: refreshed), dropping the oldest
   * beyond {@linkcode MAX_SUBSCRIPTIONS_PER_BINDING}. `tokenId`, when given, must be the
   * binding's current token's: a session whose token was rotated meanwhile cannot subscribe.
   * The caller checks the input with {@linkcode pushSubscriptionProblem} first.
   */
  async add(
    uid: string,
    roomKey: string,
    sub: PushSubscriptionInput,
    tokenId?: string,
  ): Promise<AddResult> {
    const id = await endpointId(sub.endpoint);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const binding = await this.#kv.get<StoredBindingLike>([BINDING_KEY_PREFIX, roomKey, uid]);
      const current = binding.value?.tokenHash.slice(0, 16);
      if (!current || (tokenId !== undefined && tokenId !== current)) {
        return { ok: false, reason: "not_bound" };
      }
      const version = await this.#kv.get(PUSH_VERSION_KEY);
      const existing = await this.#entries(roomKey, uid);
      const others = existing.filter((e) => e.key[3] !== id)
        .sort((a, b) => a.value.createdAt.localeCompare(b.value.createdAt));
      const evict = others.slice(0, Math.max(0, others.length - MAX_SUBSCRIPTIONS_PER_BINDING + 1));
      const stored: StoredSubscription = {
        uid,
        roomKey,
        endpoint: sub.endpoint,
        p256dh: sub.p256dh,
        auth: sub.auth,
        tokenId: current,
        createdAt: this.#now().toISOString(),
      };
      const op = this.#kv.atomic().check(binding).check(version)
        .set([PUSH_SUB_PREFIX, roomKey, uid, id], stored)
        .set(PUSH_VERSION_KEY, crypto.randomUUID());
      for (const e of evict) op.delete(e.key);
      if ((await op.commit()).ok) {
        return { ok: true, count: others.length - evict.length + 1, replaced: evict.length };
      }
    }
    throw new Error(`Cannot keep the push subscription of ${uid}: store busy, try again`);
  }

  /** Drops the subscription of `endpoint` for the binding; true when there was one. */
  async remove(uid: string, roomKey: string, endpoint: string): Promise<boolean> {
    return this.#delete([PUSH_SUB_PREFIX, roomKey, uid, await endpointId(endpoint)]);
  }

  /** Drops one stored subscription (the push service said it is gone). */
  removeStored(sub: Pick<StoredSubscription, "uid" | "roomKey" | "endpoint">): Promise<boolean> {
    return this.remove(sub.uid, sub.roomKey, sub.endpoint);
  }

  async #delete(key: Deno.KvKey): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const e = await this.#kv.get(key);
      if (e.value === null) return false;
      const r = await this.#kv.atomic().check(e).delete(key)
        .set(PUSH_VERSION_KEY, crypto.randomUUID()).commit();
      if (r.ok) return true;
    }
    return false;
  }

  async #entries(roomKey: string, uid: string): Promise<Deno.KvEntry<StoredSubscription>[]> {
    const out: Deno.KvEntry<StoredSubscription>[] = [];
    for await (
      const e of this.#kv.list<StoredSubscription>({ prefix: [PUSH_SUB_PREFIX, roomKey, uid] })
    ) out.push(e);
    return out;
  }

  /**
   * The usable subscriptions of `uid` for `roomKey`: those of the binding's current token
   * (none when unbound).
   */
  async of(uid: string, roomKey: string): Promise<StoredSubscription[]> {
    const binding = await this.#kv.get<StoredBindingLike>([BINDING_KEY_PREFIX, roomKey, uid]);
    const current = binding.value?.tokenHash.slice(0, 16);
    if (!current) return [];
    return (await this.#entries(roomKey, uid)).map((e) => e.value)
      .filter((s) => s.tokenId === current);
  }

  /**
   * The bindings that have a usable subscription, as `"<roomKey>|<uid>"` (the push directory's
   * reachability).
   */
  async subscribedBindings(): Promise<Set<string>> {
    const groups = new Map<string, Set<string>>();
    for (const s of await this.list()) {
      const k = `${s.roomKey}|${s.uid}`;
      groups.set(k, (groups.get(k) ?? new Set()).add(s.tokenId));
    }
    const out = new Set<string>();
    for (const [k, tokenIds] of groups) {
      const [roomKey, uid] = k.split("|") as [string, string];
      const b = await this.#kv.get<StoredBindingLike>([BINDING_KEY_PREFIX, roomKey, uid]);
      if (b.value && tokenIds.has(b.value.tokenHash.slice(0, 16))) out.add(k);
    }
    return out;
  }

  /** Every stored subscription (also unusable ones), ordered by room, uid, id. */
  async list(): Promise<StoredSubscription[]> {
    const out: StoredSubscription[] = [];
    for await (const e of this.#kv.list<StoredSubscription>({ prefix: [PUSH_SUB_PREFIX] })) {
      out.push(e.value);
    }
    return out;
  }

  /** The change marker (moves with every add or removal, and with binding removals). */
  async version(): Promise<string | null> {
    return (await this.#kv.get<string>(PUSH_VERSION_KEY)).value;
  }
}
