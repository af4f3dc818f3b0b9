import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import {
  type BadRequest,
  encodeMediaControl,
  ERROR_CODE,
  errorMessage,
  GATEWAY_ORDERS,
  isMediaControlOk,
  isPhoneCallMessage,
  MAX_MEDIA_CONTROL_BYTES,
  MAX_MESSAGE_BYTES,
  MEDIA_CONTROL_OK,
  OVER_REASON,
  parseGatewayMessage,
  parseMediaControl,
  parsePhoneMessage,
  PHONE_ORDERS,
} from "./messages.ts";

const ID = { uid: "359608060142756", roomAddress: "Y00010108090", community: "花苑" } as const;
const CALL = { doorAddress: "M00010100", ...ID } as const;

const j = (v: unknown) => JSON.stringify(v);

/** The seed's JSON examples, verbatim except for the stray space in "communit y" (unlock). */
const SEED = {
  callOk:
    `{"order":"call ok", "doorAddress":"M00010100", "roomAddress":"Y00010108090", "uid":"359608060142756", "community":"花苑"}`,
  talk:
    `{"order":"talk", "doorAddress":"M00010100", "roomAddress":"Y00010108090", "uid":"359608060142756", "community":"花苑"}`,
  unlock:
    `{"order":"unlock","doorAddress":"M00010100","roomAddress":"Y00010108090","uid":"359608060142756","community":"花苑"}`,
  unlockVerbatim:
    `{"order":"unlock","doorAddress":"M00010100","roomAddress":"Y00010108090","uid":"359608060142756","communit y":"花苑"}`,
  over:
    `{"order":"over", "doorAddress":"M00010100", "roomAddress":"Y00010108090", "uid":"359608060142756", "community":"花苑"}`,
  overSuccess:
    `{"order":"over success", "doorAddress":"M00010100", "roomAddress":"Y00010108090", "uid":"359608060142756", "community":"花苑"}`,
  // gateway → phone (the seed has no callId; ours adds it)
  call:
    `{"order":"call", "doorAddress":"M00010100", "roomAddress":"Y00010108090", "uid":"359608060142756", "community":"花苑"}`,
  talkBegin:
    `{"order":"talk begin", "doorAddress":"M00010100", "roomAddress":"Y00010108090", "uid":"359608060142756", "community":"花苑"}`,
} as const;

Deno.test("parsePhoneMessage accepts the seed's phone orders exactly", () => {
  const cases: [string, string][] = [
    [SEED.callOk, "call ok"],
    [SEED.talk, "talk"],
    [SEED.unlock, "unlock"],
    [SEED.over, "over"],
    [SEED.overSuccess, "over success"],
  ];
  for (const [text, order] of cases) {
    assertEquals(parsePhoneMessage(text), { order, ...CALL }, order);
  }
});

Deno.test("parsePhoneMessage: the seed's verbatim 'communit y' typo is a missing community", () => {
  assertEquals(parsePhoneMessage(SEED.unlockVerbatim), {
    error: {
      code: "bad_request",
      message: 'order "unlock": missing field "community"',
      ref: "unlock",
    },
  });
});

Deno.test("parsePhoneMessage accepts every phone order with its fields", () => {
  const cases: { name: string; input: Record<string, unknown>; want: Record<string, unknown> }[] = [
    {
      name: "login",
      input: { order: "login", token: "s3cret", ...ID },
      want: { order: "login", ...ID, token: "s3cret" },
    },
    {
      name: "heartbeat",
      input: { order: "heartbeat", ...ID },
      want: { order: "heartbeat", ...ID },
    },
    {
      name: "call ok with callId",
      input: { order: "call ok", ...CALL, callId: "c-1" },
      want: { order: "call ok", ...CALL, callId: "c-1" },
    },
    {
      name: "enable_video defaults to udp",
      input: { order: "enable_video", ...CALL },
      want: { order: "enable_video", ...CALL, transport: "udp" },
    },
    {
      name: "enable_video ws",
      input: { order: "enable_video", ...CALL, transport: "ws" },
      want: { order: "enable_video", ...CALL, transport: "ws" },
    },
    {
      name: "enable_video null transport defaults",
      input: { order: "enable_video", ...CALL, transport: null, callId: null },
      want: { order: "enable_video", ...CALL, transport: "udp" },
    },
    {
      name: "extra fields are dropped",
      input: { order: "talk", ...CALL, app: "1.2", nested: { a: 1 } },
      want: { order: "talk", ...CALL },
    },
    {
      name: "empty community, lower-case letters, short door address",
      input: {
        order: "over",
        ...CALL,
        community: "",
        roomAddress: "y00010108090",
        doorAddress: "m",
      },
      want: {
        order: "over",
        ...CALL,
        community: "",
        roomAddress: "y00010108090",
        doorAddress: "m",
      },
    },
    {
      name: "limits: uid 64, token 256, door 20, callId 64",
      input: {
        order: "login",
        ...ID,
        uid: "u".repeat(64),
        token: "t".repeat(256),
      },
      want: { order: "login", ...ID, uid: "u".repeat(64), token: "t".repeat(256) },
    },
    {
      name: "door address of 20 characters",
      input: {
        order: "unlock",
        ...CALL,
        doorAddress: "M" + "0".repeat(19),
        callId: "x".repeat(64),
      },
      want: { order: "unlock", ...CALL, doorAddress: "M" + "0".repeat(19), callId: "x".repeat(64) },
    },
  ];
  for (const c of cases) assertEquals(parsePhoneMessage(j(c.input)), c.want, c.name);
});

