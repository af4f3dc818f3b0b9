/**
 * The console's JSON API under `/api/v1/` (docs/api.md): live doors, phones and calls, call
 * history with its snapshots, the unlock and admin audits, bindings, door actions, hanging up a
 * call, charts, and the server-sent event streams of live changes and of the trace. Every
 * answer is JSON (errors `{"error": {"code", "message"}}`) except the snapshot bytes and the
 * event streams. The handler (`handler.ts`) has checked the session and CSRF header first.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { EventBus } from "../events/bus.ts";
import type { GatewayEvent, GatewayEventType } from "../events/types.ts";
import type { CallSnapshot, LiveState } from "../live/state.ts";
import type { Health } from "../phone/handler.ts";
import type { AdminStore } from "../store/admins.ts";
import {
  type Binding,
  type BindingStore,
  BindingsUnavailableError,
  toRoomKey,
  uidProblem,
} from "../store/bindings.ts";
import type { CallRecord, RecordStore } from "../store/records.ts";
import type { SnapshotStore } from "../store/snapshots.ts";
import type { DiskSpace } from "../store/disk_space.ts";
import { doorAddressProblem } from "../store/doors.ts";
import { apiError, baseHeaders, BodyError, json, readJson, type RequestContext } from "./http.ts";
import type { Session } from "./sessions.ts";
import { sseResponse, type SseSink } from "./sse.ts";
import { qrSvg } from "./qr.ts";
import type { ChartSampler } from "./charts.ts";
import { type TraceFilter, traceLine, traceMatches } from "./trace.ts";

/** The door actions the console may take (the door registry). */
export interface DoorActions {
  /** Forgets a door; false when unknown. */
  forget(address: string): Promise<boolean>;
  /** Pins a learned door to its IP; resolves to the doors pinned now. */
  pin(address: string): Promise<readonly unknown[]>;
}

/** What the gateway's HTTPS looks like, for the overview and provisioning links. */
export interface TlsInfo {
  /** The local CA's fingerprint (what a phone trusts), when the gateway made its own. */
  readonly caFingerprint?: string;
  /** The fingerprint of the certificate served. */
  readonly serverFingerprint: string;
  /** The CA's PEM (`GET /ca.crt`), when the gateway made its own. */
  readonly caPem?: string;
  /** The port HTTPS is served on. */
  readonly port: number;
  /** Epoch ms of the served certificate's expiry, when known. */
  readonly notAfter?: number;
  /** Names and addresses in it, when known. */
  readonly names?: readonly string[];
}

/** Everything the API reads and changes. */
export interface ApiDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly events: EventBus;
  readonly live: LiveState;
  readonly admins: AdminStore;
  readonly bindings: BindingStore;
  readonly records: RecordStore;
  readonly snapshots: SnapshotStore;
  readonly doors: DoorActions;
  readonly calls: { hangUp(callId: string): boolean };
  readonly health: () => Health;
  /** The HTTPS served (read at each request: its port is known once listening). */
  readonly tls: () => TlsInfo | undefined;
  /** Bytes of the KV database on disk, when it is a file. */
  readonly storeBytes: () => Promise<number | undefined>;
  /** Free and total space of the store's filesystem (or why it is not known). */
  readonly diskSpace: () => Promise<DiskSpace>;
  readonly version: string;
  /** The box's LAN addresses (provisioning links made from a console opened on localhost). */
  readonly lanIps: readonly string[];
  readonly charts: ChartSampler;
  /** Several gateways (`--cluster`): this gateway's place in the community. Absent on a single box. */
  readonly community?: CommunityRecords;
}

/** The community's records, as the console reads them (several gateways). */
export interface CommunityRecords {
  /** This gateway's id in the community (`--gateway-id`). */
  readonly gateway: string;
  /**
   * The community's latest records from the hub, newest first (each with its `gateway`);
   * throws when the hub is unreachable.
   */
  records(
    kind: "call" | "unlock",
    limit: number,
  ): Promise<readonly { readonly gateway: string; readonly record: unknown }[]>;
}

/** State the API keeps between requests. */
export interface ApiState {
  /** Wall ms at which each live call started (from `call_started`). */
  readonly since: Map<string, number>;
  /** The newest "address claimed from a second IP" alarms (`door_conflict`), newest last. */
  readonly alarms: Record<string, unknown>[];
  /** Open event streams (closed at shutdown). */
  readonly streams: Set<SseSink>;
}

