import { assertEquals } from "../../tests/helpers/assert.ts";
import { headEnd, parseHead } from "./head.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("request head: the end is found across reads; CRLF and bare LF", () => {
  const a = enc("GET / HTTP/1.1\r\nHost: x\r\n\r\nrest");
  assertEquals(headEnd(a), a.length - 4);
  assertEquals(headEnd(enc("GET / HTTP/1.1\r\nHost: x\r\n")), -1);
  assertEquals(headEnd(enc("GET / HTTP/1.1\nHost: x\n\n")), 24);
  // Searching on from where the last read ended still finds a blank line split across reads.
  assertEquals(headEnd(a, 25), a.length - 4);
});

Deno.test("request head: fields, keep-alive and Content-Length", () => {
  const h = parseHead(
    enc("POST /x?y=1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 12\r\nX-A:  b \r\n\r\n"),
  );
  assertEquals(h, {
    method: "POST",
    target: "/x?y=1",
    version: "1.1",
    fields: [["host", "gw"], ["content-length", "12"], ["x-a", "b"]],
    contentLength: 12,
    keepAlive: true,
  });
  const old = parseHead(enc("GET / HTTP/1.0\r\n\r\n"));
  assertEquals("keepAlive" in old && old.keepAlive, false);
  const closing = parseHead(enc("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  assertEquals("keepAlive" in closing && closing.keepAlive, false);
});

Deno.test("request head: what is refused, with which status", () => {
  const cases: [string, number][] = [
    ["GARBAGE\r\n\r\n", 400],
    ["GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505],
    ["GET / HTTP/1.1\r\n\r\n", 400], // no Host
    ["GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 411],
    ["POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", 400],
    ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\n" + "X: y\r\n".repeat(101) + "\r\n", 431],
  ];
  for (const [text, status] of cases) {
    const h = parseHead(enc(text));
    assertEquals("status" in h ? h.status : 0, status, text);
  }
});
