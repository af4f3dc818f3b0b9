/**
 * Visitor snapshots: the first complete video frame of each call (from the media relay's tap),
 * kept with the call record for the console.
 *
 * KV layout (new prefixes; no migration needed):
 * - `["snapshot", callId]` → {@linkcode Snapshot} (at most {@linkcode SNAPSHOT_MAX_BYTES} bytes)
 * - `["snapshot_by_time", atMs, callId]` → `true`
 *
 * The newest `keep` snapshots are kept (pruned every 20 writes).
 *
 * @module
 */

import { SNAPSHOT_MAX_BYTES } from "../media/first_frame.ts";
import { sniffCodec, type SniffedCodec } from "../media/video_codec.ts";

export { SNAPSHOT_MAX_BYTES };

/** Snapshots kept by default (≤ 12 MB). */
export const SNAPSHOTS_KEPT = 200;

/** What the frame is, from its bytes (the door protocol does not name the codec). */
export type VideoKind = SniffedCodec;

/**
 * The codec a frame's bytes look like ({@linkcode sniffCodec}, the transcoder's rule: an H.264
 * key frame often starts with an access unit delimiter, `00 00 01 09`, not with its SPS).
 */
export function videoKind(b: Uint8Array): VideoKind {
  return sniffCodec(b);
}

/** A stored snapshot. */
export interface Snapshot {
  readonly callId: string;
  /** Epoch ms. */
  readonly at: number;
  readonly dataType: number;
  readonly kind: VideoKind;
  readonly bytes: Uint8Array;
}

const SNAP = "snapshot";
const BY_TIME = "snapshot_by_time";

/** Snapshots over a Deno KV store (which the caller opens and closes). */
export class SnapshotStore {
  readonly #kv: Deno.Kv;
  readonly #keep: number;
  #writes = 0;

  /** Uses `kv`; keeps the newest `keep`. */
  constructor(kv: Deno.Kv, options: { keep?: number } = {}) {
    this.#kv = kv;
    this.#keep = options.keep ?? SNAPSHOTS_KEPT;
  }

  /** Stores a call's snapshot; false when it is too large or the call has one already. */
  async put(callId: string, bytes: Uint8Array, dataType: number, at: number): Promise<boolean> {
    if (bytes.length > SNAPSHOT_MAX_BYTES || bytes.length === 0) return false;
    const snap: Snapshot = { callId, at, dataType, kind: videoKind(bytes), bytes: bytes.slice() };
    const key = [SNAP, callId];
    const r = await this.#kv.atomic().check({ key, versionstamp: null }).set(key, snap)
      .set([BY_TIME, at, callId], true).commit();
    if (r.ok && ++this.#writes % 20 === 0) await this.prune();
    return r.ok;
  }

  /** The snapshot of a call. */
  async get(callId: string): Promise<Snapshot | undefined> {
    if (typeof callId !== "string" || callId === "" || callId.length > 128) return undefined;
    return (await this.#kv.get<Snapshot>([SNAP, callId])).value ?? undefined;
  }

  /** Which of `callIds` have a snapshot (and what kind). */
  async kinds(callIds: readonly string[]): Promise<Map<string, VideoKind>> {
    const out = new Map<string, VideoKind>();
    for (let i = 0; i < callIds.length; i += 10) {
      const keys = callIds.slice(i, i + 10).map((id) => [SNAP, id]);
      for (const e of await this.#kv.getMany<Snapshot[]>(keys)) {
        if (e.value) out.set(e.value.callId, e.value.kind);
      }
    }
    return out;
  }

  /** Deletes all but the newest `keep`; resolves to how many were deleted. */
  async prune(): Promise<number> {
    let seen = 0;
    let deleted = 0;
    for await (const e of this.#kv.list({ prefix: [BY_TIME] }, { reverse: true })) {
      if (++seen <= this.#keep) continue;
      await this.#kv.atomic().delete(e.key).delete([SNAP, String(e.key[2])]).commit();
      deleted++;
    }
    return deleted;
  }
}
