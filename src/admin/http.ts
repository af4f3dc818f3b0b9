/**
 * Plain `Request`/`Response` helpers of the console: JSON answers and errors, bounded bodies,
 * cookies, security headers, the client's and the listener's facts. Nothing here depends on the
 * server that calls the handler.
 *
 * @module
 */

/** Largest request body the console reads. */
export const MAX_BODY_BYTES = 64 * 1024;

/** The header every state-changing request must carry (CSRF: a form or an image cannot). */
export const CSRF_HEADER = "x-requested-with";
/** Its value. */
export const CSRF_VALUE = "intercom-console";

/** Where a request arrived and from whom. */
export interface RequestContext {
  /** The listener speaks TLS. */
  readonly secure: boolean;
  /** The console answers on this listener (`--admin-host`). */
  readonly adminHere: boolean;
  /** The client's IP. */
  readonly remote: string;
}

/** Error codes of the API (`{"error": {"code", "message"}}`). */
export const API_ERROR = {
  bad_request: 400,
  unauthorized: 401,
  password_change_required: 403,
  forbidden: 403,
  csrf: 403,
  https_required: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;

/** An API error code. */
export type ApiErrorCode = keyof typeof API_ERROR;

const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
};

/** Headers of every console answer (`no-store`: nothing of it is cached). */
export function baseHeaders(extra: Record<string, string> = {}): Headers {
  return new Headers({ ...SECURITY_HEADERS, "cache-control": "no-store", ...extra });
}

/** A JSON answer. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: baseHeaders({ "content-type": "application/json; charset=utf-8", ...headers }),
  });
}

/** A JSON error: `{"error": {"code", "message"}}` with the code's status. */
export function apiError(
  code: ApiErrorCode,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return json({ error: { code, message } }, API_ERROR[code], headers);
}

/** A request body that could not be read. */
export class BodyError extends Error {
  /** The API error it answers with. */
  readonly code: ApiErrorCode;
  /** Creates the error. */
  constructor(code: ApiErrorCode, message: string) {
    super(message);
    this.name = "BodyError";
    this.code = code;
  }
}

/**
 * Reads at most `max` bytes of the body as JSON (an object).
 *
 * @throws {BodyError} too large, not JSON, or not an object.
 */
export async function readJson(
  req: Request,
  max: number = MAX_BODY_BYTES,
): Promise<Record<string, unknown>> {
  const type = req.headers.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new BodyError(
      "unsupported_media_type",
      "Cannot read the body: expected application/json",
    );
  }
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > max) throw new BodyError("too_large", `Cannot read the body: over ${max} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > max) {
        await reader.cancel().catch(() => {});
        throw new BodyError("too_large", `Cannot read the body: over ${max} bytes`);
      }
      chunks.push(value);
    }
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(all));
  } catch {
    throw new BodyError("bad_request", "Cannot read the body: not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BodyError("bad_request", "Cannot read the body: expected a JSON object");
  }
  return value as Record<string, unknown>;
}

/** The value of cookie `name`, if sent. */
export function cookie(req: Request, name: string): string | undefined {
  const header = req.headers.get("cookie");
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` over HTTPS. */
export function setCookie(
  name: string,
  value: string,
  options: { secure: boolean; maxAgeS?: number },
): string {
  return [
    `${name}=${value}`,
    "Path=/",
    "HttpOnly",
    "SameSite=Strict",
    ...(options.secure ? ["Secure"] : []),
    ...(options.maxAgeS !== undefined ? [`Max-Age=${options.maxAgeS}`] : []),
  ].join("; ");
}

/** True for a loopback address (127.0.0.0/8, ::1). */
export function isLoopback(ip: string): boolean {
  return ip.startsWith("127.") || ip === "::1" || ip === "::ffff:127.0.0.1";
}

/**
 * Why a state-changing request is refused as a possible cross-site request, or `undefined`:
 * it must carry {@linkcode CSRF_HEADER}, and an `Origin` it sends must be the request's own.
 */
export function csrfProblem(req: Request): string | undefined {
  if (req.headers.get(CSRF_HEADER) !== CSRF_VALUE) {
    return `Cannot accept this request: header ${CSRF_HEADER}: ${CSRF_VALUE} is required`;
  }
  const origin = req.headers.get("origin");
  if (origin !== null && origin !== new URL(req.url).origin) {
    return "Cannot accept this request: it comes from another origin";
  }
  return undefined;
}
