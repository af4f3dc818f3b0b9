/**
 * The gateway's VAPID key pair (Web Push, RFC 8292), made on first start and kept in the store
 * so that the web phones' subscriptions stay valid across restarts, upgrades and restores.
 *
 * KV layout (a new prefix; no migration needed):
 * - `["vapid"]` → the stored pair (`{ publicKey, privateJwk, createdAt }`, see
 *   `push/vapid.ts`). Backups copy it with the rest of the store: keep them as safe as the
 *   store (whoever holds the private key may push to the web phones' browsers).
 *
 * @module
 */

/** The KV key of the pair. */
export const VAPID_KEY: Deno.KvKey = ["vapid"];

/**
 * The stored pair, or `create()`'s written once when there is none (two gateways starting on one
 * store at once still agree: the second reads the first one's).
 *
 * @throws {Error} "Cannot keep the VAPID keys: …" when the store refuses the write.
 */
export async function vapidKeysOf<T>(kv: Deno.Kv, create: () => Promise<T>): Promise<T> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const entry = await kv.get<T>(VAPID_KEY);
    if (entry.value !== null) return entry.value;
    const made = await create();
    const r = await kv.atomic().check(entry).set(VAPID_KEY, made).commit();
    if (r.ok) return made;
  }
  throw new Error("Cannot keep the VAPID keys: the store changed them meanwhile, try again");
}
