/**
 * Driving the console's API from tests: an account, a login (its cookie), JSON requests with the
 * CSRF header, and reading a server-sent event stream until a condition holds.
 *
 * @module
 */

import type { TestGateway } from "./gateway.ts";

/** The test account's password (chosen, so no forced change). */
export const PASSWORD = "correct horse battery staple";

/** Creates the account `name` with {@linkcode PASSWORD}. */
export async function addAdmin(gw: TestGateway, name = "manager"): Promise<void> {
  await gw.app.admins.add(name, PASSWORD);
}

/** Logs in; resolves to the `Cookie` header value. */
export async function login(
  base: string,
  name = "manager",
  password = PASSWORD,
  init: { client?: Deno.HttpClient } = {},
): Promise<string> {
  const res = await fetch(`${base}/api/v1/session`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-requested-with": "intercom-console" },
    body: JSON.stringify({ name, password }),
    ...init,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Cannot log in: ${res.status} ${text}`);
  const cookie = res.headers.get("set-cookie") ?? "";
  return cookie.split(";")[0]!;
}

/** A JSON request to the API with the session cookie and the CSRF header. */
export async function api(
  base: string,
  cookie: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = { "x-requested-with": "intercom-console" };
  if (cookie) headers.cookie = cookie;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** One server-sent event. */
export interface SseEvent {
  readonly event: string;
  readonly data: unknown;
}

/**
 * Opens an event stream and collects events until `done(events)` is true or `ms` pass; the
 * stream is cancelled either way. `opened` runs once the stream answered (start the action).
 */
export async function collectSse(
  url: string,
  cookie: string,
  done: (events: SseEvent[]) => boolean,
  ms: number,
  opened: () => unknown = () => {},
): Promise<SseEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const events: SseEvent[] = [];
  try {
    const res = await fetch(url, { headers: { cookie }, signal: ac.signal });
    if (!res.ok || !res.body) throw new Error(`Cannot open ${url}: ${res.status}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let started = false;
    try {
      for (;;) {
        const { done: end, value } = await reader.read();
        if (end) break;
        buf += value;
        if (!started) {
          started = true;
          await opened();
        }
        let at;
        while ((at = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
        if (done(events)) break;
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  } catch (e) {
    if (!(e instanceof DOMException && e.name === "AbortError")) throw e;
  } finally {
    clearTimeout(timer);
  }
  return events;
}
