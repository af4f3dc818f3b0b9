/**
 * The web phone, served by the gateway itself under `/app/` (README "Web phone"): the page, its
 * scripts and style (string modules in `assets/`), the manifest, the icons (drawn in code) and
 * the service worker. Everything comes from the program; nothing is read from disk, built at run
 * time or fetched from elsewhere. `phone/handler.ts` delegates every `/app` path here.
 *
 * Every response is `no-cache` with one ETag per build (the hash of all assets), so a browser
 * revalidates cheaply and the service worker (which keeps the offline copy) is replaced when the
 * gateway is upgraded. Headers forbid framing, sniffing and referrers, and the content security
 * policy allows only the gateway's own origin.
 *
 * @module
 */

import { CORE_JS } from "./assets/core_js.ts";
import { APP_JS } from "./assets/app_js.ts";
import { WORKLET_JS } from "./assets/worklet_js.ts";
import { APP_CSS, INDEX_HTML } from "./assets/index_html.ts";
import { SW_JS_TEMPLATE } from "./assets/sw_js.ts";
import { ICON_COLORS, iconPng, iconSvg } from "./icons.ts";

/** The path prefix of the web phone. */
export const WEBAPP_PREFIX = "/app/";

/** What one path serves. */
interface Asset {
  readonly type: string;
  readonly body: () => Uint8Array;
}

const encoder = new TextEncoder();
const text = (type: string, value: () => string): Asset => {
  let bytes: Uint8Array | undefined;
  return { type, body: () => (bytes ??= encoder.encode(value())) };
};
const binary = (type: string, make: () => Uint8Array): Asset => ({ type, body: make });

/** A 53-bit string hash (cyrb53), as 14 hex digits: the build's version of the assets. */
function hash53(s: string): string {
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0");
}

/** The web app manifest (installable: name, start URL, standalone, 192/512 icons). */
export function manifest(): Record<string, unknown> {
  return {
    id: "/app/",
    name: "Intercom 对讲",
    short_name: "Intercom",
    description: "The building's door intercom on this phone / 本楼门口机对讲",
    start_url: "/app/",
    scope: "/app/",
    display: "standalone",
    orientation: "portrait",
    background_color: "#f8fafc",
    theme_color: ICON_COLORS.teal,
    icons: [
      { src: "/app/icon-192.png", sizes: "192x192", type: "image/png", purpose: "any" },
      { src: "/app/icon-512.png", sizes: "512x512", type: "image/png", purpose: "any" },
      {
        src: "/app/icon-maskable-512.png",
        sizes: "512x512",
        type: "image/png",
        purpose: "maskable",
      },
      { src: "/app/icon.svg", sizes: "any", type: "image/svg+xml", purpose: "any" },
    ],
  };
}

/** The version of this build's assets (also the ETag and the service worker's cache name). */
export const WEBAPP_VERSION: string = hash53(
  [CORE_JS, APP_JS, WORKLET_JS, INDEX_HTML, APP_CSS, SW_JS_TEMPLATE, iconSvg()].join("\0") +
    JSON.stringify(manifest()),
);

/** The paths the service worker keeps for offline use. */
export const SHELL: readonly string[] = [
  "/app/",
  "/app/app.css",
  "/app/core.js",
  "/app/app.js",
  "/app/worklet.js",
  "/app/manifest.webmanifest",
  "/app/icon.svg",
  "/app/icon-192.png",
  "/app/icon-512.png",
];

const JS = "text/javascript; charset=utf-8";

const ASSETS: ReadonlyMap<string, Asset> = new Map<string, Asset>([
  ["/app/", text("text/html; charset=utf-8", () => INDEX_HTML)],
  ["/app/index.html", text("text/html; charset=utf-8", () => INDEX_HTML)],
  ["/app/app.css", text("text/css; charset=utf-8", () => APP_CSS)],
  ["/app/core.js", text(JS, () => CORE_JS)],
  ["/app/app.js", text(JS, () => APP_JS)],
  ["/app/worklet.js", text(JS, () => WORKLET_JS)],
  [
    "/app/sw.js",
    text(JS, () =>
      SW_JS_TEMPLATE.replace("@VERSION@", WEBAPP_VERSION).replace(
        "@SHELL@",
        JSON.stringify(SHELL),
      )),
  ],
  [
    "/app/manifest.webmanifest",
    text("application/manifest+json; charset=utf-8", () => JSON.stringify(manifest(), null, 2)),
  ],
  ["/app/icon.svg", text("image/svg+xml", iconSvg)],
  ["/app/icon-192.png", binary("image/png", () => iconPng(192))],
  ["/app/icon-512.png", binary("image/png", () => iconPng(512))],
  ["/app/icon-maskable-512.png", binary("image/png", () => iconPng(512, true))],
]);

/** Headers of every web phone response. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; "),
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "permissions-policy": "microphone=(self), camera=(), geolocation=()",
};

/** True for the paths this module answers: `/app` and everything under `/app/`. */
export function isWebAppPath(pathname: string): boolean {
  return pathname === "/app" || pathname.startsWith(WEBAPP_PREFIX);
}

/** Answers a GET for a web phone path (see {@linkcode isWebAppPath}). */
export function serveWebApp(req: Request, url: URL = new URL(req.url)): Response {
  if (url.pathname === "/app") {
    // Keep the fragment: the browser re-applies it to the redirect target.
    return new Response(null, {
      status: 308,
      headers: { location: `/app/${url.search}`, ...SECURITY_HEADERS },
    });
  }
  const asset = ASSETS.get(url.pathname);
  if (!asset) {
    return new Response("not found\n", {
      status: 404,
      headers: { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS },
    });
  }
  const etag = `"${WEBAPP_VERSION}"`;
  const headers: Record<string, string> = {
    "content-type": asset.type,
    "cache-control": "no-cache",
    etag,
    ...SECURITY_HEADERS,
  };
  if (url.pathname === "/app/sw.js") headers["service-worker-allowed"] = WEBAPP_PREFIX;
  if (req.headers.get("if-none-match") === etag) {
    return new Response(null, { status: 304, headers });
  }
  const body = asset.body();
  return new Response(body.slice().buffer as ArrayBuffer, { status: 200, headers });
}
