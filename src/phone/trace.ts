/**
 * One readable line per phone order, for the live trace (the phone side of `door/trace.ts`):
 * `call ok uid=359608060142756 room=Y00010108090 door=M00010100`. Never shows a secret (token,
 * mediaKey). Pure; built only while someone listens to `phone_trace`.
 *
 * @module
 */

/** Fields shown after the order, in this order, with their labels. */
const FIELDS = [
  ["uid", "uid"],
  ["roomAddress", "room"],
  ["doorAddress", "door"],
  ["callId", "call"],
  ["code", "code"],
  ["reason", "reason"],
  ["transport", "transport"],
  ["ref", "ref"],
] as const;

function short(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
  // Control characters and line breaks would split the line.
  // deno-lint-ignore no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f\s]+/g, " ");
  return clean.length > 64 ? `${clean.slice(0, 61)}...` : clean;
}

/** Describes a phone message (parsed JSON) in one line. */
export function describeOrder(message: unknown): string {
  if (typeof message !== "object" || message === null || Array.isArray(message)) {
    return "? not a JSON object";
  }
  const m = message as Record<string, unknown>;
  const parts = [typeof m.order === "string" ? short(m.order) : "? no order"];
  for (const [key, label] of FIELDS) {
    if (m[key] !== undefined && m[key] !== "") parts.push(`${label}=${short(m[key])}`);
  }
  return parts.join(" ");
}

/** Describes a phone's text frame in one line. */
export function describeText(text: string): string {
  try {
    return describeOrder(JSON.parse(text));
  } catch {
    return "? not JSON";
  }
}
