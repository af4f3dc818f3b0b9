// Property-based tests of the door codec: decode is total, encode/decode are inverse on canonical
// packets, and encoded lengths are exact. Fixed seeds: every run checks the same inputs.
import fc from "fast-check";
import { runs } from "../../tests/helpers/scale.ts";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import {
  type CallPacket,
  canonicalAddress,
  type DecodeErrorCode,
  decodePacket,
  encodePacket,
  LENGTH,
  type MediaPacket,
  type NsAsk,
  type NsEntry,
  type NsReply,
  OP,
  type Packet,
  PacketDecodeError,
  SIGNAL_LENGTH,
  type SignalOp,
  SIGNIFICANT_LENGTH,
} from "./mod.ts";

const SEED = 42;
const MAGIC = "XXXCID";
const MAGIC_BYTES = new TextEncoder().encode(MAGIC);

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** `fc.record` of plain objects (fast-check may otherwise build null-prototype ones). */
function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
}

const DIGITS = "0123456789".split("");
const ALNUM = [..."0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"];
const UPPER = [..."ABCDEFGHIJKLMNOPQRSTUVWXYZ"];
const KNOWN_LETTERS = Object.keys(SIGNIFICANT_LENGTH);
const UNKNOWN_LETTERS = UPPER.filter((c) => !KNOWN_LETTERS.includes(c));

const chars = (pool: string[], min: number, max = min) =>
  fc.string({ unit: fc.constantFrom(...pool), minLength: min, maxLength: max });

/**
 * A canonical address, i.e. what the decoder returns: the letter and the rest of its significant
 * length (S 12, M 8, B/H 6, W/Z 5; other letters the whole 20-byte field).
 */
const canonicalAddressArb: fc.Arbitrary<string> = fc.oneof(
  chars(DIGITS, 11).map((d) => `S${d}`),
  chars(DIGITS, 7).map((d) => `M${d}`),
  ...KNOWN_LETTERS.map((l) =>
    chars(ALNUM, SIGNIFICANT_LENGTH[l]! - 1).map((rest) => `${l}${rest}`)
  ),
  fc.tuple(fc.constantFrom(...UNKNOWN_LETTERS), chars(ALNUM, 19)).map(([l, r]) => `${l}${r}`),
);

/** Any address a caller may hand the encoder: a letter and 0–19 letters or digits. */
const looseAddressArb: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...UPPER), chars(ALNUM, 0, 19))
  .map(([l, r]) => `${l}${r}`);

const ipArb: fc.Arbitrary<string> = fc
  .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
  .map((parts) => parts.join("."));

const partiesArb = record({
  caller: canonicalAddressArb,
  callerIp: ipArb,
  callee: canonicalAddressArb,
  calleeIp: ipArb,
});

const commandArb = fc.constantFrom(150, 151, 152, 153) as fc.Arbitrary<CallPacket["command"]>;
const SIGNAL_OPS = Object.keys(SIGNAL_LENGTH).map(Number) as SignalOp[];

const nsAskArb: fc.Arbitrary<NsAsk> = record({
  kind: fc.constant("ns_ask" as const),
  flags: fc.constant(0),
  asker: canonicalAddressArb,
  askerIp: ipArb,
  target: canonicalAddressArb,
  targetIp: ipArb,
});

const nsReplyArb: fc.Arbitrary<NsReply> = record({
  kind: fc.constant("ns_reply" as const),
  flags: fc.constant(0),
  asker: canonicalAddressArb,
  askerIp: ipArb,
  entries: fc.array(
    record({ address: canonicalAddressArb, ip: ipArb }) as fc.Arbitrary<NsEntry>,
    { maxLength: 5 },
  ),
});

