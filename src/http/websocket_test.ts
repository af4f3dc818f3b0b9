import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { clientFrame, OPCODE } from "../../tests/helpers/raw_ws.ts";
import { FakeClock } from "../testing/fake_clock.ts";
import { type ByteConn, ServerWebSocket, WS_DEFAULTS } from "./websocket.ts";

/** A connection whose reads are fed by the test and whose writes take `perWrite` bytes at most. */
class FakeConn implements ByteConn {
  written: number[] = [];
  /** The arrays passed to `write`, in order. */
  writes: Uint8Array[] = [];
  closed = false;
  fail = false;
  #reads: (Uint8Array | null)[] = [];
  #reader: (() => void) | undefined;
  constructor(readonly perWrite: number) {}
  feed(bytes: Uint8Array | null): void {
    this.#reads.push(bytes);
    this.#reader?.();
  }
  async read(p: Uint8Array): Promise<number | null> {
    while (!this.#reads.length) await new Promise<void>((r) => (this.#reader = r));
    const next = this.#reads.shift()!;
    if (next === null) return null;
    p.set(next);
    // Stale bytes past what was read must never be taken as data.
    p.fill(0xee, next.length, Math.min(p.length, next.length + 64));
    return next.length;
  }
  write(p: Uint8Array): Promise<number> {
    if (this.fail) return Promise.reject(new Error("reset"));
    this.writes.push(p);
    const n = Math.min(p.length, this.perWrite);
    for (let i = 0; i < n; i++) this.written.push(p[i]!);
    return Promise.resolve(n);
  }
  close(): void {
    this.closed = true;
  }
}

/** Server frames (unmasked) in `bytes`: opcode and payload text. */
function frames(bytes: number[]): { op: number; text: string }[] {
  const out: { op: number; text: string }[] = [];
  const dec = new TextDecoder();
  for (let i = 0; i < bytes.length;) {
    const op = bytes[i]! & 0x0f;
    let len = bytes[i + 1]! & 0x7f;
    i += 2;
    if (len === 126) {
      len = (bytes[i]! << 8) | bytes[i + 1]!;
      i += 2;
    }
    out.push({ op, text: dec.decode(new Uint8Array(bytes.slice(i, i + len))) });
    i += len;
  }
  return out;
}

const settle = () => new Promise((r) => setTimeout(r, 0));

Deno.test("websocket: sends keep their order through partial writes and coalescing; a text sent again (its frame reused) goes out whole each time", async () => {
  const clock = new FakeClock();
  const ws = new ServerWebSocket({ ...WS_DEFAULTS, clock });
  const conn = new FakeConn(5);
  const got: string[] = [];
  ws.onmessage = (d) => void got.push(typeof d === "string" ? d : `bin:${d.length}`);
  const running = ws.run(conn, new Uint8Array(0));
  const ok = '{"order":"heartbeat ok","uid":"1"}';
  ws.send(ok);
  ws.send(ok);
  ws.send("x".repeat(300));
  ws.send(ok);
  ws.send(new Uint8Array([1, 2, 3]));
  // A read into the reused buffer: two messages, then one across two reads.
  const hb = clientFrame(OPCODE.text, '{"order":"heartbeat"}');
  conn.feed(new Uint8Array([...hb, ...clientFrame(OPCODE.text, "héllo")]));
  const split = clientFrame(OPCODE.text, "wörld");
  conn.feed(split.subarray(0, 4));
  conn.feed(split.subarray(4));
  for (let i = 0; i < 200 && (got.length < 3 || conn.written.length < 400); i++) await settle();
  assertEquals(got, ['{"order":"heartbeat"}', "héllo", "wörld"]);
  assertEquals(frames(conn.written), [
    { op: OPCODE.text, text: ok },
    { op: OPCODE.text, text: ok },
    { op: OPCODE.text, text: "x".repeat(300) },
    { op: OPCODE.text, text: ok },
    { op: OPCODE.binary, text: "\x01\x02\x03" },
  ]);
  assertEquals(ws.bufferedAmount, 0);
  // Sent again with nothing queued before it, the same text goes out as the very same frame.
  const whole = new FakeConn(1 << 20);
  const ws2 = new ServerWebSocket({ ...WS_DEFAULTS, clock });
  const running2 = ws2.run(whole, new Uint8Array(0));
  ws2.send(ok);
  await settle();
  ws2.send(ok);
  await settle();
  assertEquals(whole.writes.length, 2);
  assert(whole.writes[0] === whole.writes[1], "the frame of a short text sent again is reused");
  assertEquals(frames(whole.written), [{ op: OPCODE.text, text: ok }, {
    op: OPCODE.text,
    text: ok,
  }]);
  whole.feed(null);
  conn.feed(null);
  await Promise.all([running, running2]);
  assert(conn.closed && whole.closed);
});

Deno.test("websocket: a failing write ends the connection once; later sends are ignored", async () => {
  const clock = new FakeClock();
  const ws = new ServerWebSocket({ ...WS_DEFAULTS, clock });
  const conn = new FakeConn(1 << 20);
  let closes = 0;
  ws.onclose = () => void closes++;
  const running = ws.run(conn, new Uint8Array(0));
  conn.fail = true;
  ws.send("a");
  ws.send("b");
  await settle();
  assertEquals([ws.readyState, closes, conn.closed], ["closed", 1, true]);
  ws.send("c");
  assertEquals(ws.bufferedAmount, 0);
  conn.feed(null);
  await running;
  assertEquals(closes, 1);
});
