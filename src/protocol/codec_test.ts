import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import vectors from "../../tests/fixtures/door_vectors.json" with { type: "json" };
import {
  canonicalAddress,
  decodePacket,
  encodeCall,
  encodeMedia,
  encodeNsAsk,
  encodeNsReply,
  encodePacket,
  isMagic,
  LENGTH,
  magicBytes,
  OP,
  type Packet,
  PacketDecodeError,
} from "./mod.ts";

type Vector = (typeof vectors.vectors)[number] & { decodeOnly?: boolean };

const ADDRESS_FIELDS = ["asker", "target", "caller", "callee"] as const;

function decodeOk(hex: string): Packet {
  const p = decodePacket(Uint8Array.fromHex(hex));
  if (p instanceof PacketDecodeError) throw p;
  return p;
}

/** Compares a decoded packet with a vector's field table (addresses on their significant part). */
function checkFields(p: Packet, fields: Record<string, unknown>): void {
  const rec = p as unknown as Record<string, unknown>;
  for (const [k, want] of Object.entries(fields)) {
    if (k === "command") {
      assertEquals(p.kind === "ns_ask" || p.kind === "ns_reply" ? 154 : rec.command, want, k);
    } else if (k === "type") {
      const type = p.kind === "ns_ask" ? 1 : p.kind === "ns_reply" ? 2 : rec.type;
      assertEquals(type, want, k);
    } else if ((ADDRESS_FIELDS as readonly string[]).includes(k)) {
      assertEquals(rec[k], canonicalAddress(String(want)), k);
    } else if (k === "entries") {
      const entries = (want as { address: string; ip: string }[]).map((e) => ({
        address: canonicalAddress(e.address),
        ip: e.ip,
      }));
      assertEquals(rec.entries, entries, k);
    } else {
      assertEquals(rec[k], want, k);
    }
  }
}

for (const v of vectors.vectors as Vector[]) {
  Deno.test(`vector decodes: ${v.name}`, () => {
    checkFields(decodeOk(v.hex), v.fields);
  });
  if (!v.decodeOnly) {
    Deno.test(`vector encodes back byte for byte: ${v.name}`, () => {
      assertEquals(encodePacket(decodeOk(v.hex)).toHex(), v.hex);
    });
  }
}

// The spec's §6 lists these in prose; the vectors file holds them too. Build them from fields
// (not from decoded bytes) so that the encoders are checked independently of the decoder.
const door = { caller: "M00010100", callerIp: "192.168.31.189" };
const room = { callee: "S00010108090", calleeIp: "192.168.31.223" };
const hexByName = Object.fromEntries(vectors.vectors.map((v) => [v.name, v.hex]));

Deno.test("encoders build the §6 packets from fields, at exact lengths", () => {
  const cases: [string, Uint8Array, number][] = [
    [
      "ns ask",
      encodeNsAsk({
        asker: door.caller,
        askerIp: door.callerIp,
        target: room.callee,
        targetIp: "0.0.0.0",
      }),
      56,
    ],
    [
      "ns reply",
      encodeNsReply({
        asker: door.caller,
        askerIp: door.callerIp,
        entries: [{ address: room.callee, ip: room.calleeIp }],
      }),
      57,
    ],
    [
      "call",
      encodeCall({ type: 1, op: OP.CALL, ...door, ...room, multicast: 0, groupIp: "0.0.0.0" }),
      62,
    ],
    ["lineuse", encodeCall({ type: 1, op: OP.LINEUSE, ...door, ...room }), 57],
    ["callanswer", encodeCall({ type: 1, op: OP.CALLANSWER, ...door, ...room }), 62],
    ["callstart ask", encodeCall({ type: 1, op: OP.CALLSTART, ...door, ...room }), 57],
    [
      "callconfirm ask, counter 7",
      encodeCall({ type: 1, op: OP.CALLCONFIRM, ...door, ...room, counter: "07000000" }),
      61,
    ],
    [
      "callconfirm reply, counter 7",
      encodeCall({ type: 2, op: OP.CALLCONFIRM, ...door, ...room, counter: "07000000" }),
      61,
    ],
    ["remoteopenlock ask", encodeCall({ type: 1, op: OP.REMOTEOPENLOCK, ...door, ...room }), 57],
    ["callend ask", encodeCall({ type: 1, op: OP.CALLEND, ...door, ...room }), 57],
    ["callend reply", encodeCall({ type: 2, op: OP.CALLEND, ...door, ...room }), 57],
    ["forceiframe ask", encodeCall({ type: 1, op: OP.FORCEIFRAME, ...door, ...room }), 57],
    [
      "audio from the door, payload at 77",
      encodeMedia({
        op: 7,
        ...door,
        ...room,
        timestamp: 1000,
        dataType: 1,
        frameNo: 42,
        payload: new Uint8Array(64).fill(0xff),
      }),
      141,
    ],
    [
      "audio from the door, payload at 86",
      encodeMedia({
        op: 7,
        ...door,
        ...room,
        timestamp: 1008,
        dataType: 1,
        frameNo: 43,
        payloadOffset: 86,
        payload: new Uint8Array(64).fill(0xd5),
      }),
      150,
    ],
  ];
  for (const [name, bytes, length] of cases) {
    assertEquals(bytes.length, length, name);
    assertEquals(bytes.toHex(), hexByName[name], name);
  }
});

