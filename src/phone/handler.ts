/**
 * The HTTP side as a plain handler: `GET /phone` (WebSocket upgrade), `GET /healthz`,
 * `GET /metrics`; the console's paths (`/admin`, `/api/`, `/ca.crt`) go to its own handler.
 * Only `app.ts` calls `Deno.serve`; tests call the handler directly.
 *
 * @module
 */

import type { Metrics } from "../metrics.ts";
import type { PhoneHub } from "./hub.ts";
import type { PhoneService } from "./service.ts";

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
  /** The console (`src/admin/handler.ts`): answers its own paths, `undefined` for others. */
  console?: {
    handle(
      req: Request,
      ctx: { secure: boolean; adminHere: boolean; remote: string },
    ): Promise<Response> | undefined;
  };
  /** The listener this handler serves: TLS or not; whether the console answers on it. */
  listener?: { secure: boolean; adminHere: boolean };
}

/** Largest WebSocket message accepted (text or binary). */
export const MAX_FRAME_BYTES = 64 * 1024;

/** Builds the request handler. */
export function createHandler(
  deps: HandlerDeps,
): (req: Request, info?: Deno.ServeHandlerInfo) => Response | Promise<Response> {
  const listener = deps.listener ?? { secure: false, adminHere: true };
  return (req, info) => {
    const url = new URL(req.url);
    const remote = (info?.remoteAddr as Deno.NetAddr | undefined)?.hostname ?? "unknown";
    const consoleAnswer = deps.console?.handle(req, { ...listener, remote });
    if (consoleAnswer) return consoleAnswer;
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
