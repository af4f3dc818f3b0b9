import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import {
  generateVapidKeys,
  importVapidKeys,
  VAPID_TOKEN_SECONDS,
  vapidAuthorization,
  vapidClaims,
  verifyVapidAuthorization,
} from "./vapid.ts";
import { fromB64u } from "./web_push_crypto.ts";

Deno.test("vapid claims: aud is the endpoint's origin, exp 12 h on, sub the contact", () => {
  const c = vapidClaims(
    "https://fcm.googleapis.com:443/fcm/send/abc?x=1",
    "mailto:ops@example.com",
    1_767_225_600.7,
  );
  assertEquals(c, {
    aud: "https://fcm.googleapis.com",
    exp: 1_767_225_600 + 12 * 3600,
    sub: "mailto:ops@example.com",
  });
  assert(VAPID_TOKEN_SECONDS <= 24 * 3600, "RFC 8292: at most 24 hours");
  assertEquals(
    vapidClaims("http://127.0.0.1:8080/p/1", "mailto:a@b", 0).aud,
    "http://127.0.0.1:8080",
  );
});

Deno.test("vapid header: ES256 over the claims, verified with k; a changed claim fails", async () => {
  const stored = await generateVapidKeys();
  const raw = fromB64u(stored.publicKey);
  assertEquals([raw.length, raw[0]], [65, 4]);
  const keys = await importVapidKeys(stored);
  const header = await vapidAuthorization(
    "https://push.example.net/x",
    "mailto:ops@example.com",
    keys,
    1000,
  );
  const v = await verifyVapidAuthorization(header);
  assert(typeof v !== "string", String(v));
  assertEquals(v.publicKey, stored.publicKey);
  assertEquals(v.claims, {
    aud: "https://push.example.net",
    exp: 1000 + VAPID_TOKEN_SECONDS,
    sub: "mailto:ops@example.com",
  });
  // A token whose claims were swapped no longer verifies.
  const [h, _c, s] = header.slice("vapid t=".length).split(", k=")[0]!.split(".");
  const forged = btoa(JSON.stringify({ aud: "https://evil.example", exp: 1, sub: "x" }))
    .replaceAll("=", "").replaceAll("+", "-").replaceAll("/", "_");
  assertEquals(
    await verifyVapidAuthorization(`vapid t=${h}.${forged}.${s}, k=${stored.publicKey}`),
    "bad signature",
  );
});

Deno.test("vapid keys: a stored pair that does not match is refused", async () => {
  const a = await generateVapidKeys();
  const b = await generateVapidKeys();
  let why = "";
  try {
    await importVapidKeys({ ...a, publicKey: b.publicKey });
  } catch (e) {
    why = String(e);
  }
  assert(why.includes("does not match"), why);
});