/** The API's answer to one request: a response, or nothing for a path it does not know. */
type Route = (
  deps: ApiDeps,
  state: ApiState,
  req: Request,
  ctx: RouteContext,
  params: string[],
) => Promise<Response> | Response;

/** Records an admin action. */
export type AuditFn = (action: string, target?: string, detail?: string) => Promise<void>;

/** Event types the live stream (`/api/v1/events`) forwards. */
export const LIVE_EVENT_TYPES = [
  "call_started",
  "call_phase",
  "call_answered",
  "call_talk",
  "call_ended",
  "call_refused",
  "phone_joined",
  "phone_left",
  "door_seen",
  "door_media",
  "unlock_attempted",
  "binding_added",
  "binding_removed",
] as const satisfies readonly GatewayEventType[];

/** The door-conflict alarm (`door_conflict`: a door address claimed from a second IP). */
export const DOOR_CONFLICT = "door_conflict" satisfies GatewayEventType;

/** A call's outcome for the history filter. */
export type Outcome = "live" | "answered" | "missed";

/**
 * The outcome of a call record: `answered` once someone talked to the visitor (`call ok` alone
 * is every ringing phone's acknowledgement, not an answer), `missed` otherwise.
 */
export function outcomeOf(r: CallRecord): Outcome {
  if (!r.endedAt) return "live";
  return r.talkAt ? "answered" : "missed";
}

const OUTCOMES: readonly string[] = ["live", "answered", "missed"];

function timeParam(v: string | null, what: string): number | undefined | Response {
  if (v === null || v === "") return undefined;
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) {
    return apiError("bad_request", `Cannot use ${what}=${JSON.stringify(v)}: not a time`);
  }
  return ms;
}

function limitParam(v: string | null, max: number, dflt: number): number | Response {
  if (v === null || v === "") return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > max) {
    return apiError("bad_request", `Cannot use limit=${JSON.stringify(v)}: an integer 1-${max}`);
  }
  return n;
}

/** The origin phones should use: the HTTPS listener, reachable from the LAN. */
export function provisioningOrigin(req: Request, ctx: RequestContext, deps: ApiDeps): string {
  const url = new URL(req.url);
  if (ctx.secure) return url.origin;
  const tls = deps.tls();
  if (!tls) return url.origin;
  const loopback = url.hostname === "localhost" || url.hostname.startsWith("127.");
  const host = loopback ? deps.lanIps[0] ?? url.hostname : url.hostname;
  return `https://${host}${tls.port === 443 ? "" : `:${tls.port}`}`;
}

/**
 * The provisioning link of a binding, as the web phone reads it (docs/phone-protocol.md,
 * "Provisioning link"): the fragment never reaches a server.
 */
export function provisioningLink(origin: string, b: Binding, token: string): string {
  const fragment = new URLSearchParams({
    uid: b.uid,
    room: b.roomAddress,
    token,
    community: b.community,
  });
  return `${origin}/app/#${fragment}`;
}

function liveCall(state: ApiState, c: CallSnapshot) {
  return { ...c, since: state.since.get(c.callId) ?? null };
}

