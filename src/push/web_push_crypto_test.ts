import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import {
  b64u,
  decryptWebPush,
  encryptWebPush,
  fromB64u,
  importP256Private,
  isP256Public,
  MAX_PLAINTEXT,
} from "./web_push_crypto.ts";

// RFC 8291 Appendix A ("Encryption Example", the values of §5's input and output).
const RFC = {
  plaintext: "When I grow up, I want to be a watermelon",
  asPrivate: "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
  asPublic:
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
  uaPrivate: "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
  uaPublic:
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
  salt: "DGv6ra1nlYgDCS1FRnbzlw",
  auth: "BTBZMqHH6r4Tts7J_aSIgg",
  body:
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYW" +
    "AmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSx" +
    "sj_Qulcy4a-fN",
};

const enc = new TextEncoder();

/** Resolves when `fn` rejects with an instance of `type` whose message contains `text`. */
async function rejects(fn: () => Promise<unknown>, type: ErrorConstructor, text: string) {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof type, `${e} is not a ${type.name}`);
    assert(e.message.includes(text), `"${e.message}" lacks "${text}"`);
    return;
  }
  throw new Error("did not reject");
}

Deno.test("web push encryption: RFC 8291's example, byte for byte", async () => {
  const asPublic = fromB64u(RFC.asPublic);
  const body = await encryptWebPush(enc.encode(RFC.plaintext), {
    p256dh: RFC.uaPublic,
    auth: RFC.auth,
  }, {
    salt: fromB64u(RFC.salt),
    sender: {
      privateKey: await importP256Private(fromB64u(RFC.asPrivate), asPublic),
      publicRaw: asPublic,
    },
  });
  assertEquals(b64u(body), RFC.body);
});

Deno.test("web push decryption: reads RFC 8291's example with the user agent's key", async () => {
  const uaPublic = fromB64u(RFC.uaPublic);
  const ua = {
    privateKey: await importP256Private(fromB64u(RFC.uaPrivate), uaPublic),
    publicRaw: uaPublic,
    auth: RFC.auth,
  };
  const text = new TextDecoder().decode(await decryptWebPush(fromB64u(RFC.body), ua));
  assertEquals(text, RFC.plaintext);
  // One flipped byte of the ciphertext: the tag refuses it.
  const broken = fromB64u(RFC.body);
  broken[broken.length - 20]! ^= 1;
  await rejects(() => decryptWebPush(broken, ua), Error, "tag does not match");
});

Deno.test("web push encryption: fresh keys and salt each time, readable by the subscriber", async () => {
  const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
    "deriveBits",
  ]) as CryptoKeyPair;
  const publicRaw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const auth = b64u(crypto.getRandomValues(new Uint8Array(16)));
  const sub = { p256dh: b64u(publicRaw), auth };
  const msg = enc.encode(JSON.stringify({ event: "ring", door: "M00010100" }));
  const a = await encryptWebPush(msg, sub);
  const b = await encryptWebPush(msg, sub);
  assert(b64u(a.slice(0, 16)) !== b64u(b.slice(0, 16)), "a new salt per message");
  assert(b64u(a.slice(21, 86)) !== b64u(b.slice(21, 86)), "a new sender key per message");
  assertEquals(new DataView(a.buffer).getUint32(16), 4096);
  assertEquals(a[20], 65);
  assertEquals(a.length, 86 + msg.length + 1 + 16);
  const ua = { privateKey: pair.privateKey, publicRaw, auth };
  assertEquals(await decryptWebPush(a, ua), msg);
});

Deno.test("web push encryption: refuses bad keys and oversized messages", async () => {
  await rejects(
    () =>
      encryptWebPush(new Uint8Array(MAX_PLAINTEXT + 1), { p256dh: RFC.uaPublic, auth: RFC.auth }),
    RangeError,
    "at most",
  );
  await rejects(
    () => encryptWebPush(enc.encode("x"), { p256dh: RFC.auth, auth: RFC.auth }),
    RangeError,
    "65-byte point",
  );
});

Deno.test("p256dh check: a point off the curve is refused", async () => {
  assertEquals(await isP256Public(fromB64u(RFC.uaPublic)), true);
  assertEquals(await isP256Public(fromB64u("B".repeat(87))), false, "0x04 then junk");
  assertEquals(await isP256Public(fromB64u(RFC.auth)), false);
});
