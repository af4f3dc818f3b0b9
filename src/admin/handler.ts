/**
 * The building manager's console, served by the gateway itself: `/admin` (pages), `/api/v1/`
 * (JSON API, docs/api.md), `/ca.crt` (the local CA a phone trusts). A plain handler over
 * standard `Request`/`Response` (`phone/handler.ts` delegates to it), with every asset embedded
 * (`assets/`): same binary, no build step, no internet.
 *
 * The gate, in order, for `/admin` and `/api`:
 * 1. `--admin-host`: on a listener the console does not answer on, 404.
 * 2. Plain HTTP from another machine while HTTPS is served: pages redirect to HTTPS, the API
 *    answers `https_required` (the session cookie is `Secure` there, the login never crosses
 *    the LAN in clear). Loopback clients may use plain HTTP.
 * 3. Public: the login page and its assets, `POST /api/v1/session` (login, rate-limited per
 *    name and source IP). Everything else needs a live session (cookie), whose account still
 *    exists with the same password; a session whose password was generated may only change it.
 * 4. State-changing requests carry `X-Requested-With: intercom-console` and no foreign `Origin`
 *    (with `SameSite=Strict` cookies: no cross-site request can act).
 * 5. Every action is audited (who, what, when, from where).
 *
 * @module
 */

import type { EventOf } from "../events/types.ts";
import { type AdminAccount, passwordProblem } from "../store/admins.ts";
import {
  type ApiDeps,
  type ApiState,
  DOOR_CONFLICT,
  type RouteContext,
  runApi,
  type TlsInfo,
} from "./api.ts";
import {
  apiError,
  baseHeaders,
  BodyError,
  cookie,
  csrfProblem,
  isLoopback,
  json,
  readJson,
  type RequestContext,
  setCookie,
} from "./http.ts";
import { type Session, SessionStore } from "./sessions.ts";
import { LoginLimiter } from "./login_limiter.ts";
import { ASSETS, consolePage, loginPage } from "./assets/mod.ts";

export type { RequestContext, TlsInfo };

/** The session cookie's name. */
export const SESSION_COOKIE = "intercom_console";

/** Options of {@linkcode AdminConsole}. */
export interface AdminConsoleOptions extends ApiDeps {
  /** Session expiry (tests shorten them). */
  readonly idleMs?: number;
  readonly absoluteMs?: number;
}

const MAX_ALARMS = 100;
const MAX_SINCE = 10_000;

/** The console: its sessions, login limits, live-state helpers and routes. */
export class AdminConsole {
  readonly #d: AdminConsoleOptions;
  readonly #sessions: SessionStore;
  readonly #limiter: LoginLimiter;
  readonly #state: ApiState = { since: new Map(), alarms: [], streams: new Set() };
  readonly #unsubscribe: (() => void)[] = [];