Deno.test("parsePhoneMessage rejects bad input with bad_request, a clear message and ref", () => {
  const long = "x".repeat(MAX_MESSAGE_BYTES);
  const cases: { name: string; text: string; message: string; ref?: string }[] = [
    { name: "empty", text: "", message: "message is not valid JSON" },
    { name: "not JSON", text: "hello", message: "message is not valid JSON" },
    { name: "truncated", text: '{"order":"talk"', message: "message is not valid JSON" },
    { name: "array", text: "[1,2]", message: "message must be a JSON object, got an array" },
    { name: "null", text: "null", message: "message must be a JSON object, got null" },
    { name: "string", text: '"talk"', message: "message must be a JSON object, got string" },
    { name: "number", text: "42", message: "message must be a JSON object, got number" },
    { name: "no order", text: j(ID), message: 'message has no "order"' },
    { name: "error-shaped", text: j({ error: "x" }), message: 'message has no "order"' },
    {
      name: "order not a string",
      text: j({ order: 7, ...ID }),
      message: '"order" must be a string, got number',
    },
    {
      name: "unknown order",
      text: j({ order: "dance", ...ID }),
      message:
        'unknown order "dance" (phone orders: login, heartbeat, call ok, enable_video, talk, unlock, over, over success, dnd, push subscribe, push unsubscribe)',
      ref: "dance",
    },
    {
      name: "gateway-only order",
      text: j({ order: "call", ...CALL }),
      message:
        'unknown order "call" (phone orders: login, heartbeat, call ok, enable_video, talk, unlock, over, over success, dnd, push subscribe, push unsubscribe)',
      ref: "call",
    },
    {
      name: "login without token",
      text: j({ order: "login", ...ID }),
      message: 'order "login": missing field "token"',
      ref: "login",
    },
    {
      name: "token too long",
      text: j({ order: "login", ...ID, token: "t".repeat(257) }),
      message: 'order "login": field "token" must be a string of 1–256 characters, got 257',
      ref: "login",
    },
    {
      name: "empty token",
      text: j({ order: "login", ...ID, token: "" }),
      message: 'order "login": field "token" must be a string of 1–256 characters, got 0',
      ref: "login",
    },
    {
      name: "uid too long",
      text: j({ order: "heartbeat", ...ID, uid: "u".repeat(65) }),
      message: 'order "heartbeat": field "uid" must be a string of 1–64 characters, got 65',
      ref: "heartbeat",
    },
    {
      name: "uid a number",
      text: j({ order: "heartbeat", ...ID, uid: 359608060142756 }),
      message: 'order "heartbeat": field "uid" must be a string, got number',
      ref: "heartbeat",
    },
    {
      name: "missing uid",
      text: j({
        order: "unlock",
        roomAddress: ID.roomAddress,
        community: ID.community,
        doorAddress: "M00010100",
      }),
      message: 'order "unlock": missing field "uid"',
      ref: "unlock",
    },
    {
      name: "null uid",
      text: j({ order: "unlock", ...ID, doorAddress: "M00010100", uid: null }),
      message: 'order "unlock": field "uid" must be a string, got null',
      ref: "unlock",
    },
    {
      name: "room address too short",
      text: j({ order: "heartbeat", ...ID, roomAddress: "Y0001010809" }),
      message:
        'order "heartbeat": field "roomAddress" must be a letter followed by 11 digits, got "Y0001010809"',
      ref: "heartbeat",
    },
    {
      name: "room address without letter",
      text: j({ order: "heartbeat", ...ID, roomAddress: "000010108090" }),
      message:
        'order "heartbeat": field "roomAddress" must be a letter followed by 11 digits, got "000010108090"',
      ref: "heartbeat",
    },
    {
      name: "room address an object",
      text: j({ order: "heartbeat", ...ID, roomAddress: {} }),
      message: 'order "heartbeat": field "roomAddress" must be a string, got an object',
      ref: "heartbeat",
    },
    {
      name: "community too long",
      text: j({ order: "heartbeat", ...ID, community: "c".repeat(65) }),
      message: 'order "heartbeat": field "community" must be at most 64 characters, got 65',
      ref: "heartbeat",
    },
    {
      name: "community a boolean",
      text: j({ order: "heartbeat", ...ID, community: true }),
      message: 'order "heartbeat": field "community" must be a string, got boolean',
      ref: "heartbeat",
    },
    {
      name: "call order without doorAddress",
      text: j({ order: "talk", ...ID }),
      message: 'order "talk": missing field "doorAddress"',
      ref: "talk",
    },
    {
      name: "door address too long",
      text: j({ order: "unlock", ...CALL, doorAddress: "M" + "0".repeat(20) }),
      message:
        'order "unlock": field "doorAddress" must be a letter followed by up to 19 letters or digits, got "M00000000000000000000"',
      ref: "unlock",
    },
    {
      name: "door address with a dash",
      text: j({ order: "over", ...CALL, doorAddress: "M0001-0100" }),
      message:
        'order "over": field "doorAddress" must be a letter followed by up to 19 letters or digits, got "M0001-0100"',
      ref: "over",
    },
    {
      name: "callId a number",
      text: j({ order: "call ok", ...CALL, callId: 5 }),
      message: 'order "call ok": field "callId" must be a string, got number',
      ref: "call ok",
    },
    {
      name: "callId too long",
      text: j({ order: "over success", ...CALL, callId: "c".repeat(65) }),
      message: 'order "over success": field "callId" must be a string of 1–64 characters, got 65',
      ref: "over success",
    },
    {
      name: "bad transport",
      text: j({ order: "enable_video", ...CALL, transport: "tcp" }),
      message: 'order "enable_video": field "transport" must be one of "udp", "ws", got "tcp"',
      ref: "enable_video",
    },
    {
      name: "transport a number",
      text: j({ order: "enable_video", ...CALL, transport: 1 }),
      message: 'order "enable_video": field "transport" must be one of "udp", "ws", got number',
      ref: "enable_video",
    },
    {
      name: "too large (ASCII)",
      text: j({ order: "heartbeat", ...ID, pad: long }),
      message: `message is larger than ${MAX_MESSAGE_BYTES} bytes`,
    },
    {
      name: "too large in UTF-8 only",
      text: j({ order: "heartbeat", ...ID, pad: "花".repeat(1400) }),
      message: `message is larger than ${MAX_MESSAGE_BYTES} bytes`,
    },
  ];
  for (const c of cases) {
    const want: BadRequest = c.ref === undefined
      ? { error: { code: "bad_request", message: c.message } }
      : { error: { code: "bad_request", message: c.message, ref: c.ref } };
    assertEquals(parsePhoneMessage(c.text), want, c.name);
  }
});

