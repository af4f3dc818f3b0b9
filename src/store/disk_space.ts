/**
 * Free and total space of the filesystem that holds the store (`--data`), for the console's
 * overview. Deno has no `statfs` of its own; its Node compatibility layer's `fs.statfs` calls
 * statfs(2) and needs `--allow-read` for the path and `--allow-sys=statfs` (part of the
 * product's permissions, scripts/deno_flags.ts). Without the permission, or for a `:memory:`
 * or remote store, the answer says why instead.
 *
 * @module
 */

import { statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { isKvUrl, kvLocation } from "./kv.ts";

/** Below either of these the console shows the disk as low. */
export const DISK_LOW = { bytes: 50 * 1024 * 1024, fraction: 0.05 } as const;

/** What {@linkcode diskSpace} found. */
export type DiskSpace =
  | {
    readonly ok: true;
    /** Bytes an unprivileged writer may still use (statfs `bavail` × block size). */
    readonly freeBytes: number;
    readonly totalBytes: number;
    /** Free space under {@linkcode DISK_LOW}. */
    readonly low: boolean;
  }
  | {
    readonly ok: false;
    /** `memory` (no file), `remote` (a KV URL), `permission` (no `--allow-sys=statfs`), `error`. */
    readonly reason: "memory" | "remote" | "permission" | "error";
    readonly message: string;
  };

/** The filesystem space of the store of `data` (a `--data` value). */
export async function diskSpace(data: string): Promise<DiskSpace> {
  if (data === ":memory:") {
    return { ok: false, reason: "memory", message: "the store is in memory" };
  }
  if (isKvUrl(data)) return { ok: false, reason: "remote", message: "the store is remote" };
  try {
    const s = await statfs(dirname(await kvLocation(data)));
    const freeBytes = Number(s.bavail) * Number(s.bsize);
    const totalBytes = Number(s.blocks) * Number(s.bsize);
    const low = freeBytes < DISK_LOW.bytes || freeBytes < totalBytes * DISK_LOW.fraction;
    return { ok: true, freeBytes, totalBytes, low };
  } catch (e) {
    const permission = e instanceof Deno.errors.NotCapable ||
      e instanceof Deno.errors.PermissionDenied;
    return {
      ok: false,
      reason: permission ? "permission" : "error",
      message: permission
        ? "Cannot read the free disk space: the gateway needs --allow-sys=statfs"
        : `Cannot read the free disk space: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}
