/**
 * The community's bindings in the hub's KV bucket `bindings` (the store's `SharedBindings`
 * port), and their sync into this gateway's own Deno KV: the hub's bucket is mirrored by this
 * box's leaf node (`mirror: { name, domain: "hub" }`), and {@linkcode BindingSync} watches that
 * mirror and applies every change to the local `BindingStore`, which logins, the binding guard
 * and push read exactly as on a single box. With the office unreachable the mirror, and so the
 * local copy, keeps the bindings last seen; changes made at the office meanwhile arrive once the
 * link is back (the mirror catches up by itself).
 *
 * Bucket keys: `<roomKey>.<uid as base64url>`; values: the stored binding as JSON (with its
 * token's hash, never the token).
 *
 * @module
 */

import { type KV, type KvEntry, Kvm } from "@nats-io/kv";
import type { Logger } from "../log.ts";
import type { BindingStore, SharedBindings, StoredBinding } from "../store/bindings.ts";
import { type ClusterLink, HUB_TIMEOUT_MS } from "./link.ts";
import { HUB_DOMAIN, NAMES, token, untoken } from "./subjects.ts";

/** The bucket key of (room, uid). */
export function bindingKey(roomKey: string, uid: string): string {
  return `${roomKey}.${token(uid)}`;
}

function parseKey(key: string): { roomKey: string; uid: string } | undefined {
  const [roomKey, tok, ...rest] = key.split(".");
  if (!roomKey || !tok || rest.length) return undefined;
  try {
    return { roomKey, uid: untoken(tok) };
  } catch {
    return undefined;
  }
}

/** Creating a replicated bucket waits for its leader. */
const CREATE_TIMEOUT_MS = 15_000;

const CONFLICT = /wrong last sequence|key exists|10071/i;

function live(e: KvEntry | null): e is KvEntry {
  return e !== null && e.operation === "PUT";
}

/** Creates the hub's bucket when it is missing (3 replicas on a cluster, else 1). */
export async function ensureHubBucket(link: ClusterLink): Promise<KV> {
  const kvm = new Kvm(link.hubJs(CREATE_TIMEOUT_MS));
  // `create` opens the bucket when it exists with these settings.
  try {
    return await kvm.create(NAMES.BINDINGS, { history: 1, replicas: 3 });
  } catch {
    return await kvm.create(NAMES.BINDINGS, { history: 1, replicas: 1 });
  }
}

/** The leaf-local mirror of the hub's bucket (created when missing; works offline). */
export async function openMirror(link: ClusterLink): Promise<KV> {
  const kvm = new Kvm(link.localJs());
  try {
    return await kvm.create(NAMES.BINDINGS, {
      mirror: { name: NAMES.BINDINGS, domain: HUB_DOMAIN },
    });
  } catch {
    return await kvm.open(NAMES.BINDINGS);
  }
}

/** {@linkcode SharedBindings} on the hub's bucket; every call fails fast when it is unreachable. */
export class HubBindings implements SharedBindings {
  readonly #link: ClusterLink;
  #kv: KV | undefined;

  /** Uses the link's hub. */
  constructor(link: ClusterLink) {
    this.#link = link;
  }

