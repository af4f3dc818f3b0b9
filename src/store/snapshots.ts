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

export { SNAPSHOT_MAX_BYTES };

/** Snapshots kept by default (≤ 12 MB). */
export const SNAPSHOTS_KEPT = 200;

/** What the frame is, from its first bytes (the door protocol does not name the codec). */
export type VideoKind = "jpeg" | "h264" | "mpeg4" | "unknown";

/** A stored snapshot. */
export interface Snapshot {
  readonly callId: string;
  /** Epoch ms. */
  readonly at: number;
  readonly dataType: number;
  readonly kind: VideoKind;
  readonly bytes: Uint8Array;
}

/** The codec a frame's bytes look like: JPEG SOI, H.264 Annex-B, MPEG-4 Part 2 start codes. */
export function videoKind(b: Uint8Array): VideoKind {
  if (b[0] === 0xff && b[1] === 0xd8) return "jpeg";
  const start = b[0] === 0 && b[1] === 0 && b[2] === 1
    ? 3
    : b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 1
    ? 4
    : 0;
  if (start === 0) return "unknown";
  const code = b[start]!;
  // MPEG-4 Part 2 start codes: VO 00–1F, VOL 20–2F, VOS B0, GOV B3, VO B5, VOP B6. (H.264
  // NAL headers of non-reference slices overlap 01–2F; a door's I-frame starts with SPS 0x67.)
  if (code === 0xb0 || code === 0xb3 || code === 0xb5 || code === 0xb6 || code < 0x30) {
    return "mpeg4";
  }
  const nalType = code & 0x1f;
  return (code & 0x80) === 0 && nalType >= 1 && nalType <= 23 ? "h264" : "unknown";
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