Deno.test("parsePhoneMessage: size limit counts UTF-8 bytes, surrogate pairs as 4", () => {
  const base = j({ order: "heartbeat", ...ID, pad: "" });
  const room = MAX_MESSAGE_BYTES - new TextEncoder().encode(base).length;
  // Exactly at the limit with 3-byte characters (plus ASCII filler) is accepted.
  const fits = j({
    order: "heartbeat",
    ...ID,
    pad: "花".repeat(Math.floor(room / 3)) + "a".repeat(room % 3),
  });
  assertEquals(new TextEncoder().encode(fits).length, MAX_MESSAGE_BYTES);
  assert(!("error" in parsePhoneMessage(fits)));
  const emoji = j({ order: "heartbeat", ...ID, pad: "😀".repeat(Math.floor(room / 4) + 1) });
  assertEquals(parsePhoneMessage(emoji), {
    error: { code: "bad_request", message: `message is larger than ${MAX_MESSAGE_BYTES} bytes` },
  });
  assert(!("error" in parsePhoneMessage(j({ order: "heartbeat", ...ID, pad: "😀".repeat(10) }))));
});

Deno.test("parsePhoneMessage never throws on hostile input", () => {
  const inputs = [
    "{}",
    '{"order":null}',
    '{"__proto__":{"order":"talk"}}',
    '{"order":"talk","constructor":1,"toString":2}',
    '{"order":"heartbeat","uid":"a","roomAddress":"Y00010108090","community":"c","hasOwnProperty":1}',
    "\u0000",
    "\ud800",
    "[".repeat(3000),
    undefined as unknown as string,
    42 as unknown as string,
  ];
  for (const text of inputs) {
    const r = parsePhoneMessage(text);
    assert(typeof r === "object" && r !== null, String(text));
  }
  // Inherited fields do not count: __proto__ from JSON is an own key, but not an order.
  assertEquals(parsePhoneMessage('{"__proto__":{"order":"talk"}}'), {
    error: { code: "bad_request", message: 'message has no "order"' },
  });
  assertEquals(parsePhoneMessage(undefined as unknown as string), {
    error: { code: "bad_request", message: "message must be a text frame" },
  });
  const ok = parsePhoneMessage(
    '{"order":"heartbeat","uid":"a","roomAddress":"Y00010108090","community":"c","hasOwnProperty":1}',
  );
  assertEquals(ok, { order: "heartbeat", uid: "a", roomAddress: "Y00010108090", community: "c" });
});

