/**
 * The gateway's HTTPS material at start: its own (local CA and server certificate in
 * `<data>/tls/`, for the box's LAN names) when no `--tls-cert` is given, or the facts of the
 * operator's certificate (its fingerprint) when one is.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { isKvUrl, kvLocation } from "../store/kv.ts";
import { fingerprint, fromPem } from "./certificate.ts";
import { lanNames } from "./lan_names.ts";
import { loadOrCreateTls, type TlsMaterial } from "./local_ca.ts";

/**
 * Where the local CA lives for a `--data` value: `<dir>/tls`, or next to a KV file given as
 * `--data`; `undefined` for `:memory:` or a KV Connect URL (then a new CA each start).
 */
export async function tlsDirFor(data: string): Promise<string | undefined> {
  if (data === ":memory:" || isKvUrl(data)) return undefined;
  const file = await kvLocation(data);
  return join(file === data ? dirname(file) : data, "tls");
}

/** Loads or creates the gateway's own HTTPS material for this box's names. */
export async function openOwnTls(data: string, lanIp: string | undefined): Promise<TlsMaterial> {
  const names = await lanNames(lanIp);
  return await loadOrCreateTls({ dir: await tlsDirFor(data), ...names });
}

/** The SHA-256 fingerprint of the first certificate of a PEM chain, if it has one. */
export async function pemFingerprint(pem: string): Promise<string | undefined> {
  const der = fromPem(pem, "CERTIFICATE");
  return der ? await fingerprint(der) : undefined;
}
