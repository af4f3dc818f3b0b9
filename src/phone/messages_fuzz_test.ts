// Property-based tests of the phone protocol parsers: total (never throw), every answer is a
// well-formed message or a bad_request, and the accept/reject decision matches an independent
// oracle written from phone-protocol.md. Fixed seeds: every run checks the same inputs.
import fc from "fast-check";
import { runs } from "../../tests/helpers/scale.ts";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import {
  type BadRequest,
  encodeMediaControl,
  type MediaControl,
  parseGatewayMessage,
  parseMediaControl,
  parsePhoneMessage,
  type PhoneMessage,
} from "./messages.ts";

const SEED = 42;
const MAX_TEXT = 4096;
const MAX_DATAGRAM = 512;
const utf8 = new TextEncoder();
const byteLength = (s: string) => utf8.encode(s).length;

// ---------------------------------------------------------------------------------------------
// The oracle: what phone-protocol.md says each order carries

type Field =
  | "uid"
  | "token"
  | "roomAddress"
  | "community"
  | "doorAddress"
  | "callId"
  | "transport"
  | "mediaKey"
  | "until"
  | "endpoint"
  | "p256dh"
  | "auth";

const isStr = (min: number, max: number) => (v: unknown) =>
  typeof v === "string" && v.length >= min && v.length <= max;

const VALID: Record<Field, (v: unknown) => boolean> = {
  uid: isStr(1, 64),
  token: isStr(1, 256),
  roomAddress: (v) => typeof v === "string" && /^[A-Za-z][0-9]{11}$/.test(v),
  community: isStr(0, 64),
  doorAddress: (v) => typeof v === "string" && /^[A-Za-z][A-Za-z0-9]{0,19}$/.test(v),
  callId: isStr(1, 64),
  transport: (v) => v === "udp" || v === "ws",
  mediaKey: isStr(1, 128),
  until: (v) => Number.isSafeInteger(v) && (v as number) >= 0,
  endpoint: isStr(1, 1024),
  p256dh: isStr(1, 128),
  auth: isStr(1, 128),
};

interface Spec {
  required: Field[];
  optional: Field[];
}

const IDENTITY: Field[] = ["uid", "roomAddress", "community"];
const CALL_SPEC: Spec = { required: [...IDENTITY, "doorAddress"], optional: ["callId"] };

const PHONE_SPEC: Record<string, Spec> = {
  "login": { required: [...IDENTITY, "token"], optional: [] },
  "heartbeat": { required: [], optional: IDENTITY },
  "call ok": CALL_SPEC,
  "enable_video": { required: CALL_SPEC.required, optional: ["callId", "transport"] },
  "talk": CALL_SPEC,
  "unlock": CALL_SPEC,
  "over": CALL_SPEC,
  "over success": CALL_SPEC,
  "dnd": { required: [...IDENTITY, "until"], optional: [] },
  "push subscribe": { required: [...IDENTITY, "endpoint", "p256dh", "auth"], optional: [] },
  "push unsubscribe": { required: [...IDENTITY, "endpoint"], optional: [] },
};
const PHONE_ORDERS = Object.keys(PHONE_SPEC);
const CONTROL_SPEC: Spec = { required: ["uid", "callId", "mediaKey"], optional: [] };
const ALL_FIELDS = Object.keys(VALID) as Field[];

/** What a parser must return for the JSON object `obj` of an order with `spec`: null = reject. */
function expected(obj: Record<string, unknown>, spec: Spec): Record<string, unknown> | null {
  const out: Record<string, unknown> = { order: obj.order };
  for (const f of spec.required) {
    if (!Object.hasOwn(obj, f) || !VALID[f](obj[f])) return null;
    out[f] = obj[f];
  }
  for (const f of spec.optional) {
    if (!Object.hasOwn(obj, f) || obj[f] === null) continue;
    if (!VALID[f](obj[f])) return null;
    out[f] = obj[f];
  }
  if (obj.order === "enable_video" && spec === PHONE_SPEC.enable_video) {
    out.transport ??= "udp";
  }
  return out;
}

/** Oracle for a phone text frame: the message, or the `ref` the bad_request must carry. */
function phoneOracle(text: string): { ok: Record<string, unknown> } | { ref: string | null } {
  if (byteLength(text) > MAX_TEXT) return { ref: null };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ref: null };
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return { ref: null };
  const obj = v as Record<string, unknown>;
  if (typeof obj.order !== "string") return { ref: null };
  const spec = PHONE_SPEC[obj.order];
  if (!spec || !Object.hasOwn(PHONE_SPEC, obj.order)) return { ref: obj.order.slice(0, 32) };
  const ok = expected(obj, spec);
  return ok ? { ok } : { ref: obj.order };
}

