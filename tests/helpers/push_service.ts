/**
 * A Web Push service for tests, on loopback HTTP: what FCM or Mozilla's autopush do with a
 * push request, checked strictly. Each request must carry a VAPID `Authorization` whose ES256
 * signature verifies with its `k`, `k` the gateway's key (when told), `aud` the endpoint's
 * origin, `exp` in the future and within 24 h, `sub` a `mailto:`/`https:` contact; `TTL`,
 * `Urgency: high`, `Content-Encoding: aes128gcm`. The body is decrypted with the subscriber's
 * private key (made by {@linkcode newSubscriber}) and parsed as JSON.
 *
 * Answers 201 (RFC 8030 §5: created), 410 for a subscription {@linkcode PushService.gone}, or
 * what `answer` says.
 *
 * @module
 */

import { verifyVapidAuthorization } from "../../src/push/vapid.ts";
import { b64u, decryptWebPush } from "../../src/push/web_push_crypto.ts";

/** A browser's subscription keys, private part included. */
export interface Subscriber {
  readonly p256dh: string;
  readonly auth: string;
  readonly privateKey: CryptoKey;
  readonly publicRaw: Uint8Array;
}

/** Makes the keys a browser makes when it subscribes. */
export async function newSubscriber(): Promise<Subscriber> {
  const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
    "deriveBits",
  ]) as CryptoKeyPair;
  const publicRaw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return {
    p256dh: b64u(publicRaw),
    auth: b64u(crypto.getRandomValues(new Uint8Array(16))),
    privateKey: pair.privateKey,
    publicRaw,
  };
}

/** One push the service accepted. */
export interface Delivered {
  /** The subscription's id (the endpoint's last path segment). */
  readonly id: string;
  readonly message: Record<string, unknown>;
  readonly headers: Record<string, string>;
  readonly claims: Record<string, unknown>;
  /** `performance.now()` when it arrived. */
  readonly at: number;
}

/** The test push service. */
export interface PushService {
  /** The endpoint of subscription `id`: `http://127.0.0.1:PORT/push/<id>`. */
  endpoint(id: string): string;
  /** Registers the subscriber of `id` (whose keys decrypt its pushes). */
  add(id: string, sub: Subscriber): void;
  /** From now on `id` is answered 410 Gone. */
  gone(id: string): void;
  readonly delivered: Delivered[];
  /** Every request refused, with why (a test expects none). */
  readonly problems: string[];
  /** Requests received, answered or not. */
  attempts(): number;
  close(): Promise<void>;
}

/**
 * Starts the service; `vapidKey` the gateway's public key when known (else any verified key),
 * `answer(id, n)` a status to answer instead (n: the request's number).
 */
export function startPushService(
  options: { vapidKey?: () => string | undefined; answer?: (id: string, n: number) => number } = {},
): PushService {
  const subs = new Map<string, Subscriber>();
  const gone = new Set<string>();
  const delivered: Delivered[] = [];
  const problems: string[] = [];
  let n = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const at = performance.now();
    const id = new URL(req.url).pathname.split("/").pop() ?? "";
    const body = new Uint8Array(await req.arrayBuffer());
    const forced = options.answer?.(id, n);
    n++;
    const refuse = (status: number, why: string) => {
      problems.push(`${id}: ${why}`);
      return new Response(why, { status });
    };
    if (req.method !== "POST") return refuse(405, `method ${req.method}`);
    if (gone.has(id)) return new Response(null, { status: 410 });
    const sub = subs.get(id);
    if (!sub) return new Response(null, { status: 404 });
    const v = await verifyVapidAuthorization(req.headers.get("authorization"));
    if (typeof v === "string") return refuse(401, `vapid: ${v}`);
    const want = options.vapidKey?.();
    if (want && v.publicKey !== want) return refuse(401, "vapid: k is not the gateway's key");
    const origin = new URL(req.url).origin;
    const nowS = Date.now() / 1000;
    if (v.claims.aud !== origin) return refuse(401, `aud ${v.claims.aud} is not ${origin}`);
    if (!(v.claims.exp > nowS && v.claims.exp <= nowS + 24 * 3600)) {
      return refuse(401, `exp ${v.claims.exp} not within 24 h`);
    }
    if (!/^(mailto:|https:)/.test(String(v.claims.sub))) return refuse(401, "sub");
    const headers = Object.fromEntries(req.headers);
    if (headers["content-encoding"] !== "aes128gcm") return refuse(415, "content-encoding");
    if (!(Number(headers["ttl"]) > 0)) return refuse(400, `TTL ${headers["ttl"]}`);
    if (headers["urgency"] !== "high") return refuse(400, `urgency ${headers["urgency"]}`);
    let message: Record<string, unknown>;
    try {
      const plain = await decryptWebPush(body, sub);
      message = JSON.parse(new TextDecoder().decode(plain));
    } catch (e) {
      return refuse(400, `payload: ${e instanceof Error ? e.message : e}`);
    }
    if (forced !== undefined) return new Response(null, { status: forced });
    delivered.push({ id, message, headers, claims: v.claims, at });
    return new Response(null, { status: 201, headers: { location: `/message/${n}` } });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  return {
    endpoint: (id) => `${base}/push/${id}`,
    add: (id, sub) => void subs.set(id, sub),
    gone: (id) => void gone.add(id),
    delivered,
    problems,
    attempts: () => n,
    close: () => server.shutdown(),
  };
}