const callArb: fc.Arbitrary<CallPacket> = fc
  .record({
    command: commandArb,
    type: fc.constantFrom(1, 2) as fc.Arbitrary<1 | 2>,
    // Upper bits of byte 7 (capability flags): any multiple of 4.
    flags: fc.nat(63).map((f) => f * 4),
    op: fc.constantFrom(...SIGNAL_OPS),
    parties: partiesArb,
    multicast: fc.nat(255),
    groupIp: ipArb,
    counter: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => b.toHex()),
  })
  .map(({ parties, multicast, groupIp, counter, ...rest }): CallPacket => {
    const base = { kind: "call" as const, ...rest, ...parties };
    if (rest.op === OP.CALL || rest.op === OP.CALLANSWER) return { ...base, multicast, groupIp };
    if (rest.op === OP.CALLCONFIRM) return { ...base, counter };
    return base;
  });

const mediaArb: fc.Arbitrary<MediaPacket> = fc
  .record({
    command: commandArb,
    op: fc.constantFrom(7, 8) as fc.Arbitrary<7 | 8>,
    parties: partiesArb,
    timestamp: fc.nat({ max: 0xffffffff }),
    dataType: fc.nat(0xffff),
    frameNo: fc.nat(0xffff),
    frameLen: fc.nat({ max: 0xffffffff }),
    totalPackets: fc.nat(0xffff),
    packet: fc.nat(0xffff),
    packLen: fc.nat(0xffff),
    payloadOffset: fc.constantFrom(77, 86) as fc.Arbitrary<77 | 86>,
    payload: fc.uint8Array({ maxLength: 1200 }),
  })
  .map(({ parties, ...m }): MediaPacket => ({
    kind: "media",
    // Media is always sent as a plain ASK (door-protocol.md §5).
    type: 1,
    flags: 0,
    ...parties,
    ...m,
    dataLen: m.payload.length,
  }));

const packetArb: fc.Arbitrary<Packet> = fc.oneof(nsAskArb, nsReplyArb, callArb, mediaArb);

// ---------------------------------------------------------------------------------------------
// An independent reference encoder: the byte layouts of door-protocol.md §3–§5, written out here
// so that the codec's encoder is not checked against itself.

class Bytes {
  readonly out: number[] = [];
  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }
  le(v: number, n: number): this {
    for (let i = 0; i < n; i++) this.out.push(Math.floor(v / 2 ** (8 * i)) & 0xff);
    return this;
  }
  raw(b: Iterable<number>): this {
    this.out.push(...b);
    return this;
  }
  addr(a: string): this {
    const field = a.padEnd(20, "0");
    for (let i = 0; i < 20; i++) this.out.push(field.charCodeAt(i));
    return this;
  }
  ip(ip: string): this {
    return this.raw(ip.split(".").map(Number));
  }
  get bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

function reference(p: Packet): Uint8Array {
  const b = new Bytes().raw(MAGIC_BYTES);
  switch (p.kind) {
    case "ns_ask":
      return b.u8(154).u8(1).addr(p.asker).ip(p.askerIp).addr(p.target).ip(p.targetIp).bytes;
    case "ns_reply":
      b.u8(154).u8(2).addr(p.asker).ip(p.askerIp).u8(p.entries.length);
      for (const e of p.entries) b.addr(e.address).ip(e.ip);
      return b.bytes;
    case "call":
      b.u8(p.command).u8(p.type | p.flags).u8(p.op);
      b.addr(p.caller).ip(p.callerIp).addr(p.callee).ip(p.calleeIp);
      if (p.op === OP.CALL || p.op === OP.CALLANSWER) b.u8(p.multicast!).ip(p.groupIp!);
      if (p.op === OP.CALLCONFIRM) b.raw(Uint8Array.fromHex(p.counter!));
      return b.bytes;
    case "media":
      b.u8(p.command).u8(1).u8(p.op);
      b.addr(p.caller).ip(p.callerIp).addr(p.callee).ip(p.calleeIp);
      b.le(p.timestamp, 4).le(p.dataType, 2).le(p.frameNo, 2).le(p.frameLen, 4);
      b.le(p.totalPackets, 2).le(p.packet, 2).le(p.payload.length, 2).le(p.packLen, 2);
      if (p.payloadOffset === 86) b.raw(new Uint8Array(9));
      return b.raw(p.payload).bytes;
  }
}