function controlOracle(bytes: Uint8Array): Record<string, unknown> | null {
  if (bytes.length === 0 || bytes[0] !== 0x7b || bytes.length > MAX_DATAGRAM) return null;
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  const obj = v as Record<string, unknown>;
  return obj.order === "enable_video" ? expected(obj, CONTROL_SPEC) : null;
}

/**
 * A bad_request is exactly `{ error: { code, message, ref? } }` with a bounded message; `ref`:
 * the order it must name, null when it must have none, undefined when not checked.
 */
function checkBadRequest(r: BadRequest, ref?: string | null): void {
  assertEquals(Object.keys(r), ["error"]);
  const e = r.error;
  assertEquals(e.code, "bad_request");
  assert(typeof e.message === "string" && e.message.length > 0 && e.message.length <= 512);
  assertEquals(
    Object.keys(e).sort(),
    e.ref === undefined ? ["code", "message"] : [
      "code",
      "message",
      "ref",
    ],
  );
  if (e.ref !== undefined) assert(typeof e.ref === "string" && e.ref.length <= 32);
  if (ref !== undefined) assertEquals(e.ref, ref ?? undefined);
}

function checkPhone(text: string): void {
  let r: PhoneMessage | BadRequest;
  try {
    r = parsePhoneMessage(text);
  } catch (e) {
    throw new Error(`parsePhoneMessage threw on ${JSON.stringify(text.slice(0, 200))}: ${e}`);
  }
  const want = phoneOracle(text);
  if ("ok" in want) {
    assert(!("error" in r), `rejected ${text.slice(0, 300)}: ${JSON.stringify(r)}`);
    assertEquals(r, want.ok);
  } else {
    assert("error" in r, `accepted ${text.slice(0, 300)}`);
    checkBadRequest(r, want.ref);
  }
}

function checkControl(bytes: Uint8Array): void {
  let r: MediaControl | BadRequest;
  try {
    r = parseMediaControl(bytes);
  } catch (e) {
    throw new Error(`parseMediaControl threw on ${bytes.toHex()}: ${e}`);
  }
  const want = controlOracle(bytes);
  if (want) assertEquals(r, want);
  else {
    assert("error" in r, `accepted ${bytes.toHex()}`);
    checkBadRequest(r, "ref" in r.error ? undefined : null);
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const anyString = (min: number, max: number) =>
  fc.oneof(
    fc.string({ unit: "grapheme-ascii", minLength: min, maxLength: max }),
    // Any code point; slicing may leave a lone surrogate, which JSON carries as \udXXX.
    fc.string({ unit: "binary", minLength: min, maxLength: max }).map((s) => s.slice(0, max)),
  );

const letter = fc.constantFrom(..."ABCMSYZabyz");
const digits = (n: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: n, maxLength: n });

const VALID_ARB: Record<Field, fc.Arbitrary<unknown>> = {
  uid: anyString(1, 64),
  token: anyString(1, 256),
  roomAddress: fc.tuple(letter, digits(11)).map(([l, d]) => l + d),
  community: anyString(0, 64),
  doorAddress: fc
    .tuple(letter, fc.string({ unit: fc.constantFrom(..."0189AMSZaz"), maxLength: 19 }))
    .map(([l, r]) => l + r),
  callId: anyString(1, 64),
  transport: fc.constantFrom("udp", "ws"),
  mediaKey: anyString(1, 128),
  until: fc.oneof(fc.constant(0), fc.nat(), fc.maxSafeNat()),
  endpoint: anyString(1, 200),
  p256dh: anyString(1, 128),
  auth: anyString(1, 128),
};

/** Values that are wrong for some field: wrong types, wrong shapes, boundary lengths. */
const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom("", "x".repeat(65), "x".repeat(129), "x".repeat(257), "S0001010809", "M-1"),
  fc.constantFrom(null, 0, true, [], {}, "UDP", " udp", "Y000101080901", "1Y0001010809"),
);

const extraKey = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "Order", "uid "),
).filter((k) => k !== "order" && !(ALL_FIELDS as string[]).includes(k));

const extras = fc.dictionary(extraKey, fc.jsonValue({ maxDepth: 2 }), {
  maxKeys: 4,
  noNullPrototype: true,
});

const orderValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...PHONE_ORDERS) },
  { weight: 1, arbitrary: fc.constantFrom("Login", "call  ok", "over_success", "x".repeat(40)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
);

/** JSON text of entries (duplicate keys allowed, like any JSON a phone may send). */
function objectText(entries: readonly (readonly [string, unknown])[], pretty: boolean): string {
  const sep = pretty ? ",\n  " : ",";
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(sep)}}`;
}

/** Objects whose known fields are each absent, valid, null or of a random wrong type. */
const randomFieldsText = fc
  .tuple(
    fc.option(orderValue, { freq: 10 }),
    ...ALL_FIELDS.map((f) =>
      fc.oneof(
        { weight: 2, arbitrary: fc.constant(undefined) },
        { weight: 6, arbitrary: VALID_ARB[f] },
        { weight: 2, arbitrary: wrongValue },
      ).map((v) => [f, v] as const)
    ),
  )
  .chain(([order, ...fields]) => {
    const entries: (readonly [string, unknown])[] = fields.filter(([, v]) => v !== undefined);
    if (order !== null) entries.push(["order", order]);
    return fc.tuple(
      fc.shuffledSubarray(entries, { minLength: entries.length }),
      fc.array(fc.tuple(extraKey, fc.jsonValue({ maxDepth: 1 })), { maxLength: 3 }),
      fc.boolean(),
    ).map(([shuffled, more, pretty]) => objectText([...shuffled, ...more], pretty));
  });

/** A valid phone message as an object, with its optional fields absent, null or set. */
const validMessage: fc.Arbitrary<Record<string, unknown>> = fc
  .constantFrom(...PHONE_ORDERS)
  .chain((order) => {
    const spec = PHONE_SPEC[order]!;
    const model: Record<string, fc.Arbitrary<unknown>> = { order: fc.constant(order) };
    for (const f of spec.required) model[f] = VALID_ARB[f];
    for (const f of spec.optional) model[f] = fc.option(VALID_ARB[f], { nil: null });
    return fc.record(model, {
      requiredKeys: ["order", ...spec.required],
      noNullPrototype: true,
    }) as fc.Arbitrary<Record<string, unknown>>;
  });

// ---------------------------------------------------------------------------------------------
// parsePhoneMessage

Deno.test("fuzz phone: arbitrary strings never throw and get bad_request", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: "binary", maxLength: 300 }),
        fc.string({ unit: "grapheme-ascii", maxLength: 300 }),
        fc.string({ unit: fc.constantFrom(...'{}[]":,order \\u0ok'), maxLength: 80 }),
      ),
      checkPhone,
    ),
    { seed: SEED, numRuns: runs(500) },
  );
});

Deno.test("fuzz phone: arbitrary JSON values never throw and match the oracle", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 3 }), (v) => checkPhone(JSON.stringify(v))),
    { seed: SEED, numRuns: runs(500) },
  );
});

Deno.test("fuzz phone: objects with random fields of random types match the oracle", () => {
  fc.assert(fc.property(randomFieldsText, checkPhone), { seed: SEED, numRuns: runs(600) });
});

Deno.test("fuzz phone: valid messages parse to themselves, extra fields dropped", () => {
  fc.assert(
    fc.property(validMessage, extras, fc.boolean(), (msg, more, pretty) => {
      const text = JSON.stringify({ ...more, ...msg }, null, pretty ? 2 : undefined);
      const want: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(msg)) if (v !== null) want[k] = v;
      if (msg.order === "enable_video") want.transport ??= "udp";
      const r = parsePhoneMessage(text);
      if (byteLength(text) > MAX_TEXT) checkBadRequest(r as BadRequest);
      else assertEquals(r, want);
    }),
    { seed: SEED, numRuns: runs(600) },
  );
});

Deno.test("fuzz phone: huge strings are refused before parsing", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: "grapheme-ascii", minLength: 4097, maxLength: 6000 }),
        fc.string({ unit: "binary", minLength: 1400, maxLength: 3000 }).map((s) => `${s}${s}`),
        fc.nat(2).map((n) => `{"order":"login","token":"${"t".repeat(4000 * 10 ** n)}"}`),
        fc.nat(2).map((n) => "[".repeat(4097 * 10 ** n)),
      ),
      checkPhone,
    ),
    { seed: SEED, numRuns: runs(40) },
  );
});

Deno.test("fuzz phone: the 4096-byte limit is exact in UTF-8 bytes", () => {
  // A valid heartbeat padded by an extra field of 1-, 2-, 3- or 4-byte characters to within a few
  // bytes of the limit: accepted exactly when its UTF-8 encoding fits.
  fc.assert(
    fc.property(
      fc.constantFrom("a", "é", "中", "😀"),
      fc.integer({ min: -9, max: 9 }),
      (ch, delta) => {
        const base = `{"order":"heartbeat","pad":""}`;
        const per = byteLength(ch);
        const n = Math.max(0, Math.floor((MAX_TEXT - byteLength(base) + delta) / per));
        const text = `{"order":"heartbeat","pad":"${ch.repeat(n)}"}`;
        const r = parsePhoneMessage(text);
        if (byteLength(text) <= MAX_TEXT) assertEquals(r, { order: "heartbeat" });
        else checkBadRequest(r as BadRequest);
      },
    ),
    { seed: SEED, numRuns: runs(150) },
  );
});

Deno.test("fuzz phone: non-string frames never throw", () => {
  fc.assert(
    fc.property(fc.anything(), (v) => {
      const r = parsePhoneMessage(v as string);
      if (typeof v !== "string") checkBadRequest(r as BadRequest);
      const g = parseGatewayMessage(v as string);
      if (typeof v !== "string") checkBadRequest(g as BadRequest);
    }),
    { seed: SEED, numRuns: runs(200) },
  );
});

Deno.test("fuzz phone: parseGatewayMessage never throws on random objects", () => {
  fc.assert(
    fc.property(randomFieldsText, fc.jsonValue({ maxDepth: 2 }), (text, v) => {
      for (const t of [text, JSON.stringify(v)]) {
        const r = parseGatewayMessage(t);
        if ("error" in r) checkBadRequest(r);
        else assert(typeof r.order === "string");
      }
    }),
    { seed: SEED, numRuns: runs(300) },
  );
});

// ---------------------------------------------------------------------------------------------
// parseMediaControl

const controlObject = fc.record({
  order: fc.oneof(
    { weight: 6, arbitrary: fc.constant("enable_video") },
    { weight: 1, arbitrary: fc.constantFrom("enable_video ok", "talk", "ENABLE_VIDEO") },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
  ),
  uid: fc.oneof({ weight: 4, arbitrary: VALID_ARB.uid }, { weight: 1, arbitrary: wrongValue }),
  callId: fc.oneof({ weight: 4, arbitrary: VALID_ARB.callId }, {
    weight: 1,
    arbitrary: wrongValue,
  }),
  mediaKey: fc.oneof(
    { weight: 4, arbitrary: VALID_ARB.mediaKey },
    { weight: 1, arbitrary: wrongValue },
  ),
}, { requiredKeys: [], noNullPrototype: true });

Deno.test("fuzz media control: arbitrary datagrams never throw and match the oracle", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 700 }),
        fc.uint8Array({ maxLength: 600 }).map((b) => Uint8Array.from([0x7b, ...b])),
        // JSON with a broken UTF-8 byte inside a string.
        fc.tuple(controlObject, fc.constantFrom(0x80, 0xc0, 0xed, 0xff)).map(([o, bad]) => {
          const b = utf8.encode(JSON.stringify({ ...o, x: "\u0001" }));
          return b.map((c) => (c === 1 ? bad : c));
        }),
      ),
      checkControl,
    ),
    { seed: SEED, numRuns: runs(500) },
  );
});

Deno.test("fuzz media control: random control objects match the oracle", () => {
  fc.assert(
    fc.property(controlObject, extras, fc.boolean(), (o, more, pretty) => {
      checkControl(utf8.encode(JSON.stringify({ ...more, ...o }, null, pretty ? 1 : undefined)));
    }),
    { seed: SEED, numRuns: runs(500) },
  );
});

Deno.test("fuzz media control: encodeMediaControl output parses back to itself", () => {
  fc.assert(
    fc.property(VALID_ARB.uid, VALID_ARB.callId, VALID_ARB.mediaKey, (uid, callId, mediaKey) => {
      const c = { uid, callId, mediaKey } as Omit<MediaControl, "order">;
      const bytes = encodeMediaControl(c);
      const r = parseMediaControl(bytes);
      if (bytes.length <= MAX_DATAGRAM) assertEquals(r, { order: "enable_video", ...c });
      else checkBadRequest(r as BadRequest);
    }),
    { seed: SEED, numRuns: runs(500) },
  );
});
