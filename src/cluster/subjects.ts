/**
 * Names of the community's NATS subjects, streams and buckets (docs/cluster.md has the layout).
 * One table, so that every adapter and the deploy files agree.
 *
 * @module
 */

/** The JetStream domain of the office's hub cluster. */
export const HUB_DOMAIN = "hub";

/** Buckets and streams. */
export const NAMES = {
  /** Hub KV bucket of bindings (authoritative); every leaf holds a mirror of the same name. */
  BINDINGS: "bindings",
  /** Hub stream gathering every gateway's records (sources `REC_<id>` of each leaf domain). */
  HUB_RECORDS: "REC",
} as const;

/** The leaf-local stream of one gateway's records. */
export function localRecordStream(gatewayId: string): string {
  return `REC_${gatewayId}`;
}

/** Subjects of one gateway's records: `rec.<id>.call.<callId>`, `rec.<id>.unlock.<n>`. */
export function recordSubject(gatewayId: string, kind: "call" | "unlock", id: string): string {
  return `rec.${gatewayId}.${kind}.${id}`;
}

/** Every subject of a gateway's records. */
export function recordSubjects(gatewayId: string): string {
  return `rec.${gatewayId}.>`;
}

/** Presence announcements of one gateway (`presence.<id>`): the rooms with a phone online. */
export function presenceSubject(gatewayId: string): string {
  return `presence.${gatewayId}`;
}

/** Every gateway's presence. */
export const PRESENCE_ALL = "presence.*";

/** Requests to one gateway's call service: `call.<id>.<verb>` (ring, cancel, answer…). */
export function callSubject(gatewayId: string, verb: string): string {
  return `call.${gatewayId}.${verb}`;
}

/** A subject token for any text (a uid): base64url, no padding (`[-_A-Za-z0-9]`). */
export function token(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** The text of a {@linkcode token}. */
export function untoken(tok: string): string {
  const b64 = tok.replaceAll("-", "+").replaceAll("_", "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}
