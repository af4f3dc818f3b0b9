import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { within } from "../../tests/helpers/wait.ts";
import { nullLogger } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import { type HttpHandler, HttpServer, type ServerLimits } from "./server.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function serve(
  handler: HttpHandler,
  limits: Partial<ServerLimits> = {},
  listener: Deno.Listener = Deno.listen({ hostname: "127.0.0.1", port: 0 }),
) {
  const metrics = new Metrics();
  const server = new HttpServer({
    listener,
    handler,
    tls: false,
    metrics,
    logger: nullLogger,
    limits,
  });
  server.start();
  return { server, metrics, port: (listener.addr as Deno.NetAddr).port };
}

/** Sends raw bytes, reads until the server closes or `until` is in the text. */
async function exchange(port: number, text: string, until?: string): Promise<string> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await c.write(enc.encode(text));
    let out = "";
    const buf = new Uint8Array(8192);
    while (!(until && out.includes(until))) {
      const n = await c.read(buf).catch(() => null);
      if (n === null) break;
      out += dec.decode(buf.subarray(0, n));
    }
    return out;
  } finally {
    c.close();
  }
}

Deno.test("http server: keep-alive, POST body, 413, HEAD, 400, chunked framing", async () => {
  const { server, port } = serve(async (req) => {
    if (req.method === "POST") return new Response(`got ${(await req.text()).length}`);
    return new Response(new URL(req.url).pathname, { headers: { "x-a": "1" } });
  }, { maxBodyBytes: 10 });
  try {
    const two = await exchange(
      port,
      "GET /one HTTP/1.1\r\nHost: a\r\n\r\nPOST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    const responses = two.split("HTTP/1.1 200 OK").slice(1);
    assertEquals(responses.length, 2, two);
    assert(responses[0]!.includes("transfer-encoding: chunked") && responses[0]!.includes("/one"));
    assert(responses[0]!.includes("connection: keep-alive") && responses[0]!.includes("x-a: 1"));
    assert(responses[1]!.includes("got 5") && responses[1]!.includes("connection: close"), two);
    const big = await exchange(port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n");
    assert(big.startsWith("HTTP/1.1 413"), big);
    const head = await exchange(port, "HEAD /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert(head.startsWith("HTTP/1.1 200") && head.endsWith("\r\n\r\n"), head);
    const bad = await exchange(port, "NOT HTTP\r\n\r\n");
    assert(bad.startsWith("HTTP/1.1 400"), bad);
    // A Deno fetch client reads it all.
    const res = await fetch(`http://127.0.0.1:${port}/fetched`);
    assertEquals(await res.text(), "/fetched");
  } finally {
    await server.close();
  }
});

Deno.test("http server: a ReadableStream body is streamed as it comes (server-sent events)", async () => {
  let push!: (s: string) => void;
  let end!: () => void;
  const { server, port } = serve(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          push = (s) => c.enqueue(enc.encode(s));
          end = () => c.close();
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    )
  );
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await c.write(enc.encode("GET /events HTTP/1.1\r\nHost: a\r\n\r\n"));
    const buf = new Uint8Array(4096);
    let text = "";
    const readUntil = async (s: string) => {
      while (!text.includes(s)) text += dec.decode(buf.subarray(0, (await c.read(buf))!));
    };
    await readUntil("\r\n\r\n");
    push("data: 1\n\n");
    // The first event arrives while the stream is still open.
    await within(readUntil("data: 1"), 2000);
    assert(text.includes("data: 1"), text);
    push("data: 2\n\n");
    end();
    await within(readUntil("0\r\n\r\n"), 2000);
    assert(text.includes("data: 2") && text.endsWith("0\r\n\r\n"), text);
  } finally {
    c.close();
    await server.close();
  }
});

Deno.test("http server: connections over the per-IP or total cap are closed on accept and counted", async () => {
  for (
    const [caps, reason] of [[{ total: 10, perIp: 3 }, "per_ip"], [
      { total: 3, perIp: 10 },
      "total",
    ]] as const
  ) {
    const { server, metrics, port } = serve(() => new Response("ok"), { caps });
    const conns: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 3; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      const extra = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(extra);
      assertEquals(await within(extra.read(new Uint8Array(8)).catch(() => null), 2000), null);
      assertEquals(metrics.get("http_connections_refused_total", { reason }), 1);
      assertEquals(server.connections, 3);
      // Once one closes, a new connection is served.
      conns.shift()!.close();
      await new Promise((r) => setTimeout(r, 100));
      const ok = await exchange(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
      assert(ok.startsWith("HTTP/1.1 200"), ok);
    } finally {
      for (const c of conns) c.close();
      await server.close();
    }
  }
});

Deno.test("http server: accept failing with EMFILE is counted and retried, never thrown", async () => {
  const real = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let failures = 3;
  const flaky = {
    addr: real.addr,
    accept: () =>
      failures-- > 0
        ? Promise.reject(new Error("Too many open files (os error 24)"))
        : real.accept(),
    close: () => real.close(),
  } as unknown as Deno.Listener;
  const { server, metrics, port } = serve(() => new Response("ok"), {}, flaky);
  try {
    const ok = await exchange(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert(ok.startsWith("HTTP/1.1 200"), ok);
    assertEquals(metrics.get("http_accept_errors_total", { reason: "fd_exhausted" }), 3);
  } finally {
    await server.close();
  }
});

Deno.test("http server: accepted connections have Nagle off (a phone's message never waits for the peer's delayed ACK)", async () => {
  const real = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const set: boolean[] = [];
  // The real listener, with each accepted connection's setNoDelay recorded.
  const listener = {
    addr: real.addr,
    accept: async () => {
      const c = await real.accept();
      const own = c.setNoDelay.bind(c);
      c.setNoDelay = (on?: boolean) => {
        set.push(on ?? true);
        own(on);
      };
      return c;
    },
    close: () => real.close(),
  } as unknown as Deno.Listener;
  const { server, port } = serve(() => new Response("ok"), {}, listener);
  try {
    const got = await exchange(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert(got.startsWith("HTTP/1.1 200"), got);
    assertEquals(set, [true]);
  } finally {
    await server.close();
  }
});
