import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { clientFrame, OPCODE } from "../../tests/helpers/raw_ws.ts";
import { closePayload, encodeFrame, FrameDecoder, type WsEvent } from "./ws_frame.ts";

function all(d: FrameDecoder): WsEvent[] {
  const out: WsEvent[] = [];
  for (let e = d.next(); e; e = d.next()) out.push(e);
  return out;
}

Deno.test("ws frames: masked text, binary and fragments decode; byte by byte too", () => {
  const bytes = new Uint8Array([
    ...clientFrame(OPCODE.text, '{"order":"heartbeat"}'),
    ...clientFrame(OPCODE.binary, new Uint8Array(300).fill(7)),
    ...clientFrame(OPCODE.text, "héllo ", { fin: false }),
    ...clientFrame(OPCODE.ping, "p"),
    ...clientFrame(OPCODE.continuation, "wörld"),
  ]);
  for (const step of [bytes.length, 1]) {
    const d = new FrameDecoder(64 * 1024);
    const got: WsEvent[] = [];
    for (let i = 0; i < bytes.length; i += step) {
      d.push(bytes.subarray(i, i + step));
      got.push(...all(d));
    }
    assertEquals(got.map((e) => e.type), ["message", "message", "ping", "message"]);
    assertEquals((got[0] as { data: string }).data, '{"order":"heartbeat"}');
    assertEquals((got[1] as { data: Uint8Array }).data.length, 300);
    assertEquals((got[3] as { data: string }).data, "héllo wörld");
  }
});

Deno.test("ws frames: a message over the limit across fragments is refused on the header (1009), unbuffered", () => {
  const d = new FrameDecoder(64 * 1024);
  const chunk = new Uint8Array(16 * 1024);
  d.push(clientFrame(OPCODE.text, chunk, { fin: false }));
  d.push(clientFrame(OPCODE.continuation, chunk, { fin: false }));
  d.push(clientFrame(OPCODE.continuation, chunk, { fin: false }));
  d.push(clientFrame(OPCODE.continuation, chunk, { fin: false }));
  assertEquals(all(d), []);
  // The fifth fragment's header is enough: its payload is never waited for.
  d.push(clientFrame(OPCODE.continuation, new Uint8Array(0), { fin: false, claimLength: 1 << 30 }));
  assertEquals(all(d), [{ type: "violation", code: 1009, reason: "message over 65536 bytes" }]);
  // What follows is skipped without buffering, until the peer's close frame.
  for (let i = 0; i < 100; i++) d.push(new Uint8Array(64 * 1024));
  assert(d.pending < 1024, `${d.pending} bytes held`);
});

Deno.test("ws frames: after a violation the decoder still finds the peer's close frame", () => {
  const d = new FrameDecoder(1000);
  d.push(clientFrame(OPCODE.binary, new Uint8Array(0), { claimLength: 5000 }));
  assertEquals(all(d)[0]?.type, "violation");
  d.push(new Uint8Array(5000));
  d.push(clientFrame(OPCODE.close, closePayload(1000, "bye")));
  assertEquals(all(d), [{ type: "close", code: 1000, reason: "" }]);
});

Deno.test("ws frames: protocol errors close with 1002, bad UTF-8 with 1007", () => {
  const cases: [Uint8Array, number][] = [
    [clientFrame(OPCODE.text, "{}", { unmasked: true }), 1002],
    [new Uint8Array([0xc1, 0x80, 0, 0, 0, 0]), 1002], // RSV1 without an extension
    [clientFrame(0x3, "x"), 1002], // reserved opcode
    [clientFrame(OPCODE.continuation, "x"), 1002], // nothing to continue
    [clientFrame(OPCODE.ping, "x", { fin: false }), 1002], // fragmented control frame
    [clientFrame(OPCODE.ping, new Uint8Array(126)), 1002], // long control frame
    [clientFrame(OPCODE.close, closePayload(1005, "")), 1002], // reserved close code
    [clientFrame(OPCODE.text, new Uint8Array([0xff, 0xfe])), 1007],
    [
      new Uint8Array([
        ...clientFrame(OPCODE.text, "a", { fin: false }),
        ...clientFrame(OPCODE.text, "b"),
      ]),
      1002,
    ],
  ];
  for (const [bytes, code] of cases) {
    const d = new FrameDecoder(1024);
    d.push(bytes);
    const got = all(d);
    assertEquals([got.length, got[0]?.type, (got[0] as { code?: number })?.code], [
      1,
      "violation",
      code,
    ], bytes.toHex());
  }
});

Deno.test("ws frames: the encoder writes 7-, 16- and 64-bit lengths, unmasked", () => {
  assertEquals(encodeFrame(OPCODE.text, new Uint8Array(5)).subarray(0, 2).toHex(), "8105");
  assertEquals(encodeFrame(OPCODE.binary, new Uint8Array(300)).subarray(0, 4).toHex(), "827e012c");
  assertEquals(
    encodeFrame(OPCODE.binary, new Uint8Array(70_000)).subarray(0, 10).toHex(),
    "827f0000000000011170",
  );
});

Deno.test("ws frames: push takes only the first `length` bytes of a reused read buffer", () => {
  const d = new FrameDecoder(64 * 1024);
  const buf = new Uint8Array(4096).fill(0xee);
  const a = clientFrame(OPCODE.text, '{"order":"heartbeat"}');
  buf.set(a);
  d.push(buf, a.length);
  assertEquals(all(d).map((e) => e.type === "message" && e.data), ['{"order":"heartbeat"}']);
  // The next read overwrites the start of the buffer; what was decoded before is unaffected.
  const b = clientFrame(OPCODE.text, "x".repeat(300));
  buf.fill(0xee);
  buf.set(b);
  d.push(buf, 3);
  assertEquals(all(d), []);
  d.push(buf.subarray(3), b.length - 3);
  assertEquals(all(d).map((e) => e.type === "message" && e.data), ["x".repeat(300)]);
});
