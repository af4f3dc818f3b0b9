import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import type { RequestInfo } from "../http/server.ts";
import { crc32, iconPng, iconSvg, rasterIcon } from "./icons.ts";
import { isWebAppPath, serveWebApp, SHELL, WEBAPP_VERSION } from "./handler.ts";
import { createHandler } from "../phone/handler.ts";
import { PhoneHub } from "../phone/hub.ts";
import { Metrics } from "../metrics.ts";
import { FakeClock, nullLogger } from "../testing/mod.ts";
import type { PhoneService } from "../phone/service.ts";

const get = (path: string, headers: Record<string, string> = {}) =>
  serveWebApp(new Request(`http://gw.local${path}`, { headers }));

Deno.test("web app: every shell path is served with its type, no-cache and the build's ETag", async () => {
  const types: Record<string, string> = {
    "/app/": "text/html",
    "/app/app.css": "text/css",
    "/app/core.js": "text/javascript",
    "/app/app.js": "text/javascript",
    "/app/worklet.js": "text/javascript",
    "/app/manifest.webmanifest": "application/manifest+json",
    "/app/icon.svg": "image/svg+xml",
    "/app/icon-192.png": "image/png",
    "/app/icon-512.png": "image/png",
  };
  assertEquals(Object.keys(types).sort(), [...SHELL].sort());
  for (const path of [...SHELL, "/app/sw.js", "/app/index.html", "/app/icon-maskable-512.png"]) {
    const r = get(path);
    assertEquals(r.status, 200, path);
    const want = types[path] ?? (path.endsWith(".png") ? "image/png" : "text/");
    assert(
      r.headers.get("content-type")!.startsWith(want),
      `${path}: ${r.headers.get("content-type")}`,
    );
    assertEquals(r.headers.get("cache-control"), "no-cache");
    assertEquals(r.headers.get("etag"), `"${WEBAPP_VERSION}"`);
    assertEquals(r.headers.get("x-content-type-options"), "nosniff");
    assertEquals(r.headers.get("referrer-policy"), "no-referrer");
    assert(/default-src 'self'/.test(r.headers.get("content-security-policy")!));
    assert((await r.arrayBuffer()).byteLength > 0, path);
  }
  const again = get("/app/app.js", { "if-none-match": `"${WEBAPP_VERSION}"` });
  assertEquals([again.status, await again.text()], [304, ""]);
});

Deno.test("web app: /app redirects to /app/, unknown paths are 404, only /app paths are its", async () => {
  const r = get("/app");
  assertEquals([r.status, r.headers.get("location")], [308, "/app/"]);
  assertEquals(get("/app/secret.txt").status, 404);
  assertEquals(get("/app/../phone").status, 404);
  assert(
    isWebAppPath("/app") && isWebAppPath("/app/x") && !isWebAppPath("/apps") && !isWebAppPath("/"),
  );
  await r.body?.cancel();
});

Deno.test("web app: the page loads only its own scripts and styles; the worker caches the shell of this build", async () => {
  const html = await get("/app/").text();
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  assert(refs.length >= 5);
  for (const ref of refs) {
    assert(ref.startsWith("/app/"), `no external asset: ${ref}`);
    assertEquals(get(ref).status, 200, ref);
  }
  for (const name of ["Answer", "Open door", "Hang up", "Mute"]) assert(html.includes(`>${name}<`));
  const sw = await get("/app/sw.js").text();
  assert(sw.includes(`'webphone-${WEBAPP_VERSION}'`));
  assert(sw.includes(JSON.stringify(SHELL)));
  assertEquals(get("/app/sw.js").headers.get("service-worker-allowed"), "/app/");
});

Deno.test("web app: the manifest makes it installable (name, start URL, standalone, 192 and 512 icons)", async () => {
  const m = await get("/app/manifest.webmanifest").json();
  assertEquals([m.start_url, m.scope, m.display], ["/app/", "/app/", "standalone"]);
  assert(m.name && m.short_name && m.theme_color);
  const sizes = m.icons.map((i: { sizes: string }) => i.sizes);
  assert(sizes.includes("192x192") && sizes.includes("512x512"));
  for (const icon of m.icons) assertEquals(get(icon.src).status, 200, icon.src);
});

Deno.test("web app icons: valid PNGs of the stated size (CRCs, IHDR), and an SVG of the same design", () => {
  for (const [size, maskable] of [[192, false], [512, false], [512, true]] as const) {
    const png = iconPng(size, maskable);
    assertEquals([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const v = new DataView(png.buffer, png.byteOffset);
    let at = 8;
    const chunks: string[] = [];
    while (at < png.length) {
      const len = v.getUint32(at);
      const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
      chunks.push(type);
      assertEquals(v.getUint32(at + 8 + len), crc32(png.subarray(at + 4, at + 8 + len)), type);
      if (type === "IHDR") assertEquals([v.getUint32(at + 8), v.getUint32(at + 12)], [size, size]);
      at += 12 + len;
    }
    assertEquals(chunks, ["IHDR", "IDAT", "IEND"]);
  }
  // Rounded corners are transparent, the maskable one is full bleed; the centre is the panel.
  const rounded = rasterIcon(64, true);
  const bleed = rasterIcon(64, false);
  assertEquals([rounded[3], bleed[3]], [0, 255]);
  const mid = (24 * 64 + 32) * 4; // (50, 38) of 100: the white panel
  assertEquals([...rounded.subarray(mid, mid + 4)], [255, 255, 255, 255]);
  assert(iconSvg().startsWith("<svg") && iconSvg().includes('fill="#0f766e"'));
  assertEquals(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("phone handler: delegates /app to the web app, keeps its own routes", async () => {
  const clock = new FakeClock();
  const metrics = new Metrics();
  const hub = new PhoneHub({ clock, logger: nullLogger, metrics, heartbeatTimeoutMs: 6000 });
  try {
    const handler = createHandler({
      hub,
      service: {} as PhoneService,
      metrics,
      health: () => ({ ok: true }),
      version: "t",
    });
    const info = {
      remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 },
      upgradeWebSocket: () => {
        throw new TypeError("not an upgrade");
      },
    } as unknown as RequestInfo;
    const app = await handler(new Request("http://gw/app/"), info);
    assertEquals(app.status, 200);
    assert((await app.text()).includes("/app/app.js"));
    const none = await handler(new Request("http://gw/nothing"), info);
    assertEquals(none.status, 404);
    await none.body?.cancel();
    const post = await handler(new Request("http://gw/app/", { method: "POST" }), info);
    assertEquals(post.status, 405);
    await post.body?.cancel();
  } finally {
    hub.close();
  }
});