Deno.test("parseGatewayMessage accepts what the gateway sends and rejects what breaks the spec", () => {
  const gwCall = { ...CALL, callId: "c1" };
  const good: Record<string, unknown>[] = [
    { order: "login ok", heartbeatInterval: 2, mediaPort: 8303 },
    { order: "login ok", heartbeatInterval: 2, mediaPort: 8303, ...ID },
    { order: "heartbeat ok" },
    { order: "call", ...gwCall, mediaKey: "k" },
    { order: "talk begin", ...gwCall },
    { order: "unlock success", ...gwCall },
    { order: "unlock fail", ...gwCall, reason: "door_timeout" },
    ...Object.values(OVER_REASON).map((reason) => ({ order: "over", ...gwCall, reason })),
    { order: "over success", ...gwCall },
    { order: "enable_video ok" },
    { order: "enable_video ok", transport: "ws", callId: "c1", doorAddress: "M00010100" },
    ...Object.values(ERROR_CODE).map((code) => ({ order: "error", code, message: "m", ref: "x" })),
    { order: "error", code: "busy", message: "" },
  ];
  for (const m of good) assertEquals(parseGatewayMessage(j(m)), m, j(m));

  const bad: [Record<string, unknown> | string, string, string?][] = [
    ["nope", "message is not valid JSON"],
    [
      { order: "talk" },
      'unknown order "talk" (gateway orders: login ok, heartbeat ok, call, talk begin, unlock success, unlock fail, over, over success, enable_video ok, dnd ok, push ok, error)',
      "talk",
    ],
    [
      { order: "login ok", mediaPort: 8303 },
      'order "login ok": missing field "heartbeatInterval"',
      "login ok",
    ],
    [
      { order: "login ok", heartbeatInterval: 2, mediaPort: 70000 },
      'order "login ok": field "mediaPort" must be an integer in 0–65535, got 70000',
      "login ok",
    ],
    [
      { order: "login ok", heartbeatInterval: "2", mediaPort: 1 },
      'order "login ok": field "heartbeatInterval" must be a number, got string',
      "login ok",
    ],
    [
      { order: "login ok", heartbeatInterval: 0, mediaPort: 1 },
      'order "login ok": field "heartbeatInterval" must be a number in 0.001–3600, got 0',
      "login ok",
    ],
    [{ order: "call", ...gwCall }, 'order "call": missing field "mediaKey"', "call"],
    [{ order: "call", ...CALL, mediaKey: "k" }, 'order "call": missing field "callId"', "call"],
    [
      { order: "talk begin", ...gwCall, community: undefined },
      'order "talk begin": missing field "community"',
      "talk begin",
    ],
    [{ order: "over", ...gwCall }, 'order "over": missing field "reason"', "over"],
    [
      { order: "over", ...gwCall, reason: "bored" },
      'order "over": field "reason" must be one of "door hung up", "ring timeout", "talk timeout", "door lost", "gateway stopping", "answered elsewhere", got "bored"',
      "over",
    ],
    [
      { order: "unlock fail", ...gwCall },
      'order "unlock fail": missing field "reason"',
      "unlock fail",
    ],
    [
      { order: "error", code: "oops", message: "m" },
      'order "error": field "code" must be one of "bad_request", "unauthorized", "login_required", "not_bound", "not_in_call", "busy", "rate_limited", "door_timeout", got "oops"',
      "error",
    ],
    [{ order: "error", code: "busy" }, 'order "error": missing field "message"', "error"],
  ];
  for (const [input, message, ref] of bad) {
    const text = typeof input === "string" ? input : j(input);
    const want: BadRequest = ref === undefined
      ? { error: { code: "bad_request", message } }
      : { error: { code: "bad_request", message, ref } };
    assertEquals(parseGatewayMessage(text), want, text);
  }
  assertEquals(parseGatewayMessage("x".repeat(MAX_MESSAGE_BYTES + 1)), {
    error: { code: "bad_request", message: `message is larger than ${MAX_MESSAGE_BYTES} bytes` },
  });
  assertEquals(parseGatewayMessage(null as unknown as string), {
    error: { code: "bad_request", message: "message must be a text frame" },
  });
});