  /** Wires the console to the gateway's events (call start times, alarms, charts). */
  constructor(options: AdminConsoleOptions) {
    this.#d = options;
    this.#sessions = new SessionStore({
      clock: options.clock,
      ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
      ...(options.absoluteMs !== undefined ? { absoluteMs: options.absoluteMs } : {}),
    });
    this.#limiter = new LoginLimiter(options.clock);
    const since = this.#state.since;
    this.#unsubscribe.push(
      options.events.subscribe((e) => {
        if (e.type === "call_started") {
          if (since.size >= MAX_SINCE) since.delete(since.keys().next().value!);
          since.set(e.callId, e.at);
          options.charts.callStarted(e.at);
        } else since.delete(e.callId);
      }, { name: "console_calls", types: ["call_started", "call_ended"] }),
      options.events.subscribe((e) => {
        const alarms = this.#state.alarms;
        alarms.push({ ...(e as unknown as EventOf<"door_seen">) });
        if (alarms.length > MAX_ALARMS) alarms.shift();
      }, { name: "console_alarms", types: [DOOR_CONFLICT] }),
    );
  }

  /** Sessions open now. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Ends the event streams and leaves the event bus (before the server stops). */
  close(): void {
    for (const u of this.#unsubscribe) u();
    for (const s of [...this.#state.streams]) s.close();
  }

  /**
   * The console's answer to `req`, or `undefined` when the path is not the console's
   * (`/admin…`, `/api/…`, `/ca.crt`).
   */
  handle(req: Request, ctx: RequestContext): Promise<Response> | undefined {
    const url = new URL(req.url);
    const path = url.pathname;
    if (path === "/ca.crt") return Promise.resolve(this.#caCert());
    const isAdmin = path === "/admin" || path.startsWith("/admin/");
    const isApi = path === "/api" || path.startsWith("/api/");
    if (!isAdmin && !isApi) return undefined;
    return this.#gate(req, ctx, url, isApi).catch((e) => {
      this.#d.logger.error("console request failed", { path, error: e });
      return apiError("internal", "Cannot answer: internal error (see the gateway's log)");
    });
  }

  #caCert(): Response {
    const pem = this.#d.tls()?.caPem;
    if (!pem) return new Response("no local CA: the gateway serves --tls-cert\n", { status: 404 });
    return new Response(pem, {
      headers: baseHeaders({
        "content-type": "application/x-x509-ca-cert",
        "content-disposition": 'attachment; filename="intercom-gateway-ca.crt"',
      }),
    });
  }

  async #gate(req: Request, ctx: RequestContext, url: URL, isApi: boolean): Promise<Response> {
    const notFound = () =>
      isApi
        ? apiError("not_found", `Cannot find ${url.pathname}`)
        : new Response("not found\n", { status: 404 });
    if (!ctx.adminHere) return new Response("not found\n", { status: 404 });
    const tls = this.#d.tls();
    if (!ctx.secure && tls && !isLoopback(ctx.remote)) {
      if (isApi) {
        return apiError("https_required", "Cannot use the console over plain HTTP: use HTTPS");
      }
      const to = new URL(url);
      to.protocol = "https:";
      to.port = String(tls.port);
      return new Response(null, { status: 308, headers: baseHeaders({ location: to.href }) });
    }
    const path = url.pathname;
    const lang = req.headers.get("accept-language");

    // ---- public ----
    if (path.startsWith("/admin/assets/")) {
      const asset = ASSETS[path.slice("/admin/assets/".length)];
      if (!asset || req.method !== "GET") return notFound();
      if (!asset.public && !(await this.#session(req))) {
        return new Response("login required\n", { status: 401, headers: baseHeaders() });
      }
      return new Response(asset.body, {
        headers: baseHeaders({ "content-type": asset.type, "cache-control": "no-cache" }),
      });
    }
    if (path === "/admin/login") {
      if (req.method !== "GET") return new Response("method not allowed\n", { status: 405 });
      return html(loginPage(lang));
    }
    if (path === "/api/v1/session" && req.method === "POST") return await this.#login(req, ctx);

    // ---- session required ----
    const session = await this.#session(req);
    if (path === "/admin" || path === "/admin/") {
      if (req.method !== "GET") return new Response("method not allowed\n", { status: 405 });
      if (!session) {
        return new Response(null, {
          status: 303,
          headers: baseHeaders({ location: "/admin/login" }),
        });
      }
      return html(consolePage(lang));
    }
    if (!isApi) return notFound();
    if (!session) return apiError("unauthorized", "Cannot answer: log in first");
    if (req.method !== "GET" && req.method !== "HEAD") {
      const problem = csrfProblem(req);
      if (problem) return apiError("csrf", problem);
    }
    if (path === "/api/v1/session") {
      if (req.method === "GET") return this.#sessionInfo(session);
      if (req.method === "DELETE") return await this.#logout(session, ctx);
      return apiError("method_not_allowed", `Cannot ${req.method} /api/v1/session`);
    }
    if (path === "/api/v1/session/password") {
      if (req.method !== "POST") {
        return apiError("method_not_allowed", `Cannot ${req.method} ${path}`);
      }
      return await this.#changePassword(req, session, ctx);
    }
    if (session.mustChange) {
      return apiError(
        "password_change_required",
        "Cannot answer: set your own password first (POST /api/v1/session/password)",
      );
    }
    if (!path.startsWith("/api/v1/")) return notFound();
    const routeCtx: RouteContext = {
      ...ctx,
      session,
      audit: (action, target, detail) => this.#audit(session.name, ctx, action, target, detail),
      stillValid: () => this.#sessions.peek(session.id) !== undefined,
    };
    return await runApi(this.#d, this.#state, req, routeCtx, path.slice("/api/v1/".length)) ??
      notFound();
  }

  /** The live session of the request whose account still holds the password it logged in with. */
  async #session(req: Request): Promise<Session | undefined> {
    const s = this.#sessions.touch(cookie(req, SESSION_COOKIE));
    if (!s) return undefined;
    const account = await this.#d.admins.get(s.name);
    if (!account || account.passwordSetAt !== s.passwordSetAt) {
      this.#sessions.end(s.id);
      return undefined;
    }
    return s;
  }

  #sessionInfo(s: Session): Response {
    return json({
      name: s.name,
      mustChange: s.mustChange,
      expiresInS: Math.floor(this.#sessions.remainingMs(s) / 1000),
      ip: s.ip,
      // Several gateways: this gateway's id (the console offers the whole community's records).
      community: this.#d.community?.gateway ?? null,
    });
  }

  async #audit(
    admin: string,
    ctx: RequestContext,
    action: string,
    target?: string,
    detail?: string,
  ): Promise<void> {
    try {
      await this.#d.admins.audit({
        admin,
        action,
        ip: ctx.remote,
        ...(target !== undefined ? { target } : {}),
        ...(detail !== undefined ? { detail } : {}),
      });
    } catch (e) {
      this.#d.metrics.inc("admin_audit_failures_total");
      this.#d.logger.error("console audit write failed", { action, admin, error: e });
    }
  }

  async #login(req: Request, ctx: RequestContext): Promise<Response> {
    const problem = csrfProblem(req);
    if (problem) return apiError("csrf", problem);
    let body;
    try {
      body = await readJson(req, 4096);
    } catch (e) {
      if (e instanceof BodyError) return apiError(e.code, e.message);
      throw e;
    }
    const name = typeof body.name === "string" ? body.name.slice(0, 64) : "";
    const password = typeof body.password === "string" ? body.password : "";
    const wait = this.#limiter.retryAfterS(name, ctx.remote);
    if (wait > 0) {
      this.#d.metrics.inc("admin_logins_total", { result: "rate_limited" });
      return apiError(
        "rate_limited",
        `Cannot log in now: too many failed attempts, wait ${wait} s`,
        {
          "retry-after": String(wait),
        },
      );
    }
    const account: AdminAccount | undefined = await this.#d.admins.verify(name, password);
    if (!account) {
      this.#limiter.failed(name, ctx.remote);
      this.#d.metrics.inc("admin_logins_total", { result: "refused" });
      await this.#audit(
        name || "(empty)",
        ctx,
        "login_failed",
        undefined,
        "wrong name or password",
      );
      return apiError("unauthorized", "Cannot log in: wrong name or password");
    }
    this.#limiter.succeeded(name, ctx.remote);
    this.#d.metrics.inc("admin_logins_total", { result: "ok" });
    const s = this.#sessions.create(account, ctx.remote);
    await this.#audit(account.name, ctx, "login");
    return json({ name: s.name, mustChange: s.mustChange }, 200, {
      "set-cookie": setCookie(SESSION_COOKIE, s.id, { secure: ctx.secure }),
    });
  }

  async #logout(s: Session, ctx: RequestContext): Promise<Response> {
    this.#sessions.end(s.id);
    await this.#audit(s.name, ctx, "logout");
    return json({ loggedOut: true }, 200, {
      "set-cookie": setCookie(SESSION_COOKIE, "", { secure: ctx.secure, maxAgeS: 0 }),
    });
  }

  async #changePassword(req: Request, s: Session, ctx: RequestContext): Promise<Response> {
    const body = await readJson(req, 4096).catch((e) => e as BodyError);
    if (body instanceof BodyError) return apiError(body.code, body.message);
    const current = typeof body.current === "string" ? body.current : "";
    const next = body.password;
    const problem = passwordProblem(next);
    if (problem) return apiError("bad_request", `Cannot change the password: ${problem}`);
    if (next === current) {
      return apiError("bad_request", "Cannot change the password: the new one is the old one");
    }
    if (!(await this.#d.admins.verify(s.name, current))) {
      return apiError("unauthorized", "Cannot change the password: the current one is wrong");
    }
    const r = await this.#d.admins.setPassword(s.name, next as string);
    s.passwordSetAt = r.account.passwordSetAt;
    s.mustChange = false;
    this.#sessions.endFor(s.name, s.id);
    await this.#audit(s.name, ctx, "password_change");
    return json({ changed: true });
  }
}

function html(body: string): Response {
  return new Response(body, {
    headers: baseHeaders({ "content-type": "text/html; charset=utf-8" }),
  });
}
