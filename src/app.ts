/**
 * The composition root, in three steps with one cleanup stack:
 *
 * 1. **open**: the store (Deno KV: locked, backed up and migrated when older, refused when newer),
 *    the door and media UDP sockets, the TLS files;
 * 2. **wire**: the event bus and its subscribers (records, metrics, logs, door inventory), the
 *    media relay, phone hub, door transport, call manager and phone service, the live state;
 * 3. **listen**: the HTTP server (`http/server.ts`, connection caps from the descriptor limit),
 *    the receive loops, the record pruning timer.
 *
 * Every resource is pushed on an `AsyncDisposableStack` as it is opened, so a failure at any
 * step closes what was opened before it. `shutdown()` ends calls cleanly (CALLEND to doors,
 * `over` to phones), then disposes the stack (server, loops, sockets, pending record writes, KV).
 *
 * @module
 */

import { type Clock, systemClock } from "./clock.ts";
import type { Config } from "./config.ts";
import { createLogger, type Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { openUdpPort } from "./net/udp.ts";
import { DoorTransport } from "./door/transport.ts";
import { pickLocalIp } from "./door/local_ip.ts";
import { CallManager } from "./call/manager.ts";
import { PhoneHub } from "./phone/hub.ts";
import { PhoneService } from "./phone/service.ts";
import { createHandler, type Health } from "./phone/handler.ts";
import { openStore } from "./store/kv.ts";
import { lockStore } from "./store/lock.ts";
import { prepareStore } from "./store/backup.ts";
import { BindingStore, bindingVersion } from "./store/bindings.ts";
import { BindingGuard } from "./phone/binding_guard.ts";
import { RecordStore } from "./store/records.ts";
import { RECORD_EVENTS, RecordWriter } from "./store/record_writer.ts";
import { MediaRelay } from "./media/relay.ts";
import { receiveLoop } from "./net/receive_loop.ts";
import { DoorRegistry } from "./door/registry.ts";
import { DoorStore } from "./store/doors.ts";
import { TokenBucketLimiter } from "./phone/limiter.ts";
import { EventBus } from "./events/bus.ts";
import { COUNTED_EVENTS, countEvent } from "./events/metrics_subscriber.ts";
import { logEvent, LOGGED_EVENTS } from "./events/log_subscriber.ts";
import type { LiveState } from "./live/state.ts";
import { opening } from "./net/listen_error.ts";
import { HttpServer } from "./http/server.ts";
import { connectionCaps, probeFreeDescriptors } from "./http/caps.ts";
import { accessRule } from "./http/access.ts";

/** A running gateway. */
export interface App {
  /** Where it listens (ports resolved when 0 was asked). */
  readonly addresses: {
    http: Deno.NetAddr;
    door: { hostname: string; port: number };
    media: { hostname: string; port: number };
  };
  readonly metrics: Metrics;
  /** The domain event stream (the console, push and cluster subscribe here). */
  readonly events: EventBus;
  /** Doors, phones and calls now. */
  readonly live: LiveState;
  readonly manager: CallManager;
  readonly hub: PhoneHub;
  readonly bindings: BindingStore;
  readonly records: RecordStore;
  readonly relay: MediaRelay;
  /** Liveness: sockets bound, KV open and accepting writes (`store`: `ok`, `full`, `failing`). */
  health(): Health;
  /** Ends calls (≤ 1.5 s for the doors' replies), closes sockets, server and KV. */
  shutdown(): Promise<void>;
  /** Resolves when the app has shut down. */
  readonly finished: Promise<void>;
}

/** Options of {@linkcode startApp}. */
export interface AppOptions {
  clock?: Clock;
  logger?: Logger;
  version?: string;
}

/** Call records and unlock audit kept this many days. */
const RECORD_DAYS = 90;
const PRUNE_EVERY_MS = 24 * 3600 * 1000;

/** Opens every port and starts serving; on failure closes what it opened and rethrows. */
export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ??
    createLogger({ level: config.logLevel, format: config.logFormat });
  await using stack = new AsyncDisposableStack();

  // ---- 1. open ----
  const storeStep = { kind: "store", location: config.data } as const;
  const lock = await opening(storeStep, () => lockStore(config.data));
  if (lock) stack.defer(() => lock.release());
  const kv = await opening(storeStep, () => openStore(config.data, { schema: "any" }));
  let kvOpen = true;
  // deno-lint-ignore prefer-const
  let writer: RecordWriter | undefined;
  let pruning: Promise<unknown> = Promise.resolve();
  let drainEvents = (): Promise<void> => Promise.resolve();
  stack.defer(async () => {
    // Last: what was accepted is written before the store closes.
    await drainEvents();
    await writer?.close();
    await pruning;
    kv.close();
    kvOpen = false;
  });
  // An older store is backed up, then migrated; a newer one refused (one line, exit 1).
  await prepareStore(kv, {
    location: config.data,
    logger: logger.child({ part: "store" }),
    writtenBy: options.version ?? "dev",
    now: () => new Date(clock.wallNow()),
  });
  const bindings = new BindingStore(kv, () => new Date(clock.wallNow()));
  const records = new RecordStore(kv, () => new Date(clock.wallNow()));
  // Calls a crash or power loss left open cannot be live any more: close their records.
  for (const r of await records.recent(200)) {
    if (!r.endedAt) {
      await records.update(r.callId, {
        endedAt: new Date(clock.wallNow()).toISOString(),
        endReason: "gateway_restarted",
      });
    }
  }
  const multicast = {
    group: config.multicastGroup,
    interface: config.multicastInterface ?? config.lanIp ?? "0.0.0.0",
  };
  const doorPort = await opening(
    { kind: "udp", flag: "door-port", port: config.doorPort, multicast },
    () => openUdpPort({ port: config.doorPort, pooled: true, multicast }),
  );
  stack.defer(() => doorPort.close());
  const mediaPort = await opening(
    { kind: "udp", flag: "media-port", port: config.mediaPort },
    () => openUdpPort({ port: config.mediaPort, pooled: true }),
  );
  stack.defer(() => mediaPort.close());
  const tls = config.tlsCert && config.tlsKey
    ? {
      cert: await opening(
        { kind: "file", flag: "tls-cert", path: config.tlsCert },
        () => Deno.readTextFile(config.tlsCert!),
      ),
      key: await opening(
        { kind: "file", flag: "tls-key", path: config.tlsKey },
        () => Deno.readTextFile(config.tlsKey!),
      ),
    }
    : {};

  // ---- 2. wire ----
  const metrics = new Metrics();
  const events = new EventBus({ logger: logger.child({ part: "events" }), metrics });
  drainEvents = () => events.drained();
  const callLog = logger.child({ part: "calls" });
  events.subscribe((e) => countEvent(metrics, e), { name: "metrics", types: COUNTED_EVENTS });
  events.subscribe((e) => logEvent(callLog, e), { name: "log", types: LOGGED_EVENTS });

  const registry = new DoorRegistry({
    clock,
    wallClock: () => clock.wallNow(),
    relearnAfterMs: config.doorRelearnAfter * 1000,
    logger: logger.child({ part: "door" }),
    metrics,
    allowlist: config.doorAllowlist,
    store: new DoorStore(kv),
    events,
  });
  await registry.load();
  stack.defer(() => registry.close());
  events.subscribe((e) => {
    if (e.type === "door_seen") registry.heard(e.address, e.ip);
    else if (e.type === "door_media") {
      registry.noteMedia(e.address, { headerForm: e.headerForm }, e.ip);
    }
  }, { name: "door_registry", types: ["door_seen", "door_media"] });

  const ipCache = new Map<string, string>();
  const localIpFor = (doorIp: string): string => {
    if (config.lanIp) return config.lanIp;
    let ip = ipCache.get(doorIp);
    if (!ip) {
      ip = pickLocalIp(Deno.networkInterfaces(), doorIp);
      ipCache.set(doorIp, ip);
    }
    return ip;
  };

  const relay = new MediaRelay({
    logger: logger.child({ part: "media" }),
    metrics,
    magic: config.magic,
    events,
    wallNow: () => clock.wallNow(),
    sendToPhone: (bytes, to) => mediaPort.send(bytes, to),
    sendToDoor: (bytes, to) => doorPort.send(bytes, to),
  });
  // deno-lint-ignore prefer-const
  let manager: CallManager;
  const hub = new PhoneHub({
    clock,
    logger: logger.child({ part: "phones" }),
    metrics,
    events,
    heartbeatTimeoutMs: config.heartbeatTimeout * 1000,
    onLeft: (uid, rooms) => manager.phoneLeft(uid, rooms),
    onJoined: (uid, room) => manager.phoneJoined(uid, room),
  });
  stack.defer(() => hub.close());
  writer = new RecordWriter({
    records,
    logger: logger.child({ part: "records" }),
    metrics,
    clock,
    ipOf: (uid) => hub.sessionOf(uid)?.ip,
  });
  const recordWriter = writer;
  records.readAfter(() => recordWriter.flushed());
  events.subscribe((e) => recordWriter.onEvent(e), { name: "records", types: RECORD_EVENTS });
  const transport = new DoorTransport({
    port: doorPort,
    clock,
    logger: logger.child({ part: "door" }),
    metrics,
    events,
    magic: config.magic,
    lanIp: config.lanIp,
    isOnline: (room) => hub.roomOnline(room),
    localIpFor,
    onEvent: (e) => manager.onDoorEvent(e),
    onMedia: (bytes, from) => relay.onDoorMedia(bytes, from),
    admit: (address, ip) => registry.admit(address, ip),
    onConfirmed: (address, ip) => registry.learn(address, ip),
  });
  stack.defer(() => transport.close());
  manager = new CallManager({
    door: transport,
    phones: hub,
    clock,
    logger: callLog,
    events,
    ringTimeoutMs: config.ringTimeout * 1000,
    talkTimeoutMs: config.talkTimeout * 1000,
    media: relay,
    isKnownDoor: (address, ip) => registry.isKnown(address, ip),
    // What a door's firmware needs (unlock only while talking) lives in the door registry:
    // persisted, and shown by `door list`.
    quirks: {
      needsTalkForUnlock: (address) => registry.get(address)?.needsTalkForUnlock ?? false,
      setNeedsTalkForUnlock: (address) => registry.setNeedsTalkForUnlock(address),
    },
  });
  const service = new PhoneService({
    hub,
    manager,
    bindings,
    logger: logger.child({ part: "phones" }),
    metrics,
    events,
    clock,
    mediaPort: mediaPort.local.port,
    media: relay,
    limiter: new TokenBucketLimiter(clock),
  });
  const guard = new BindingGuard({
    hub,
    notifier: hub,
    calls: manager,
    version: () => bindingVersion(kv),
    tokenIdOf: (uid, room) => bindings.tokenIdOf(uid, room),
    clock,
    logger: logger.child({ part: "phones" }),
    events,
  });
  // "The door says unavailable": say why, once a minute per door and room.
  events.subscribeQueued(async (e) => {
    const [bound, heard] = [(await bindings.uidsOf(e.roomKey)).length, hub.lastHeardIn(e.roomKey)];
    logger.child({ part: "door" }).info("NS ask not answered: no phone of the room is online", {
      door: e.doorAddress,
      doorIp: e.doorIp,
      room: e.roomKey,
      bindings: bound,
      lastPhoneHeard: heard === undefined ? "never (since start)" : new Date(heard).toISOString(),
    });
  }, { name: "ns_log", types: ["ns_unanswered"], bound: 100 });
  const live: LiveState = {
    doors: () =>
      registry.list().map((d) => ({
        address: d.address,
        ip: d.ip ?? "",
        mode: d.mode,
        firstHeard: d.firstHeard,
        lastHeard: d.lastHeard,
        headerForm: d.headerForm,
        law: d.law,
        needsTalkForUnlock: d.needsTalkForUnlock,
      })),
    phones: () => hub.snapshot(),
    calls: () =>
      manager.list().map((c) => {
        const m = relay.countersOf(c.callId);
        const dropped = m ? Object.values(m.dropped).reduce((a, b) => a + b, 0) : 0;
        return {
          callId: c.callId,
          phase: c.phase,
          doorAddress: c.doorAddress,
          doorIp: c.door.hostname,
          roomKey: c.roomKey,
          participants: c.talker && !c.ringing.includes(c.talker)
            ? [...c.ringing, c.talker]
            : [...c.ringing],
          talker: c.talker,
          media: m && {
            doorIn: m.doorIn,
            toPhones: m.toPhones,
            phoneIn: m.phoneIn,
            toDoor: m.toDoor,
            dropped,
          },
        };
      }),
  };

  let closing = false;
  const health = (): Health => {
    // A store that refuses writes (a full disk) degrades the gateway: calls go on, records wait.
    const store = recordWriter.health();
    return {
      ok: kvOpen && !closing && store.state === "ok",
      kv: kvOpen,
      store: store.state,
      ...(store.state === "ok" ? {} : {
        storeError: store.reason,
        storeFailingSince: store.since,
        storeWritesWaiting: store.queued,
      }),
      doorPort: doorPort.local.port,
      mediaPort: mediaPort.local.port,
      calls: live.calls().length,
      phones: live.phones().length,
    };
  };
  metrics.gauge("calls_active", () => manager.size, "Calls in progress");

  // ---- 3. listen ----
  const httpStep = {
    kind: "tcp",
    flag: "http-port",
    host: config.httpHost,
    port: config.httpPort,
    tls: !!config.tlsCert,
  } as const;
  const listener = await opening(httpStep, () =>
    tls.cert && tls.key
      ? Deno.listenTls({
        hostname: config.httpHost,
        port: config.httpPort,
        cert: tls.cert,
        key: tls.key,
      })
      : Deno.listen({ hostname: config.httpHost, port: config.httpPort }));
  // Connection caps below the descriptor limit: phones can never run the process out of them.
  const caps = connectionCaps(probeFreeDescriptors());
  const server = new HttpServer({
    listener,
    tls: !!tls.cert,
    clock,
    metrics,
    logger: logger.child({ part: "http" }),
    limits: { caps },
    handler: createHandler({
      hub,
      service,
      metrics,
      health,
      version: options.version ?? "dev",
      metricsAccess: accessRule(config.metricsAllow, config.metricsToken),
    }),
  });
  stack.defer(() => server.close());
  server.start();
  const http = server.addr;
  await guard.start();
  stack.defer(() => guard.stop());
  transport.listen();
  registry.start();
  const mediaLoop = receiveLoop(
    mediaPort,
    (bytes, from) => relay.onPhoneDatagram(bytes, from),
    logger,
  );
  stack.defer(async () => {
    mediaPort.close();
    await mediaLoop;
  });

  // Months unattended: keep the KV bounded (call records and unlock audit older than 90 days).
  let pruneTimer: ReturnType<Clock["setTimeout"]> | undefined;
  const prune = () => {
    pruning = records.pruneOlderThan(RECORD_DAYS).catch((e) =>
      logger.error("record pruning failed", { error: e })
    );
    pruneTimer = clock.setTimeout(prune, PRUNE_EVERY_MS);
  };
  prune();
  stack.defer(() => {
    if (pruneTimer !== undefined) clock.clearTimeout(pruneTimer);
  });

  logger.info("gateway started", {
    http: `${config.tlsCert ? "https" : "http"}://${http.hostname}:${http.port}`,
    doorPort: doorPort.local.port,
    mediaPort: mediaPort.local.port,
    multicastGroup: config.multicastGroup,
    lanIp: config.lanIp ?? "auto",
    maxConnections: caps.total,
    maxConnectionsPerIp: caps.perIp,
  });

  // Everything is open: from here the stack is disposed by shutdown(), not by this scope.
  const owned = stack.move();
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  const shutdown = async () => {
    if (closing) return finished;
    closing = true;
    logger.info("gateway stopping", { calls: manager.size });
    await manager.shutdown(1500);
    await owned.disposeAsync();
    logger.info("gateway stopped");
    resolveFinished();
  };

  return {
    addresses: { http, door: doorPort.local, media: mediaPort.local },
    metrics,
    events,
    live,
    manager,
    hub,
    bindings,
    records,
    relay,
    health,
    shutdown,
    finished,
  };
}