function expectedLength(p: Packet): number {
  switch (p.kind) {
    case "ns_ask":
      return 56;
    case "ns_reply":
      return 33 + 24 * p.entries.length;
    case "call":
      return p.op === OP.CALL || p.op === OP.CALLANSWER ? 62 : p.op === OP.CALLCONFIRM ? 61 : 57;
    case "media":
      return p.payloadOffset + p.payload.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Checks

const ERROR_CODES: readonly DecodeErrorCode[] = [
  "truncated",
  "bad_magic",
  "unknown_command",
  "unknown_type",
  "unknown_operation",
  "bad_length",
  "bad_address",
];

const IP_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function checkAddress(a: string): void {
  assert(/^[A-Z][A-Za-z0-9]*$/.test(a), `address ${JSON.stringify(a)}`);
  const sig = SIGNIFICANT_LENGTH[a[0]!];
  assert(sig === undefined ? a.length <= 20 : a.length === sig, `address ${a}`);
}

/** What every decoder answer must look like, for any input. */
function checkDecoded(bytes: Uint8Array, r: Packet | PacketDecodeError): void {
  if (r instanceof PacketDecodeError) {
    assert(r instanceof SyntaxError);
    assert(ERROR_CODES.includes(r.code), r.code);
    assert(Number.isInteger(r.offset) && r.offset >= 0 && r.offset <= bytes.length, r.message);
    assert(r.message.startsWith("Cannot decode "), r.message);
    // decodePacket turns an exception of a decoder into bad_length at 0: that must never happen.
    assert(!(r.code === "bad_length" && r.offset === 0), `decoder threw: ${r.message}`);
    return;
  }
  assert(["ns_ask", "ns_reply", "call", "media"].includes(r.kind));
  const p = r as unknown as Record<string, unknown>;
  for (const k of ["asker", "target", "caller", "callee"]) {
    if (typeof p[k] === "string") checkAddress(p[k]);
  }
  for (const k of ["askerIp", "targetIp", "callerIp", "calleeIp", "groupIp"]) {
    if (k in p) assert(IP_RE.test(String(p[k])), `${k} ${p[k]}`);
  }
  if (r.kind === "ns_reply") {
    for (const e of r.entries) {
      checkAddress(e.address);
      assert(IP_RE.test(e.ip));
    }
  }
  if (r.kind === "media") {
    assertEquals(r.payloadOffset + r.dataLen, bytes.length);
    assertEquals(r.payload.length, r.dataLen);
  }
  // Whatever decoded re-encodes to a packet that decodes the same. The encoders write what the
  // gateway emits (door-protocol.md §2): NS and media with plain types, long-form filler zeroed.
  // Addresses of unknown letters stop at the first non-alphanumeric byte ("A" from "A\0…") and
  // come back '0'-padded ("A000…"): the same device for sameAddress, so compare canonically.
  const again = decodePacket(encodePacket(r));
  assert(!(again instanceof PacketDecodeError), String(again));
  const plain: Packet = r.kind === "media"
    ? { ...r, type: 1 as const, flags: 0 }
    : r.kind === "ns_ask" || r.kind === "ns_reply"
    ? { ...r, flags: 0 }
    : r;
  assertEquals(canonical(again), canonical(plain));
}

function canonical(p: Packet): Packet {
  const c = canonicalAddress;
  switch (p.kind) {
    case "ns_ask":
      return { ...p, asker: c(p.asker), target: c(p.target) };
    case "ns_reply":
      return {
        ...p,
        asker: c(p.asker),
        entries: p.entries.map((e) => ({ address: c(e.address), ip: e.ip })),
      };
    default:
      return { ...p, caller: c(p.caller), callee: c(p.callee) };
  }
}

function decodes(bytes: Uint8Array): void {
  let r: Packet | PacketDecodeError;
  try {
    r = decodePacket(bytes);
  } catch (e) {
    throw new Error(`decodePacket threw on ${bytes.toHex()}: ${e}`);
  }
  checkDecoded(bytes, r);
}

// ---------------------------------------------------------------------------------------------
// (a) decode is total

Deno.test("fuzz codec: decode of arbitrary bytes returns a packet or a PacketDecodeError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1600 }), (bytes) => decodes(bytes)),
    { seed: SEED, numRuns: runs(500) },
  );
});