  async #bucket(): Promise<KV> {
    if (!this.#link.leafUp) throw new Error("this box's NATS leaf node is not connected");
    if (!this.#link.hubUp) throw new Error("no answer from the hub through the leaf node");
    this.#kv ??= await new Kvm(this.#link.hubJs()).open(NAMES.BINDINGS).then(async (kv) => {
      await kv.status(); // throws when the bucket is missing
      return kv;
    }).catch(() => ensureHubBucket(this.#link));
    return this.#kv;
  }

  /** {@inheritDoc SharedBindings.get} */
  async get(
    roomKey: string,
    uid: string,
  ): Promise<{ value: StoredBinding | null; revision: number }> {
    const e = await (await this.#bucket()).get(bindingKey(roomKey, uid));
    if (e === null) return { value: null, revision: 0 };
    return { value: live(e) ? (e.json<StoredBinding>()) : null, revision: e.revision };
  }

  /** {@inheritDoc SharedBindings.put} */
  async put(value: StoredBinding, revision: number): Promise<boolean> {
    const kv = await this.#bucket();
    const key = bindingKey(value.roomKey, value.uid);
    try {
      if (revision === 0) await kv.create(key, JSON.stringify(value));
      else await kv.update(key, JSON.stringify(value), revision, HUB_TIMEOUT_MS);
      return true;
    } catch (e) {
      if (CONFLICT.test(String((e as Error)?.message ?? e))) return false;
      throw e;
    }
  }

  /** {@inheritDoc SharedBindings.delete} */
  async delete(roomKey: string, uid: string, revision: number): Promise<boolean> {
    const kv = await this.#bucket();
    try {
      await kv.delete(bindingKey(roomKey, uid), { previousSeq: revision });
      return true;
    } catch (e) {
      if (CONFLICT.test(String((e as Error)?.message ?? e))) return false;
      throw e;
    }
  }

  /** {@inheritDoc SharedBindings.roomsOf} */
  async roomsOf(uid: string): Promise<string[]> {
    const kv = await this.#bucket();
    const out: string[] = [];
    for await (const k of await kv.keys(`*.${token(uid)}`)) {
      const p = parseKey(k);
      if (p && p.uid === uid) out.push(p.roomKey);
    }
    return out.sort();
  }
}

/** Options of {@linkcode BindingSync}. */
export interface BindingSyncOptions {
  readonly link: ClusterLink;
  /** The gateway's own store, without shared writes (the sync writes only here). */
  readonly local: BindingStore;
  readonly logger: Logger;
  /** Called after a change was applied (the binding guard checks sessions at once). */
  readonly onChanged?: () => void;
}

/** Keeps the local bindings equal to the leaf's mirror of the hub's bucket. */
export class BindingSync {
  readonly #o: BindingSyncOptions;
  #generation = 0;
  #watch: { stop(): void } | undefined;
  #running: Promise<void> = Promise.resolve();
  #off: (() => void) | undefined;
  #hubBucketReady = false;
  /** Changes applied since start (tests, metrics). */
  applied = 0;
  #resolveReady!: () => void;
  /** Resolves once the local copy was first brought in step with the mirror. */
  readonly ready: Promise<void> = new Promise((r) => (this.#resolveReady = r));

  /** Creates the sync; {@linkcode BindingSync.start} begins it. */
  constructor(options: BindingSyncOptions) {
    this.#o = options;
  }

  /** Starts (now if the leaf is up) and restarts on every leaf reconnection. */
  start(): void {
    this.#off = this.#o.link.onChange((c) => {
      if (c.part === "leaf" && c.up) this.#restart();
      if (c.part === "hub" && c.up && !this.#hubBucketReady) {
        ensureHubBucket(this.#o.link).then(() => (this.#hubBucketReady = true)).catch((e) =>
          this.#o.logger.warn("cluster: cannot create the hub's bindings bucket", { error: e })
        );
      }
    });
    if (this.#o.link.leafUp) this.#restart();
  }

  #restart(): void {
    this.#watch?.stop();
    const gen = ++this.#generation;
    this.#running = this.#run(gen).catch((e) => {
      this.#o.logger.warn("cluster: binding sync stopped, retrying on the next reconnection", {
        error: e,
      });
    });
  }

  async #run(gen: number): Promise<void> {
    // The hub's bucket first when the hub answers: a mirror of a missing stream retries slowly.
    if (this.#o.link.hubUp && !this.#hubBucketReady) {
      await ensureHubBucket(this.#o.link).then(() => (this.#hubBucketReady = true)).catch(() => {});
    }
    const mirror = await openMirror(this.#o.link);
    if (gen !== this.#generation) return;
    // Updates first (queued while the snapshot is read), so that nothing falls between.
    const w = await mirror.watch({ include: "updates" });
    this.#watch = w;
    if (gen !== this.#generation) return w.stop();
    const seen = new Set<string>();
    let changed = false;
    for await (const k of await mirror.keys()) {
      const p = parseKey(k);
      if (!p) continue;
      const e = await mirror.get(k);
      if (!live(e)) continue;
      seen.add(`${p.roomKey}/${p.uid}`);
      changed = (await this.#apply(p.roomKey, p.uid, e)) || changed;
    }
    // Bindings the community no longer has (removed while this gateway was off): only once the
    // mirror holds something, so that a mirror not yet filled never empties the local copy.
    const status = await mirror.status().catch(() => undefined);
    if ((status?.values ?? 0) > 0 || seen.size > 0) {
      for (const b of await this.#o.local.list()) {
        if (!seen.has(`${b.roomKey}/${b.uid}`)) {
          changed = (await this.#o.local.remove(b.uid, b.roomKey)) > 0 || changed;
        }
      }
    }
    if (changed) this.#o.onChanged?.();
    this.#resolveReady();
    for await (const e of w) {
      if (gen !== this.#generation) break;
      const p = parseKey(e.key);
      if (!p) continue;
      if (await this.#apply(p.roomKey, p.uid, e)) this.#o.onChanged?.();
    }
  }

  /** Applies one mirror entry to the local store; true when something changed. */
  async #apply(roomKey: string, uid: string, e: KvEntry): Promise<boolean> {
    const local = this.#o.local;
    if (!live(e)) return (await local.remove(uid, roomKey)) > 0;
    let v: StoredBinding;
    try {
      v = e.json<StoredBinding>();
    } catch {
      return false;
    }
    const [current] = await local.export({ uid, room: roomKey }, { withTokenHashes: true });
    if (
      current && current.tokenHash === v.tokenHash && current.community === v.community &&
      current.roomAddress === v.roomAddress && current.createdAt === v.createdAt
    ) return false;
    try {
      await local.import([{
        uid: v.uid,
        roomAddress: v.roomAddress,
        community: v.community,
        tokenHash: v.tokenHash,
        createdAt: v.createdAt,
      }]);
      this.applied++;
      return true;
    } catch (err) {
      this.#o.logger.warn("cluster: a binding from the hub is malformed, skipped", {
        key: e.key,
        error: err,
      });
      return false;
    }
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.#off?.();
    this.#generation++;
    this.#watch?.stop();
    await this.#running;
  }
}
