/**
 * HTTP/1.1 request heads (RFC 9112 §2–§6), pure: where a head ends in the bytes read so far, and
 * the head parsed strictly (one request line, `name: value` fields, no obsolete line folding, no
 * ambiguous body framing).
 *
 * @module
 */

/** A parsed request head. */
export interface RequestHead {
  readonly method: string;
  /** The request target as sent (`/phone?x=1`). */
  readonly target: string;
  readonly version: "1.0" | "1.1";
  /** Field lines in order, names lower-cased. */
  readonly fields: readonly (readonly [string, string])[];
  /** Bytes of the body that follow the head (`Content-Length`), 0 when none. */
  readonly contentLength: number;
  /** The client asked to keep the connection open (1.1 by default, 1.0 with keep-alive). */
  readonly keepAlive: boolean;
}

/** Why a head was refused, with the status to answer. */
export interface HeadError {
  readonly status: 400 | 411 | 431 | 501 | 505;
  readonly reason: string;
}

/** Longest head accepted, request line and fields. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Most field lines accepted. */
export const MAX_FIELDS = 100;

/**
 * Index just past the blank line that ends the head (`\r\n\r\n`, or a bare `\n\n`), searching
 * from `from` (bytes before it were searched already); -1 when not there yet.
 */
export function headEnd(bytes: Uint8Array, from = 0): number {
  for (let i = Math.max(0, from - 3); i < bytes.length; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (bytes[i + 1] === 0x0a) return i + 2;
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const latin1 = new TextDecoder("latin1");

/** Parses a complete head (the bytes up to and including the blank line). */
export function parseHead(bytes: Uint8Array): RequestHead | HeadError {
  const lines = latin1.decode(bytes).split(/\r?\n/);
  // A server SHOULD ignore at least one empty line before the request line (RFC 9112 §2.2).
  while (lines.length && lines[0] === "") lines.shift();
  const requestLine = lines.shift() ?? "";
  const m = /^([^ ]+) ([^ ]+) HTTP\/(\d)\.(\d)$/.exec(requestLine);
  if (!m || !TOKEN.test(m[1]!)) return { status: 400, reason: "bad request line" };
  if (m[3] !== "1" || (m[4] !== "0" && m[4] !== "1")) {
    return { status: 505, reason: "HTTP version not supported" };
  }
  const version = m[4] === "1" ? "1.1" : "1.0";
  const target = m[2]!;
  if (!target.startsWith("/") && !/^https?:\/\//i.test(target) && target !== "*") {
    return { status: 400, reason: "bad request target" };
  }
  const fields: [string, string][] = [];
  for (const line of lines) {
    if (line === "") continue;
    if (fields.length >= MAX_FIELDS) return { status: 431, reason: "too many header fields" };
    if (line[0] === " " || line[0] === "\t") {
      return { status: 400, reason: "obsolete line folding" };
    }
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (colon <= 0 || !TOKEN.test(name) || !FIELD_VALUE.test(value)) {
      return { status: 400, reason: "bad header field" };
    }
    fields.push([name.toLowerCase(), value]);
  }
  const get = (n: string) => fields.filter(([k]) => k === n).map(([, v]) => v);
  if (version === "1.1" && get("host").length !== 1) {
    return { status: 400, reason: "Host missing or repeated" };
  }
  const te = get("transfer-encoding");
  const cl = get("content-length").flatMap((v) => v.split(",").map((s) => s.trim()));
  if (te.length) {
    // Chunked request bodies are not needed by any route; refusing them also rules out smuggling.
    return cl.length
      ? { status: 400, reason: "both Transfer-Encoding and Content-Length" }
      : { status: 411, reason: "send a Content-Length body" };
  }
  if (cl.some((v) => !/^\d{1,15}$/.test(v)) || new Set(cl).size > 1) {
    return { status: 400, reason: "bad Content-Length" };
  }
  const connection = get("connection").join(",").toLowerCase().split(",").map((s) => s.trim());
  const keepAlive = version === "1.1"
    ? !connection.includes("close")
    : connection.includes("keep-alive");
  return {
    method: m[1]!,
    target,
    version,
    fields,
    contentLength: cl.length ? Number(cl[0]) : 0,
    keepAlive,
  };
}