Deno.test("fuzz codec: decode of a valid prefix with command 150–154 and random rest", () => {
  const enc = (a: string) => new TextEncoder().encode(a);
  const addressField = fc.oneof(
    { weight: 4, arbitrary: canonicalAddressArb.map((a) => enc(a.padEnd(20, "0"))) },
    { weight: 1, arbitrary: looseAddressArb.map((a) => enc(a.padEnd(20, "\0"))) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 20, maxLength: 20 }) },
  );
  const ipField = ipArb.map((ip) => Uint8Array.from(ip.split(".").map(Number)));
  const body = fc.oneof(
    fc.uint8Array({ maxLength: 1400 }),
    // Shaped like the address block (NS from byte 8, calls from byte 9), then a random tail.
    fc.tuple(
      addressField,
      ipField,
      addressField,
      ipField,
      fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 1300 })),
      fc.oneof(
        { weight: 3, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.nat(150) },
      ),
    ).map(([a, ai, b, bi, tail, cut]) => {
      const all = Uint8Array.from([...a, ...ai, ...b, ...bi, ...tail]);
      return cut === null ? all : all.subarray(0, cut);
    }),
  );
  const prefixed = fc
    .tuple(
      fc.oneof(
        { weight: 5, arbitrary: fc.constantFrom(150, 151, 152, 153, 154) },
        { weight: 1, arbitrary: fc.nat(255) },
      ),
      fc.oneof(
        { weight: 5, arbitrary: fc.constantFrom(1, 2, 0x05, 0x06, 0x81, 0x82) },
        { weight: 1, arbitrary: fc.nat(255) },
      ),
      fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...SIGNAL_OPS, 7, 8) },
        { weight: 1, arbitrary: fc.nat(255) },
      ),
      body,
    )
    // NSORDER has no operation byte: its asker starts at byte 8.
    .map(([cmd, type, op, rest]) =>
      Uint8Array.from([...MAGIC_BYTES, cmd, type, ...(cmd === 154 ? [] : [op]), ...rest])
    );
  fc.assert(fc.property(prefixed, (bytes) => decodes(bytes)), { seed: SEED, numRuns: runs(1000) });
});

Deno.test("fuzz codec: decode of mutated and truncated valid packets", () => {
  const mutated = fc
    .tuple(
      packetArb,
      fc.array(fc.tuple(fc.nat(2000), fc.nat(255)), { maxLength: 4 }),
      fc.oneof(
        fc.constant(undefined),
        fc.nat(120),
        fc.integer({ min: -30, max: 30 }).map((n) => ({ delta: n })),
      ),
    )
    .map(([p, edits, cut]) => {
      let bytes = encodePacket(p).slice();
      for (const [at, v] of edits) if (bytes.length) bytes[at % bytes.length] = v;
      if (typeof cut === "number") bytes = bytes.subarray(0, cut);
      else if (cut && cut.delta < 0) bytes = bytes.subarray(0, bytes.length + cut.delta);
      else if (cut) bytes = Uint8Array.from([...bytes, ...new Uint8Array(cut.delta).fill(0x30)]);
      return bytes;
    });
  fc.assert(fc.property(mutated, (bytes) => decodes(bytes)), { seed: SEED, numRuns: runs(1000) });
});