Deno.test("decoding is tolerant: flags masked, longer packets, NUL tails, other magic", () => {
  const call = Uint8Array.fromHex(hexByName["call"]!);
  const flagged = call.slice();
  flagged[7] = 0x80 | 0x10 | 1;
  const p = decodeOk(flagged.toHex());
  assert(p.kind === "call" && p.type === 1 && p.flags === 0x90);

  const longer = new Uint8Array(80);
  longer.set(call);
  const q = decodePacket(longer);
  assert(!(q instanceof PacketDecodeError) && q.kind === "call" && q.op === OP.CALL);

  // One door build writes 0x00 after the 12th character of an S address.
  const nul = call.slice();
  nul[33 + 12] = 0;
  const r = decodePacket(nul);
  assert(!(r instanceof PacketDecodeError) && r.kind === "call" && r.callee === "S00010108090");

  const oem = call.slice();
  oem.set(new TextEncoder().encode("QIUSHI"), 0);
  assert(decodePacket(oem) instanceof PacketDecodeError);
  const s = decodePacket(oem, { magic: "QIUSHI" });
  assert(!(s instanceof PacketDecodeError) && s.kind === "call");
});

Deno.test("every truncation of every vector is a PacketDecodeError with an offset in range", () => {
  for (const v of vectors.vectors) {
    const full = Uint8Array.fromHex(v.hex);
    const packet = decodeOk(v.hex);
    const min = minimumLength(packet);
    for (let n = 0; n < min; n++) {
      // A long-form media packet cut by exactly 9 bytes reads as a valid short form: the
      // header form is only known from Datalen (§5), so that one cut is not an error.
      if (packet.kind === "media" && n - packet.dataLen === LENGTH.MEDIA_SHORT) continue;
      const r = decodePacket(full.subarray(0, n));
      assert(r instanceof PacketDecodeError, `${v.name} cut at ${n} must fail`);
      assert(r.offset >= 0 && r.offset <= n, `${v.name} cut at ${n}: offset ${r.offset}`);
    }
  }
});

function minimumLength(p: Packet): number {
  switch (p.kind) {
    case "ns_ask":
      return LENGTH.NS_ASK;
    case "ns_reply":
      return LENGTH.NS_REPLY_BASE + LENGTH.NS_ENTRY * p.entries.length;
    case "call":
      return encodeCall(p).length;
    case "media":
      // A cut media packet is detected through Datalen: its payload offset no longer matches.
      return p.payloadOffset + p.dataLen;
  }
}

Deno.test("bad input yields our error with the right code and offset", () => {
  const call = Uint8Array.fromHex(hexByName["call"]!);
  const cases: [string, Uint8Array, string, number][] = [
    ["wrong magic", Uint8Array.from([...call.slice(0, 5), 0x41, ...call.slice(6)]), "bad_magic", 0],
    [
      "unknown command",
      Uint8Array.from([...call.slice(0, 6), 99, ...call.slice(7)]),
      "unknown_command",
      6,
    ],
    ["type 0", Uint8Array.from([...call.slice(0, 7), 0, ...call.slice(8)]), "unknown_type", 7],
    [
      "unknown operation",
      Uint8Array.from([...call.slice(0, 8), 99, ...call.slice(9)]),
      "unknown_operation",
      8,
    ],
    [
      "garbage address",
      Uint8Array.from([...call.slice(0, 33), 0x53, 0xff, ...call.slice(35)]),
      "bad_address",
      33,
    ],
  ];
  for (const [name, bytes, code, offset] of cases) {
    const r = decodePacket(bytes);
    assert(r instanceof PacketDecodeError, name);
    assertEquals([r.code, r.offset], [code, offset], name);
    assert(r instanceof SyntaxError);
  }
  const media = Uint8Array.fromHex(hexByName["audio from the door, payload at 77"]!);
  const odd = new Uint8Array(media.length + 3);
  odd.set(media);
  const r = decodePacket(odd);
  assert(r instanceof PacketDecodeError && r.code === "bad_length" && r.offset === 73);
});

Deno.test("a magic is exactly 6 printable ASCII characters (flags, env and the encoder agree)", () => {
  assertEquals(["XXXCID", "QIUSHI", "ab cd~"].map(isMagic), [true, true, true]);
  assertEquals(["ABC", "XXXCIDX", "XXXCI\n", "XXXCI\u00e9", ""].map(isMagic), [
    false,
    false,
    false,
    false,
    false,
  ]);
  assertThrows(() => magicBytes("ABC"), RangeError);
});