Deno.test("parseGatewayMessage reads the seed's gateway examples once callId and mediaKey are added", () => {
  // The seed's call has neither callId nor mediaKey: our spec requires both from the gateway.
  assertEquals(parseGatewayMessage(SEED.call), {
    error: { code: "bad_request", message: 'order "call": missing field "callId"', ref: "call" },
  });
  const call = { ...JSON.parse(SEED.call), callId: "c9", mediaKey: "k9" };
  assertEquals(parseGatewayMessage(j(call)), {
    order: "call",
    ...CALL,
    callId: "c9",
    mediaKey: "k9",
  });
  const begin = { ...JSON.parse(SEED.talkBegin), callId: "c9" };
  assertEquals(parseGatewayMessage(j(begin)), { order: "talk begin", ...CALL, callId: "c9" });
});

Deno.test("parseMediaControl: the UDP control datagram", () => {
  const enc = new TextEncoder();
  const ctrl = { uid: "359608060142756", callId: "c1", mediaKey: "k".repeat(32) };
  assertEquals(parseMediaControl(encodeMediaControl(ctrl)), { order: "enable_video", ...ctrl });
  assertEquals(
    new TextDecoder().decode(encodeMediaControl(ctrl)),
    `{"order":"enable_video","uid":"359608060142756","callId":"c1","mediaKey":"${"k".repeat(32)}"}`,
  );
  // Extra fields tolerated and dropped.
  assertEquals(parseMediaControl(enc.encode(j({ order: "enable_video", ...ctrl, v: 2 }))), {
    order: "enable_video",
    ...ctrl,
  });
  const xxxcid = new Uint8Array(141);
  xxxcid.set(enc.encode("XXXCID"));
  const cases: [Uint8Array, string, string?][] = [
    [new Uint8Array(0), "datagram is not a JSON control message"],
    [xxxcid, "datagram is not a JSON control message"],
    [
      enc.encode("{" + " ".repeat(MAX_MEDIA_CONTROL_BYTES)),
      `control datagram is larger than ${MAX_MEDIA_CONTROL_BYTES} bytes`,
    ],
    [new Uint8Array([0x7b, 0xff, 0xfe]), "control datagram is not valid UTF-8"],
    [enc.encode("{bad"), "message is not valid JSON"],
    [enc.encode(j({ uid: "u" })), 'message has no "order"'],
    [
      enc.encode(j({ order: "talk", ...ctrl })),
      'unknown order "talk" (media-port orders: enable_video)',
      "talk",
    ],
    [
      enc.encode(j({ order: "enable_video", uid: "u", callId: "c" })),
      'control datagram "enable_video": missing field "mediaKey"',
      "enable_video",
    ],
    [
      enc.encode(j({ order: "enable_video", ...ctrl, mediaKey: "" })),
      'control datagram "enable_video": field "mediaKey" must be a string of 1–128 characters, got 0',
      "enable_video",
    ],
    [
      enc.encode(j({ order: "enable_video", ...ctrl, callId: 3 })),
      'control datagram "enable_video": field "callId" must be a string, got number',
      "enable_video",
    ],
    [
      enc.encode(j({ order: "enable_video", ...ctrl, uid: "u".repeat(65) })),
      'control datagram "enable_video": field "uid" must be a string of 1–64 characters, got 65',
      "enable_video",
    ],
  ];
  for (const [bytes, message, ref] of cases) {
    const want: BadRequest = ref === undefined
      ? { error: { code: "bad_request", message } }
      : { error: { code: "bad_request", message, ref } };
    assertEquals(parseMediaControl(bytes), want, message);
  }
});