Deno.test("fuzz codec: decode never reads past a subarray's end", () => {
  // The packet sits inside a larger buffer (as in a receive loop); only the view may be read.
  const framed = fc.tuple(packetArb, fc.nat(100), fc.nat(60), fc.uint8Array({ maxLength: 64 }))
    .map(([p, pre, cut, tail]) => {
      const bytes = encodePacket(p);
      const n = Math.max(0, bytes.length - cut);
      const buf = Uint8Array.from([...new Uint8Array(pre).fill(0x30), ...bytes, ...tail]);
      return { view: buf.subarray(pre, pre + n), copy: bytes.slice(0, n) };
    });
  fc.assert(
    fc.property(framed, ({ view, copy }) => {
      assertEquals(decodePacket(view), decodePacket(copy));
    }),
    { seed: SEED, numRuns: runs(300) },
  );
});

// ---------------------------------------------------------------------------------------------
// (b) encode → decode is the identity; (d) exact lengths

Deno.test("fuzz codec: encode then decode is the identity, at the exact length", () => {
  fc.assert(
    fc.property(packetArb, (p) => {
      const bytes = encodePacket(p);
      assertEquals(bytes.length, expectedLength(p));
      assertEquals(decodePacket(bytes), p);
    }),
    { seed: SEED, numRuns: runs(1000) },
  );
});

Deno.test("fuzz codec: the encoders write the reference layout byte for byte", () => {
  fc.assert(
    fc.property(packetArb, (p) => {
      assertEquals(encodePacket(p).toHex(), reference(p).toHex());
    }),
    { seed: SEED, numRuns: runs(500) },
  );
});

Deno.test("fuzz codec: any letter-and-alnum address decodes to its canonical form", () => {
  fc.assert(
    fc.property(looseAddressArb, looseAddressArb, ipArb, (caller, callee, ip) => {
      const p = { kind: "call", command: 150, type: 1, flags: 0, op: OP.CALLEND } as const;
      const back = decodePacket(encodePacket({
        ...p,
        caller,
        callerIp: ip,
        callee,
        calleeIp: ip,
      }));
      assert(!(back instanceof PacketDecodeError), String(back));
      assertEquals(back, {
        ...p,
        caller: canonicalAddress(caller),
        callerIp: ip,
        callee: canonicalAddress(callee),
        calleeIp: ip,
      });
    }),
    { seed: SEED, numRuns: runs(500) },
  );
});

Deno.test("fuzz codec: another magic round-trips and the default magic rejects it", () => {
  fc.assert(
    fc.property(packetArb, (p) => {
      const bytes = encodePacket(p, { magic: "QIUSHI" });
      assertEquals(decodePacket(bytes, { magic: "QIUSHI" }), p);
      const r = decodePacket(bytes);
      assert(r instanceof PacketDecodeError && r.code === "bad_magic");
    }),
    { seed: SEED, numRuns: runs(200) },
  );
});

// ---------------------------------------------------------------------------------------------
// (c) decode → encode reproduces canonical bytes

Deno.test("fuzz codec: decode then encode reproduces canonical bytes exactly", () => {
  fc.assert(
    fc.property(packetArb, (p) => {
      const bytes = reference(p);
      const decoded = decodePacket(bytes);
      assert(!(decoded instanceof PacketDecodeError), String(decoded));
      assertEquals(encodePacket(decoded).toHex(), bytes.toHex());
      assertEquals(bytes.length, LENGTH_OF[decoded.kind](decoded));
    }),
    { seed: SEED, numRuns: runs(1000) },
  );
});

const LENGTH_OF: Record<Packet["kind"], (p: Packet) => number> = {
  ns_ask: () => LENGTH.NS_ASK,
  ns_reply: (p) => LENGTH.NS_REPLY_BASE + LENGTH.NS_ENTRY * (p as NsReply).entries.length,
  call: (p) => SIGNAL_LENGTH[(p as CallPacket).op],
  media: (p) => (p as MediaPacket).payloadOffset + (p as MediaPacket).dataLen,
};
