/**
 * The HTTP side as a plain handler: `GET /phone` (WebSocket upgrade), `GET /healthz`,
 * `GET /metrics` (loopback, `--metrics-allow` or `--metrics-token` only). Served by
 * `http/server.ts`; tests call the handler directly too.
 *
 * @module
 */

import type { Metrics } from "../metrics.ts";
import type { PhoneHub } from "./hub.ts";
import type { PhoneService } from "./service.ts";
import type { HttpHandler, RequestInfo } from "../http/server.ts";
import { type AccessRule, allowed } from "../http/access.ts";

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
  /** Who may read `/metrics` besides loopback. @default loopback only */
  metricsAccess?: AccessRule;
}

/**
 * Largest WebSocket message accepted (text or binary, all fragments together); a larger one
 * closes the connection with 1009.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** A text response with its length. */
function text(body: string, status: number, type = "text/plain; charset=utf-8"): Response {
  const bytes = new TextEncoder().encode(body);
  return new Response(bytes, {
    status,
    headers: { "content-type": type, "content-length": String(bytes.length) },
  });
}

/** Builds the request handler. */
export function createHandler(deps: HandlerDeps): HttpHandler {
  const access = deps.metricsAccess ?? { allow: [], token: undefined };
  return (req, info) => {
    const url = new URL(req.url);
    if (req.method !== "GET") return text("method not allowed\n", 405);
    switch (url.pathname) {
      case "/phone":
        return upgrade(req, deps, info);
      case "/healthz": {
        const h = deps.health();
        return text(
          JSON.stringify({ ...h, version: deps.version }),
          h.ok ? 200 : 503,
          "application/json",
        );
      }
      case "/metrics":
        if (!allowed(access, info.remoteAddr.hostname, req.headers.get("authorization"))) {
          deps.metrics.inc("http_metrics_refused_total");
          return text("forbidden\n", 403);
        }
        return text(deps.metrics.render(), 200, "text/plain; version=0.0.4; charset=utf-8");
      default:
        return text("not found\n", 404);
    }
  };
}

function upgrade(req: Request, deps: HandlerDeps, info: RequestInfo): Response {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return text("expected a WebSocket upgrade\n", 426);
  }
  let socket, response;
  try {
    ({ socket, response } = info.upgradeWebSocket(req, { maxMessageBytes: MAX_MESSAGE_BYTES }));
  } catch (e) {
    return text(`${e instanceof Error ? e.message : e}\n`, 400);
  }
  const session = deps.hub.attach(socket, info.remoteAddr.hostname ?? "unknown");
  deps.metrics.inc("phone_connections_total");
  socket.onmessage = (data) =>
    typeof data === "string"
      ? deps.service.onText(session, data)
      : deps.service.onBinary(session, data);
  socket.onclose = () => deps.hub.detach(session);
  return response;
}
