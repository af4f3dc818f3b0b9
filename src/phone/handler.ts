/**
 * The HTTP side as a plain handler: `GET /phone` (WebSocket upgrade), `GET /healthz`,
 * `GET /metrics`, and the web phone under `/app/` (`webapp/handler.ts`). Only `serve.ts` calls
 * `Deno.serve`; tests call the handler directly.
 *
 * @module
 */

import type { Metrics } from "../metrics.ts";
import type { PhoneHub } from "./hub.ts";
import type { PhoneService } from "./service.ts";
import { isWebAppPath, serveWebApp } from "../webapp/handler.ts";

/** Health of the gateway's parts. */
export interface Health {
  ok: boolean;
  [part: string]: unknown;
}

/** Dependencies of {@linkcode createHandler}. */
export interface HandlerDeps {
  hub: PhoneHub;
  service: PhoneService;
  metrics: Metrics;
  health: () => Health;
  version: string;
}

/** Largest WebSocket message accepted (text or binary). */
export const MAX_FRAME_BYTES = 64 * 1024;

/** Builds the request handler. */
export function createHandler(
  deps: HandlerDeps,
): (req: Request, info?: Deno.ServeHandlerInfo) => Response {
  return (req, info) => {
    const url = new URL(req.url);
    if (req.method !== "GET") return new Response("method not allowed\n", { status: 405 });
    switch (url.pathname) {
      case "/phone":
        return upgrade(req, deps, info);
      case "/healthz": {
        const h = deps.health();
        return Response.json({ ...h, version: deps.version }, { status: h.ok ? 200 : 503 });
      }
      case "/metrics":
        return new Response(deps.metrics.render(), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      default:
        // The web phone (`/app/`): its own module.
        if (isWebAppPath(url.pathname)) return serveWebApp(req, url);
        return new Response("not found\n", { status: 404 });
    }
  };
}

function upgrade(req: Request, deps: HandlerDeps, info?: Deno.ServeHandlerInfo): Response {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("expected a WebSocket upgrade\n", { status: 426 });
  }
  // Read the peer before upgrading: the request is gone afterwards.
  const addr = info?.remoteAddr as Deno.NetAddr | undefined;
  const { socket, response } = Deno.upgradeWebSocket(req, { idleTimeout: 0 });
  socket.binaryType = "arraybuffer";
  const session = deps.hub.attach(socket, addr?.hostname ?? "unknown");
  deps.metrics.inc("phone_connections_total");
  socket.onmessage = (ev) => {
    if (typeof ev.data === "string") {
      deps.service.onText(session, ev.data);
    } else if (ev.data instanceof ArrayBuffer) {
      if (ev.data.byteLength > MAX_FRAME_BYTES) {
        deps.metrics.inc("phone_media_dropped_total", { reason: "oversize" });
        return;
      }
      deps.service.onBinary(session, new Uint8Array(ev.data));
    }
  };
  socket.onclose = () => deps.hub.detach(session);
  socket.onerror = () => deps.hub.detach(session);
  return response;
}