function startOfToday(wallNow: number): number {
  const d = new Date(wallNow);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

// ---- routes ----

const overview: Route = async (deps, state) => {
  const now = deps.clock.wallNow();
  const [today, last, storeBytes, disk] = await Promise.all([
    deps.records.page({ limit: 10_000, fromMs: startOfToday(now), scan: 10_000 }),
    deps.records.page({ limit: 5 }),
    deps.storeBytes().catch(() => undefined),
    deps.diskSpace(),
  ]);
  const calls = deps.live.calls();
  const health = deps.health();
  const tls = deps.tls();
  const kinds = await deps.snapshots.kinds(last.calls.map((c) => c.callId));
  return json({
    version: deps.version,
    now,
    health,
    store: { ok: health.kv !== false, bytes: storeBytes ?? null },
    disk,
    tls: tls
      ? {
        port: tls.port,
        fingerprint: tls.serverFingerprint,
        caFingerprint: tls.caFingerprint ?? null,
        notAfter: tls.notAfter ?? null,
        names: tls.names ?? [],
      }
      : null,
    counts: {
      doors: deps.live.doors().filter((d) => d.lastHeard !== undefined).length,
      phones: deps.live.phones().length,
      callsNow: calls.length,
      callsToday: today.calls.length,
    },
    calls: calls.map((c) => liveCall(state, c)),
    lastCalls: last.calls.map((r) => ({
      ...r,
      outcome: outcomeOf(r),
      snapshot: kinds.get(r.callId) ?? null,
    })),
    alarms: state.alarms.slice(-20),
  });
};

const doors: Route = async (deps, state) => {
  // Calls today per door, from the same bounded read as the overview's count.
  const today = await deps.records.page({
    limit: 10_000,
    fromMs: startOfToday(deps.clock.wallNow()),
    scan: 10_000,
  });
  const perDoor = new Map<string, number>();
  for (const r of today.calls) perDoor.set(r.door, (perDoor.get(r.door) ?? 0) + 1);
  return json({
    doors: deps.live.doors().map((d) => ({ ...d, callsToday: perDoor.get(d.address) ?? 0 })),
    alarms: state.alarms.slice(-50),
    alarmsSupported: true,
  });
};

function doorParam(params: string[]): string | Response {
  const address = decodeURIComponent(params[0] ?? "");
  const problem = doorAddressProblem(address);
  if (problem) {
    return apiError("bad_request", `Cannot use door ${JSON.stringify(address)}: ${problem}`);
  }
  return address;
}

const doorForget: Route = async (deps, _s, _req, ctx, params) => {
  const address = doorParam(params);
  if (address instanceof Response) return address;
  if (!(await deps.doors.forget(address))) {
    return apiError("not_found", `Cannot forget door ${address}: no such door`);
  }
  await ctx.audit("door_forget", address);
  return json({ forgotten: address });
};

const doorPin: Route = async (deps, _s, _req, ctx, params) => {
  const address = doorParam(params);
  if (address instanceof Response) return address;
  const pinned = await deps.doors.pin(address);
  if (pinned.length === 0) {
    return apiError("not_found", `Cannot pin door ${address}: no such learned door with an IP`);
  }
  await ctx.audit("door_pin", address);
  return json({ pinned: address });
};

const phones: Route = (deps) => json({ phones: deps.live.phones() });

const rooms: Route = async (deps) => {
  const all = await deps.bindings.list();
  const online = new Map<string, ReturnType<LiveState["phones"]>[number]>();
  for (const p of deps.live.phones()) for (const r of p.rooms) online.set(`${r}|${p.uid}`, p);
  const byRoom = new Map<
    string,
    { roomKey: string; roomAddress: string; community: string; phones: unknown[] }
  >();
  for (const b of all) {
    let room = byRoom.get(b.roomKey);
    if (!room) {
      room = { roomKey: b.roomKey, roomAddress: b.roomAddress, community: b.community, phones: [] };
      byRoom.set(b.roomKey, room);
    }
    const p = online.get(`${b.roomKey}|${b.uid}`);
    room.phones.push({
      uid: b.uid,
      community: b.community,
      createdAt: b.createdAt,
      online: p
        ? { ip: p.ip, transport: p.transport, since: p.since, lastHeard: p.lastHeard }
        : null,
    });
  }
  return json({ rooms: [...byRoom.values()] });
};

const bindingsList: Route = async (deps, _s, req) => {
  const url = new URL(req.url);
  const filter: { room?: string; uid?: string } = {};
  const room = url.searchParams.get("room");
  const uid = url.searchParams.get("uid");
  if (room) filter.room = room;
  if (uid) filter.uid = uid;
  return json({ bindings: await deps.bindings.list(filter) });
};

async function issued(
  deps: ApiDeps,
  req: Request,
  ctx: RequestContext,
  r: { binding: Binding; token: string; rotated: boolean },
) {
  const link = provisioningLink(provisioningOrigin(req, ctx, deps), r.binding, r.token);
  return {
    binding: r.binding,
    rotated: r.rotated,
    token: r.token,
    link,
    qrSvg: await qrSvg(link),
  };
}

const bindingAdd: Route = async (deps, _s, req, ctx) => {
  const body = await readJson(req);
  const uid = body.uid;
  const room = body.room ?? body.roomAddress;
  const community = body.community ?? "";
  let r;
  try {
    r = await deps.bindings.add({
      uid: uid as string,
      roomAddress: room as string,
      community: community as string,
    });
  } catch (e) {
    if (e instanceof TypeError) return apiError("bad_request", e.message);
    throw e;
  }
  await ctx.audit(
    r.rotated ? "binding_rotate" : "binding_add",
    `${r.binding.uid}@${r.binding.roomKey}`,
  );
  return json(await issued(deps, req, ctx, r), r.rotated ? 200 : 201);
};

function bindingParams(params: string[]): { room: string; uid: string } | Response {
  const room = toRoomKey(decodeURIComponent(params[0] ?? ""));
  const uid = decodeURIComponent(params[1] ?? "");
  if (room === undefined) {
    return apiError("bad_request", "Cannot use the room: a room address or its 11 digits");
  }
  const problem = uidProblem(uid);
  if (problem) return apiError("bad_request", `Cannot use the uid: ${problem}`);
  return { room, uid };
}

const bindingRotate: Route = async (deps, _s, req, ctx, params) => {
  const p = bindingParams(params);
  if (p instanceof Response) return p;
  const existing = await deps.bindings.get(p.uid, p.room);
  if (!existing) {
    return apiError("not_found", `Cannot rotate ${p.uid} in room ${p.room}: no such binding`);
  }
  const r = await deps.bindings.add({
    uid: existing.uid,
    roomAddress: existing.roomAddress,
    community: existing.community,
  });
  await ctx.audit("binding_rotate", `${p.uid}@${p.room}`);
  return json(await issued(deps, req, ctx, r));
};

const bindingRemove: Route = async (deps, _s, _req, ctx, params) => {
  const p = bindingParams(params);
  if (p instanceof Response) return p;
  const removed = await deps.bindings.remove(p.uid, p.room);
  if (removed === 0) {
    return apiError("not_found", `Cannot remove ${p.uid} from room ${p.room}: no such binding`);
  }
  await ctx.audit("binding_remove", `${p.uid}@${p.room}`);
  return json({ removed });
};

/**
 * `GET /api/v1/community/calls|unlocks`: the whole community's records (several gateways), or
 * this gateway's with `scope: "local"` and the reason when the hub is unreachable. Every record
 * names its gateway; calls carry their outcome, and their snapshot kind when this gateway has it.
 */
const communityRecords: Route = async (deps, _s, req, _ctx, params) => {
  const kind = params[0] === "unlocks" ? "unlock" : "call";
  const limit = limitParam(new URL(req.url).searchParams.get("limit"), 500, 50);
  if (limit instanceof Response) return limit;
  const community = deps.community;
  if (!community) {
    return apiError("not_found", "Cannot show the community: this gateway runs on its own");
  }
  const own = community.gateway;
  let found: { gateway: string; record: Record<string, unknown> }[];
  let note: string | undefined;
  try {
    found = (await community.records(kind, limit)).map((r) => ({
      gateway: r.gateway,
      record: r.record as Record<string, unknown>,
    }));
  } catch (e) {
    note = `Showing this gateway's records only: the community hub is unreachable (${
      e instanceof Error ? e.message : String(e)
    })`;
    const local = kind === "call"
      ? (await deps.records.page({ limit })).calls
      : await deps.records.recentUnlocks(limit);
    found = local.map((record) => ({
      gateway: own,
      record: record as unknown as Record<string, unknown>,
    }));
  }
  const records = kind === "unlock"
    ? found.map((r) => ({ gateway: r.gateway, ...r.record }))
    : await withOutcome(deps, own, found);
  return json({
    scope: note === undefined ? "community" : "local",
    gateway: own,
    ...(note === undefined
      ? { gateways: [...new Set(found.map((r) => r.gateway))].sort() }
      : { note }),
    records,
  });
};

/** Community call records with their outcome, and this gateway's snapshot kinds. */
async function withOutcome(
  deps: ApiDeps,
  own: string,
  found: readonly { gateway: string; record: Record<string, unknown> }[],
): Promise<Record<string, unknown>[]> {
  const ownIds = found.filter((r) => r.gateway === own).map((r) => String(r.record.callId));
  const kinds = await deps.snapshots.kinds(ownIds);
  return found.map((r) => {
    const call = r.record as unknown as CallRecord;
    return {
      gateway: r.gateway,
      ...r.record,
      outcome: outcomeOf(call),
      // Snapshots stay on the gateway that took them: `undefined` for another gateway's call.
      snapshot: r.gateway === own ? kinds.get(call.callId) ?? null : undefined,
    };
  });
}

const callsLive: Route = (deps, state) =>
  json({ calls: deps.live.calls().map((c) => liveCall(state, c)) });

const callHangup: Route = async (deps, _s, _req, ctx, params) => {
  const callId = decodeURIComponent(params[0] ?? "");
  if (!deps.calls.hangUp(callId)) {
    return apiError(
      "not_found",
      `Cannot hang up call ${JSON.stringify(callId)}: no such live call`,
    );
  }
  await ctx.audit("call_hangup", callId);
  return json({ hungUp: callId });
};

const callsHistory: Route = async (deps, _s, req) => {
  const q = new URL(req.url).searchParams;
  const limit = limitParam(q.get("limit"), 200, 50);
  if (limit instanceof Response) return limit;
  const from = timeParam(q.get("from"), "from");
  if (from instanceof Response) return from;
  const to = timeParam(q.get("to"), "to");
  if (to instanceof Response) return to;
  const outcome = q.get("outcome") || undefined;
  if (outcome !== undefined && !OUTCOMES.includes(outcome)) {
    return apiError(
      "bad_request",
      `Cannot use outcome=${JSON.stringify(outcome)}: one of ${OUTCOMES.join(", ")}`,
    );
  }
  const roomParam = q.get("room") || undefined;
  const room = roomParam === undefined ? undefined : toRoomKey(roomParam);
  if (roomParam !== undefined && room === undefined) {
    return apiError(
      "bad_request",
      `Cannot use room=${JSON.stringify(roomParam)}: a room address or its 11 digits`,
    );
  }
  const door = q.get("door")?.trim().toUpperCase() || undefined;
  const page = await deps.records.page({
    limit,
    ...(from !== undefined ? { fromMs: from } : {}),
    ...(to !== undefined ? { toMs: to } : {}),
    ...(q.get("cursor") ? { cursor: q.get("cursor")! } : {}),
    filter: (r) =>
      (room === undefined || r.roomKey === room) &&
      (door === undefined || r.door === door) &&
      (outcome === undefined || outcomeOf(r) === outcome),
  });
  const kinds = await deps.snapshots.kinds(page.calls.map((c) => c.callId));
  return json({
    calls: page.calls.map((r) => ({
      ...r,
      outcome: outcomeOf(r),
      snapshot: kinds.get(r.callId) ?? null,
    })),
    next: page.next ?? null,
  });
};

const callOne: Route = async (deps, _s, _req, _ctx, params) => {
  const callId = decodeURIComponent(params[0] ?? "");
  const r = await deps.records.get(callId);
  if (!r) return apiError("not_found", `Cannot show call ${JSON.stringify(callId)}: no such call`);
  const kinds = await deps.snapshots.kinds([callId]);
  return json({ call: { ...r, outcome: outcomeOf(r), snapshot: kinds.get(callId) ?? null } });
};

const callSnapshot: Route = async (deps, _s, _req, _ctx, params) => {
  const callId = decodeURIComponent(params[0] ?? "");
  const snap = await deps.snapshots.get(callId);
  if (!snap) {
    return apiError("not_found", `Cannot show the snapshot of ${JSON.stringify(callId)}: none`);
  }
  const jpeg = snap.kind === "jpeg";
  return new Response(snap.bytes as Uint8Array<ArrayBuffer>, {
    headers: baseHeaders({
      "content-type": jpeg ? "image/jpeg" : "application/octet-stream",
      ...(jpeg ? {} : { "content-disposition": `attachment; filename="${callId}.${snap.kind}"` }),
      "x-video-kind": snap.kind,
    }),
  });
};

const unlocks: Route = async (deps, _s, req) => {
  const limit = limitParam(new URL(req.url).searchParams.get("limit"), 500, 50);
  if (limit instanceof Response) return limit;
  return json({ unlocks: await deps.records.recentUnlocks(limit) });
};

const audit: Route = async (deps, _s, req) => {
  const q = new URL(req.url).searchParams;
  const limit = limitParam(q.get("limit"), 500, 50);
  if (limit instanceof Response) return limit;
  const page = await deps.admins.auditPage({
    limit,
    ...(q.get("before") ? { before: q.get("before")! } : {}),
  });
  return json({ entries: page.entries, next: page.next ?? null });
};

const charts: Route = (deps) => json(deps.charts.data());

function publicEvent(e: GatewayEvent): Record<string, unknown> {
  // Nothing secret travels in events; copy to a plain object.
  return { ...e };
}

const liveEvents: Route = (deps, state, _req, ctx) =>
  sseResponse({
    clock: deps.clock,
    stillValid: () => ctx.stillValid(),
    track: (sink) => {
      state.streams.add(sink);
      return () => state.streams.delete(sink);
    },
    onDrop: () => deps.metrics.inc("admin_sse_dropped_total", { stream: "events" }),
    start: (sink) =>
      deps.events.subscribe((e) => {
        sink.send("change", publicEvent(e));
      }, { name: "console_events", types: [...LIVE_EVENT_TYPES, DOOR_CONFLICT] }),
  });

const trace: Route = (deps, state, req, ctx) => {
  const q = new URL(req.url).searchParams;
  const filter: TraceFilter = {
    ...(q.get("door") ? { door: q.get("door")!.trim().toUpperCase() } : {}),
    ...(q.get("room") ? { room: q.get("room")!.trim() } : {}),
  };
  const doorIps = filter.door
    ? deps.live.doors().filter((d) => d.address === filter.door && d.ip).map((d) => d.ip)
    : [];
  return sseResponse({
    clock: deps.clock,
    stillValid: () => ctx.stillValid(),
    bound: 1024,
    track: (sink) => {
      state.streams.add(sink);
      return () => state.streams.delete(sink);
    },
    onDrop: () => deps.metrics.inc("admin_sse_dropped_total", { stream: "trace" }),
    start: (sink) =>
      deps.events.subscribe((e) => {
        const line = traceLine(e);
        if (traceMatches(line, filter, doorIps)) sink.send("trace", line);
      }, { name: "console_trace", types: ["door_trace", "phone_trace"] }),
  });
};

/** Routes: method, path pattern (`:x` captures a segment), handler, whether it changes state. */
export const ROUTES: readonly {
  method: string;
  pattern: RegExp;
  route: Route;
}[] = [
  { method: "GET", pattern: /^overview$/, route: overview },
  { method: "GET", pattern: /^doors$/, route: doors },
  { method: "POST", pattern: /^doors\/([^/]+)\/forget$/, route: doorForget },
  { method: "POST", pattern: /^doors\/([^/]+)\/pin$/, route: doorPin },
  { method: "GET", pattern: /^phones$/, route: phones },
  { method: "GET", pattern: /^rooms$/, route: rooms },
  { method: "GET", pattern: /^bindings$/, route: bindingsList },
  { method: "POST", pattern: /^bindings$/, route: bindingAdd },
  { method: "POST", pattern: /^bindings\/([^/]+)\/([^/]+)\/rotate$/, route: bindingRotate },
  { method: "DELETE", pattern: /^bindings\/([^/]+)\/([^/]+)$/, route: bindingRemove },
  { method: "GET", pattern: /^calls\/live$/, route: callsLive },
  { method: "POST", pattern: /^calls\/([^/]+)\/hangup$/, route: callHangup },
  { method: "GET", pattern: /^calls$/, route: callsHistory },
  { method: "GET", pattern: /^community\/(calls|unlocks)$/, route: communityRecords },
  { method: "GET", pattern: /^calls\/([^/]+)\/snapshot$/, route: callSnapshot },
  { method: "GET", pattern: /^calls\/([^/]+)$/, route: callOne },
  { method: "GET", pattern: /^unlocks$/, route: unlocks },
  { method: "GET", pattern: /^audit$/, route: audit },
  { method: "GET", pattern: /^charts$/, route: charts },
  { method: "GET", pattern: /^events$/, route: liveEvents },
  { method: "GET", pattern: /^trace$/, route: trace },
];

/** The request context an API route gets. */
export type RouteContext = RequestContext & {
  session: Session;
  audit: AuditFn;
  stillValid: () => boolean;
};

/**
 * Runs the route for `path` (after `/api/v1/`); `undefined` when no route has that path.
 * Body errors become their API errors; anything else is logged and answered `internal`.
 */
export async function runApi(
  deps: ApiDeps,
  state: ApiState,
  req: Request,
  ctx: RouteContext,
  path: string,
): Promise<Response | undefined> {
  let pathKnown = false;
  for (const r of ROUTES) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    pathKnown = true;
    if (r.method !== req.method) continue;
    try {
      return await r.route(deps, state, req, ctx, m.slice(1));
    } catch (e) {
      if (e instanceof BodyError) return apiError(e.code, e.message);
      // Several gateways: a binding change while the community's hub is unreachable.
      if (e instanceof BindingsUnavailableError) return apiError("unavailable", e.message);
      deps.logger.error("console API failed", { path, error: e });
      return apiError("internal", "Cannot answer: internal error (see the gateway's log)");
    }
  }
  return pathKnown
    ? apiError("method_not_allowed", `Cannot ${req.method} /api/v1/${path}`)
    : undefined;
}