Deno.test("media control ok datagram and helpers", () => {
  const enc = new TextEncoder();
  assertEquals(new TextDecoder().decode(MEDIA_CONTROL_OK), '{"order":"enable_video ok"}');
  assert(isMediaControlOk(MEDIA_CONTROL_OK));
  assert(isMediaControlOk(enc.encode('{"order":"enable_video ok","x":1}')));
  assert(!isMediaControlOk(enc.encode('{"order":"enable_video"}')));
  assert(!isMediaControlOk(enc.encode("{oops")));
  assert(!isMediaControlOk(enc.encode("null")));
  assert(!isMediaControlOk(new Uint8Array(0)));
  assert(!isMediaControlOk(new Uint8Array([0x7b, 0xff])));
  assert(!isMediaControlOk(enc.encode("{" + " ".repeat(MAX_MEDIA_CONTROL_BYTES))));

  const login = parsePhoneMessage(j({ order: "login", token: "t", ...ID }));
  const talk = parsePhoneMessage(SEED.talk);
  assert(!("error" in login) && !("error" in talk));
  assert(!isPhoneCallMessage(login));
  assert(isPhoneCallMessage(talk));

  assertEquals(errorMessage(ERROR_CODE.BUSY, "room busy"), {
    order: "error",
    code: "busy",
    message: "room busy",
  });
  assertEquals(errorMessage(ERROR_CODE.NOT_IN_CALL, "no call", "unlock"), {
    order: "error",
    code: "not_in_call",
    message: "no call",
    ref: "unlock",
  });
  // The tables are the spec's lists.
  assertEquals(Object.values(PHONE_ORDERS).length, 11);
  assertEquals(Object.values(GATEWAY_ORDERS).length, 12);
  assertEquals(Object.values(ERROR_CODE).length, 8);
  // The spec's five `over` reasons, and ours: `gateway stopping`.
  assertEquals(Object.values(OVER_REASON).length, 6);
});

Deno.test("a bare heartbeat is accepted: the session already knows the phone", () => {
  assertEquals(parsePhoneMessage('{"order":"heartbeat"}'), { order: "heartbeat" });
});

Deno.test("push subscribe / unsubscribe: the subscription's fields, bounded", () => {
  const id = { uid: "359608060142756", roomAddress: "Y00010108090", community: "花苑" };
  const sub = {
    ...id,
    endpoint: "https://push.example.net/x",
    p256dh: "B".repeat(87),
    auth: "A".repeat(22),
  };
  assertEquals(
    parsePhoneMessage(JSON.stringify({ order: "push subscribe", ...sub, extra: 1 })),
    { order: "push subscribe", ...sub },
  );
  assertEquals(
    parsePhoneMessage(JSON.stringify({ order: "push unsubscribe", ...id, endpoint: sub.endpoint })),
    { order: "push unsubscribe", ...id, endpoint: sub.endpoint },
  );
  for (
    const bad of [
      { ...sub, endpoint: "" },
      { ...sub, endpoint: "https://x/" + "a".repeat(1024) },
      { ...sub, p256dh: 5 },
      { ...sub, auth: "A".repeat(129) },
      { ...id, endpoint: sub.endpoint, p256dh: sub.p256dh },
    ]
  ) {
    const m = parsePhoneMessage(JSON.stringify({ order: "push subscribe", ...bad }));
    assert("error" in m && m.error.ref === "push subscribe", JSON.stringify(m));
  }
  assert(!isPhoneCallMessage({ order: "push unsubscribe", ...id, endpoint: "https://a.b/" }));
  assertEquals(
    parseGatewayMessage(JSON.stringify({ order: "push ok", subscribed: true, count: 1 })),
    { order: "push ok", subscribed: true, count: 1 },
  );
});
