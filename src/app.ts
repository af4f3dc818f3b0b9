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
import { openUdpPort, probeFree, type UdpPort } from "./net/udp.ts";
import type { DatagramPort } from "./net/port.ts";
import { engineLibraryPath, openNativeEngine, STAT } from "./media/native/engine.ts";
import { describeJoins, multicastJoins } from "./net/interfaces.ts";
import { readLinkFlags } from "./net/link_flags.ts";
import { DoorTransport } from "./door/transport.ts";
import { localIpCache } from "./door/local_ip.ts";
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
import { Transcoder } from "./media/transcode.ts";
import { receiveLoop } from "./net/receive_loop.ts";
import { DoorRegistry } from "./door/registry.ts";
import { DoorStore } from "./store/doors.ts";
import { TokenBucketLimiter } from "./phone/limiter.ts";
import { EventBus } from "./events/bus.ts";
import type { EventOf, GatewayEventType } from "./events/types.ts";
import { COUNTED_EVENTS, countEvent } from "./events/metrics_subscriber.ts";
import { logEvent, LOGGED_EVENTS } from "./events/log_subscriber.ts";
import type { LiveState } from "./live/state.ts";
import { opening } from "./net/listen_error.ts";
import { HttpServer } from "./http/server.ts";
import { connectionCaps, probeFreeDescriptors } from "./http/caps.ts";
import { accessRule } from "./http/access.ts";
import { AdminConsole } from "./admin/handler.ts";
import type { TlsInfo } from "./admin/api.ts";
import { ChartSampler } from "./admin/charts.ts";
import { storeBytes } from "./admin/store_size.ts";
import { diskSpace } from "./store/disk_space.ts";
import { AdminStore } from "./store/admins.ts";
import { SnapshotStore } from "./store/snapshots.ts";
import { openOwnTls, pemFingerprint } from "./tls/gateway_tls.ts";
import { lanNames } from "./tls/lan_names.ts";
import { PushWebhook, WEBHOOK_EVENTS } from "./push/webhook.ts";
import { BoundRooms } from "./push/bound_rooms.ts";
import { WEB_PUSH_EVENTS, WebPushSender } from "./push/web_push.ts";
import { generateVapidKeys, importVapidKeys } from "./push/vapid.ts";
import { fromB64u, isP256Public } from "./push/web_push_crypto.ts";
import { pushSubscriptionProblem, PushSubscriptionStore } from "./store/push_subscriptions.ts";
import { vapidKeysOf } from "./store/vapid_keys.ts";
import type { PushRegistry } from "./phone/ports.ts";
import { ClusterLink } from "./cluster/link.ts";
import { BindingSync, HubBindings } from "./cluster/hub_bindings.ts";
import { CLUSTER_RECORD_EVENTS, ClusterRecords, communityRecords } from "./cluster/records.ts";
import { Presence } from "./cluster/presence.ts";
import { CallRouter, REMOTE_DOOR_PREFIX } from "./cluster/router.ts";

/** A running gateway. */
export interface App {
  /** Where it listens (ports resolved when 0 was asked). */
  readonly addresses: {
    http: Deno.NetAddr;
    /** HTTPS with the gateway's own certificate (`--https-port`), when served. */
    https: Deno.NetAddr | undefined;
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
  /** The web phones' Web Push subscriptions. */
  readonly pushSubscriptions: PushSubscriptionStore;
  /** The gateway's VAPID public key (base64url). */
  readonly vapidPublicKey: string;
  readonly records: RecordStore;
  readonly relay: MediaRelay;
  /** The console (`/admin`, `/api/v1`). */
  readonly console: AdminConsole;
  /** Console accounts and their audit. */
  readonly admins: AdminStore;
  /** Visitor snapshots. */
  readonly snapshots: SnapshotStore;
  /** The HTTPS served: fingerprints, the local CA. */
  readonly tls: TlsInfo | undefined;
  /** The community link (`--cluster`), else undefined. */
  readonly cluster: ClusterLink | undefined;
  /** Rooms with a phone online on another gateway of the community (`--cluster`). */
  readonly remoteRooms: () => Set<string>;
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
/** Events a background consumer (cluster records, push) may have queued before it drops. */
const CONSUMER_QUEUE_BOUND = 1000;

/** A background consumer of some event types, with its own work to finish on close. */
interface Consumer<T extends GatewayEventType> {
  /** A name for logs and metrics. */
  readonly name: string;
  readonly types: readonly T[];
  onEvent(e: EventOf<T>): Promise<void>;
  /** Finishes (or gives up) what it still has in flight. */
  stop(): Promise<void>;
}

/**
 * Feeds `consumer` its events through a queue of {@linkcode CONSUMER_QUEUE_BOUND}; when `stack`
 * is disposed, unsubscribes it first, then awaits its `stop`.
 */
function consumeUntilClosed<T extends GatewayEventType>(
  stack: AsyncDisposableStack,
  events: EventBus,
  consumer: Consumer<T>,
): void {
  const { name, types } = consumer;
  const off = events.subscribeQueued((e) => consumer.onEvent(e), {
    name,
    types,
    bound: CONSUMER_QUEUE_BOUND,
  });
  stack.defer(async () => {
    off();
    await consumer.stop();
  });
}

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
  const snapshotWrites = new Set<Promise<unknown>>();
  let drainEvents = (): Promise<void> => Promise.resolve();
  stack.defer(async () => {
    // Last: what was accepted is written before the store closes.
    await drainEvents();
    await writer?.close();
    await Promise.allSettled([...snapshotWrites]);
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
  const metrics = new Metrics();
  const events = new EventBus({ logger: logger.child({ part: "events" }), metrics });
  // Several gateways (--cluster): this box's NATS leaf node; binding changes go to the hub's
  // bucket and come back through the leaf's mirror into the local KV, which logins read.
  const link = config.cluster && config.gatewayId
    ? new ClusterLink({
      url: config.cluster,
      gatewayId: config.gatewayId,
      clock,
      logger: logger.child({ part: "cluster" }),
      events,
      metrics,
    })
    : undefined;
  if (link) {
    await link.start(3000);
    stack.defer(() => link.close());
  }
  const localBindings = new BindingStore(kv, () => new Date(clock.wallNow()));
  const bindings = link
    ? new BindingStore(kv, () => new Date(clock.wallNow()), new HubBindings(link))
    : localBindings;
  // Web Push: the VAPID pair is made on first start and kept in the store.
  const pushSubs = new PushSubscriptionStore(kv, () => new Date(clock.wallNow()));
  const vapid = await importVapidKeys(await vapidKeysOf(kv, generateVapidKeys));
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
  // The group on --multicast-interface, else --lan-ip, else every interface that can hear doors.
  const joins = multicastJoins(
    config.multicastInterface ?? config.lanIp,
    Deno.networkInterfaces(),
    readLinkFlags,
  );
  const multicast = { group: config.multicastGroup, interface: joins.map((j) => j.address) };
  // The optional native media engine owns both UDP sockets (media/native/engine.ts).
  const engine = config.mediaEngine === "native"
    ? await opening(
      {
        kind: "file",
        flag: "media-engine-lib",
        path: engineLibraryPath(config.mediaEngineLib),
      },
      () => {
        probeFree("0.0.0.0", config.doorPort);
        return openNativeEngine({
          library: engineLibraryPath(config.mediaEngineLib),
          doorPort: config.doorPort,
          mediaPort: config.mediaPort,
          doorReuse: true,
          multicast,
          magic: config.magic,
        });
      },
    )
    : undefined;
  if (engine) {
    stack.defer(() => engine.stop());
    const st = (k: number) => () => engine.stats()[k]!;
    metrics.gauge(
      "media_engine_received_total",
      () => engine.stats()[STAT.receivedDoor]! + engine.stats()[STAT.receivedMedia]!,
      "Datagrams the native engine received on the door and media ports",
    );
    metrics.gauge(
      "media_engine_passed_up_total",
      () => engine.stats()[STAT.upDoor]! + engine.stats()[STAT.upMedia]!,
      "Datagrams the native engine handed to the gateway (all but routed media)",
    );
    metrics.gauge(
      "media_engine_ring_full_total",
      st(STAT.ringFullDoor),
      "Door datagrams the native engine dropped: JS queue full",
    );
    metrics.gauge(
      "media_engine_ring_full_media_total",
      st(STAT.ringFullMedia),
      "Phone datagrams the native engine dropped: JS queue full",
    );
    metrics.gauge(
      "media_engine_truncated_total",
      st(STAT.truncated),
      "Datagrams over 2048 bytes the native engine dropped",
    );
    metrics.gauge(
      "media_engine_send_errors_total",
      st(STAT.sendErrors),
      "Media sends of the native engine that failed",
    );
    logger.info("native media engine", { library: engineLibraryPath(config.mediaEngineLib) });
  }
  // One gateway per port: door simulators may bind their own addresses beside it, nobody else.
  const doorPort: UdpPort = engine ? engine.door : await opening(
    {
      kind: "udp",
      flag: "door-port",
      port: config.doorPort,
      multicast: { group: multicast.group, interface: multicast.interface.join(", ") },
    },
    () => openUdpPort({ port: config.doorPort, pooled: true, multicast, share: "specific" }),
  );
  stack.defer(() => doorPort.close());
  for (const f of doorPort.multicast?.failed ?? []) {
    logger.warn("cannot join the multicast group on this interface: its doors are not heard", {
      group: multicast.group,
      interface: joins.find((j) => j.address === f.interface)?.name,
      address: f.interface,
      error: f.error,
    });
  }
  const joined = joins.filter((j) => doorPort.multicast?.joined.includes(j.address));
  const mediaPort: DatagramPort = engine ? engine.media : await opening(
    { kind: "udp", flag: "media-port", port: config.mediaPort },
    () => openUdpPort({ port: config.mediaPort, pooled: true, share: "none" }),
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

  // HTTPS without manual steps: the gateway's own local CA and certificate (<data>/tls).
  const ownTls = !config.tlsCert && config.httpsPort !== undefined
    ? await opening(
      { kind: "file", flag: "https-port", path: `${config.data}/tls` },
      () => openOwnTls(config.data, config.lanIp),
    )
    : undefined;
  const givenFingerprint = "cert" in tls && tls.cert ? await pemFingerprint(tls.cert) : undefined;
  const lan = await lanNames(config.lanIp);
  const lanIps = lan.ips.filter((ip) => !ip.startsWith("127."));

  // ---- 2. wire ----
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
    if (e.ip.startsWith(REMOTE_DOOR_PREFIX)) return; // another gateway's door
    if (e.type === "door_seen") registry.heard(e.address, e.ip);
    else if (e.type === "door_media") {
      registry.noteMedia(e.address, { headerForm: e.headerForm }, e.ip);
    }
  }, { name: "door_registry", types: ["door_seen", "door_media"] });

  const localIpFor = config.lanIp
    ? () => config.lanIp!
    : localIpCache(() => Deno.networkInterfaces(), () => clock.now());

  // Visitor snapshots: the relay's tap hands over each call's first frame; a few writes in flight.
  const admins = new AdminStore(kv, { now: () => new Date(clock.wallNow()) });
  const snapshots = new SnapshotStore(kv);
  const keepSnapshot = (callId: string, frame: Uint8Array, dataType: number) => {
    if (snapshotWrites.size >= 8) return metrics.inc("snapshots_dropped_total");
    const p: Promise<unknown> = snapshots.put(callId, frame, dataType, clock.wallNow())
      .catch((e) => logger.error("snapshot write failed", { callId, error: e }))
      .finally(() => snapshotWrites.delete(p));
    snapshotWrites.add(p);
  };
  const relay = new MediaRelay({
    offload: engine,
    onFirstFrame: keepSnapshot,
    logger: logger.child({ part: "media" }),
    metrics,
    magic: config.magic,
    events,
    wallNow: () => clock.wallNow(),
    sendToPhone: (bytes, to) => mediaPort.send(bytes, to),
    // A call hosted for another gateway's door: its "door" is that gateway (cluster/router.ts).
    sendToDoor: (bytes, to) =>
      to.hostname.startsWith(REMOTE_DOOR_PREFIX)
        ? router?.sendToRemoteDoor(bytes, to)
        : doorPort.send(bytes, to),
  });
  // deno-lint-ignore prefer-const
  let manager: CallManager;
  const hub = new PhoneHub({
    clock,
    logger: logger.child({ part: "phones" }),
    metrics,
    events,
    heartbeatTimeoutMs: config.heartbeatTimeout * 1000,
    onLeft: (uid, rooms) => {
      manager.phoneLeft(uid, rooms);
      presence?.changed();
    },
    onJoined: (uid, room) => {
      manager.phoneJoined(uid, room);
      presence?.changed();
    },
    // `call` and `talk begin` name the door's G.711 law (the inventory's, else μ-law).
    audioLaw: (door) => registry.get(door)?.law,
  });
  stack.defer(() => hub.close());
  // Several gateways: who is online where, and calls across gateways (cluster/router.ts).
  const presence = link
    ? new Presence({
      link,
      local: () => {
        const rooms = new Map<string, string[]>();
        for (const p of hub.snapshot()) {
          for (const r of p.rooms) if (!rooms.has(r)) rooms.set(r, hub.online(r));
        }
        return rooms;
      },
      clock,
      logger: logger.child({ part: "cluster" }),
      onJoined: (uid, room) => manager.phoneJoined(uid, room),
      onLeft: (uid, rooms) => manager.phoneLeft(uid, rooms),
      onGone: (gateway) => router?.originGone(gateway),
    })
    : undefined;
  const router = link && presence
    ? new CallRouter({
      link,
      presence,
      logger: logger.child({ part: "cluster" }),
      phones: hub,
      calls: () => manager,
      relay,
      sendToDoor: (bytes, to) => doorPort.send(bytes, to),
    })
    : undefined;
  // Sleeping phones: the rooms' bound phones and their Web Push subscriptions, so that a room
  // whose phones all sleep still answers NS and its calls wait for a phone to wake: any sleeping
  // phone with --push-webhook, else one with a Web Push subscription.
  const boundRooms = new BoundRooms({
    list: async () => {
      const subscribed = await pushSubs.subscribedBindings();
      return (await bindings.list()).map((b) => ({
        ...b,
        subscribed: subscribed.has(`${b.roomKey}|${b.uid}`),
      }));
    },
    version: async () => `${await bindingVersion(kv)}|${await pushSubs.version()}`,
    isConnected: (uid, room) => hub.isOnline(uid, room),
    inDnd: (uid, room) => hub.inDnd(uid, room),
    anyWakes: config.pushWebhook !== undefined,
    clock,
    logger: logger.child({ part: "push" }),
  });
  await boundRooms.start();
  stack.defer(() => boundRooms.close());
  const canWake = (room: string) => boundRooms.canWake(room);
  const pushRegistry: PushRegistry = {
    publicKey: vapid.publicKey,
    async subscribe(uid, roomKey, tokenId, sub) {
      const problem = pushSubscriptionProblem(sub, { allowHttp: config.pushAllowHttp });
      if (problem) return { ok: false, code: "bad_request", message: problem };
      if (!(await isP256Public(fromB64u(sub.p256dh)))) {
        return { ok: false, code: "bad_request", message: "p256dh is not a point of P-256" };
      }
      const r = await pushSubs.add(uid, roomKey, sub, tokenId);
      if (!r.ok) return { ok: false, code: "not_bound", message: "the binding changed" };
      await boundRooms.refresh();
      return { ok: true, count: r.count };
    },
    async unsubscribe(uid, roomKey, endpoint) {
      await pushSubs.remove(uid, roomKey, endpoint);
      await boundRooms.refresh();
      return (await pushSubs.of(uid, roomKey)).length;
    },
  };
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
  if (link) {
    // Several gateways: every ended call's record and every unlock attempt also go to this
    // box's leaf stream, which the hub sources (works offline; the hub catches up).
    const shared = new ClusterRecords({
      link,
      ipOf: (uid) => hub.sessionOf(uid)?.ip,
      recordOf: async (callId) => {
        await recordWriter.flushed();
        return await records.get(callId);
      },
      recent: () => records.recent(200),
      logger: logger.child({ part: "cluster" }),
      clock,
      onDropped: () => metrics.inc("cluster_records_dropped_total"),
    });
    shared.start();
    consumeUntilClosed(stack, events, {
      name: "cluster_records",
      types: CLUSTER_RECORD_EVENTS,
      onEvent: (e) => shared.onEvent(e),
      stop: () => shared.stop(),
    });
  }
  const transport = new DoorTransport({
    port: doorPort,
    clock,
    logger: logger.child({ part: "door" }),
    metrics,
    events,
    magic: config.magic,
    lanIp: config.lanIp,
    isOnline: (room) =>
      hub.roomOnline(room) || canWake(room) || (router?.online(room).length ?? 0) > 0,
    localIpFor,
    onEvent: (e) => manager.onDoorEvent(e),
    onMedia: router
      ? (bytes, from) => {
        relay.onDoorMedia(bytes, from);
        router.onDoorMedia(bytes, from);
      }
      : (bytes, from) => relay.onDoorMedia(bytes, from),
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
    canWake,
    wakeWindowMs: config.wakeWindow * 1000,
    media: router?.media ?? relay,
    ...(router ? { remote: router } : {}),
    isKnownDoor: (address, ip) => registry.isKnown(address, ip),
    // What a door's firmware needs (unlock only while talking) lives in the door registry:
    // persisted, and shown by `door list`.
    quirks: {
      needsTalkForUnlock: (address) => registry.get(address)?.needsTalkForUnlock ?? false,
      setNeedsTalkForUnlock: (address) => registry.setNeedsTalkForUnlock(address),
    },
  });
  // Door video a web phone cannot decode (MPEG-4) → JPEG, while one watches (`--transcode`).
  const transcoder = new Transcoder({
    mode: config.transcode,
    clock,
    logger: logger.child({ part: "media" }),
    metrics,
  });
  stack.defer(() => transcoder.close());
  const service = new PhoneService({
    hub,
    manager: router?.control ?? manager,
    bindings,
    logger: logger.child({ part: "phones" }),
    metrics,
    events,
    clock,
    mediaPort: mediaPort.local.port,
    media: transcoder.wrap(relay),
    limiter: new TokenBucketLimiter(clock),
    push: pushRegistry,
  });
  const guard = new BindingGuard({
    hub,
    notifier: hub,
    calls: router?.control ?? manager,
    version: () => bindingVersion(kv),
    tokenIdOf: (uid, room) => bindings.tokenIdOf(uid, room),
    clock,
    logger: logger.child({ part: "phones" }),
    events,
  });
  {
    const webPush = new WebPushSender({
      keys: vapid,
      subject: config.pushSubject,
      phones: boundRooms,
      subscriptions: pushSubs,
      clock,
      logger: logger.child({ part: "push" }),
      metrics,
      ringTimeoutMs: config.ringTimeout * 1000,
      onRemoved: () => void boundRooms.refresh(),
    });
    consumeUntilClosed(stack, events, {
      name: "web_push",
      types: WEB_PUSH_EVENTS,
      onEvent: (e) => webPush.onEvent(e),
      stop: () => webPush.close(),
    });
  }
  if (config.pushWebhook && config.pushWebhookSecret) {
    const webhook = new PushWebhook({
      url: config.pushWebhook,
      secret: config.pushWebhookSecret,
      clock,
      logger: logger.child({ part: "push" }),
      metrics,
      ringTimeoutMs: config.ringTimeout * 1000,
      phones: boundRooms,
    });
    consumeUntilClosed(stack, events, {
      name: "push_webhook",
      types: WEBHOOK_EVENTS,
      onEvent: (e) => webhook.onEvent(e),
      stop: () => webhook.close(),
    });
  }
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
  let tlsInfo: TlsInfo | undefined;
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
      // Several gateways: the community link (a cut link does not make this gateway unhealthy).
      ...(link ? { cluster: { gateway: link.gatewayId, leaf: link.leafUp, hub: link.hubUp } } : {}),
      ...(tlsInfo
        ? {
          https: {
            port: tlsInfo.port,
            fingerprint: tlsInfo.serverFingerprint,
            ...(tlsInfo.caFingerprint ? { caFingerprint: tlsInfo.caFingerprint } : {}),
          },
        }
        : {}),
    };
  };
  const charts = new ChartSampler({
    clock,
    read: () => {
      const t = relay.totals;
      return {
        doorIn: t.doorIn,
        toPhones: t.toPhones,
        phoneIn: t.phoneIn,
        toDoor: t.toDoor,
        dropped: Object.values(t.dropped).reduce((a, b) => a + b, 0),
        phonesOnline: hub.snapshot().length,
      };
    },
  });
  const adminConsole = new AdminConsole({
    clock,
    logger: logger.child({ part: "console" }),
    metrics,
    events,
    live,
    admins,
    bindings,
    records,
    snapshots,
    doors: { forget: (a) => registry.forget(a), pin: (a) => registry.pin(a) },
    calls: manager,
    health,
    tls: () => tlsInfo,
    storeBytes: () => storeBytes(config.data),
    diskSpace: () => diskSpace(config.data),
    version: options.version ?? "dev",
    lanIps: config.lanIp ? [config.lanIp, ...lanIps] : lanIps,
    charts,
    ...(link
      ? {
        community: {
          gateway: link.gatewayId,
          records: async (kind: "call" | "unlock", limit: number) => {
            if (!link.hubUp) throw new Error("no answer from the hub through the leaf node");
            return await communityRecords(link, kind, limit);
          },
        },
      }
      : {}),
  });
  metrics.gauge("calls_active", () => manager.size, "Calls in progress");

  // ---- 3. listen ----
  // One listener per address and port, each served by our own HTTP server. With --admin-host,
  // the console answers only on a listener bound to that address; beside a wildcard listener it
  // shares the port through SO_REUSEPORT (the kernel prefers the specific address), other
  // addresses get 404 there.
  // Connection caps below the descriptor limit: phones can never run the process out of them.
  const caps = connectionCaps(probeFreeDescriptors());
  const handlerDeps = {
    hub,
    service,
    metrics,
    health,
    version: options.version ?? "dev",
    metricsAccess: accessRule(config.metricsAllow, config.metricsToken),
    console: adminConsole,
  };
  const adminHost = config.adminHost;
  const wildcard = config.httpHost === "0.0.0.0";
  const reusePort = adminHost !== undefined && wildcard && adminHost !== config.httpHost;
  const serveOn = async (
    flag: string,
    host: string,
    port: number,
    cert: { cert?: string; key?: string },
    adminHere: boolean,
  ): Promise<Deno.NetAddr> => {
    const secure = cert.cert !== undefined && cert.key !== undefined;
    const listener = await opening(
      { kind: "tcp", flag, host, port, tls: secure },
      () =>
        secure
          ? Deno.listenTls({ hostname: host, port, cert: cert.cert!, key: cert.key!, reusePort })
          : Deno.listen({ hostname: host, port, reusePort }),
    );
    const server = new HttpServer({
      listener,
      tls: secure,
      clock,
      metrics,
      logger: logger.child({ part: "http" }),
      limits: { caps },
      handler: createHandler({ ...handlerDeps, listener: { secure, adminHere } }),
    });
    stack.defer(() => server.close());
    server.start();
    return server.addr;
  };
  const listenPair = async (flag: string, port: number, cert: { cert?: string; key?: string }) => {
    const main = await serveOn(
      flag,
      config.httpHost,
      port,
      cert,
      adminHost === undefined || adminHost === config.httpHost,
    );
    if (adminHost !== undefined && adminHost !== config.httpHost) {
      await serveOn(flag, adminHost, main.port, cert, true);
    }
    return main;
  };
  stack.defer(() => {
    // Before the servers close: the console's event streams end so that they can finish.
    adminConsole.close();
    charts.close();
  });
  const http = await listenPair("http-port", config.httpPort, tls);
  const https = ownTls
    ? await listenPair("https-port", config.httpsPort!, { cert: ownTls.cert, key: ownTls.key })
    : undefined;
  if (https && ownTls) {
    tlsInfo = {
      port: https.port,
      serverFingerprint: ownTls.serverFingerprint,
      caFingerprint: ownTls.caFingerprint,
      caPem: ownTls.caPem,
      notAfter: ownTls.notAfter,
      names: [...ownTls.dnsNames, ...ownTls.ips],
    };
  } else if (givenFingerprint) {
    tlsInfo = { port: http.port, serverFingerprint: givenFingerprint };
  }
  charts.start();
  await guard.start();
  stack.defer(() => guard.stop());
  if (presence && router) {
    presence.start();
    router.start();
    stack.defer(async () => {
      await router.stop();
      await presence.stop();
    });
  }
  if (link) {
    const sync = new BindingSync({
      link,
      local: localBindings,
      logger: logger.child({ part: "cluster" }),
      onChanged: () => void guard.poll(),
    });
    sync.start();
    stack.defer(() => sync.stop());
    // With the office reachable at start, serve once the shared bindings are set up (bounded).
    if (link.hubUp) {
      let timer: ReturnType<Clock["setTimeout"]> | undefined;
      await Promise.race([
        sync.ready,
        new Promise<void>((r) => (timer = clock.setTimeout(() => r(), 15_000))),
      ]);
      if (timer !== undefined) clock.clearTimeout(timer);
    }
  }
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

  if (ownTls) {
    const msg = ownTls.created === "ca"
      ? "HTTPS: created a local CA and a certificate for this box (phones trust the CA once: GET /ca.crt)"
      : ownTls.created === "server"
      ? "HTTPS: issued a new certificate for this box's names under the local CA"
      : "HTTPS: using the local CA and certificate in the data directory";
    logger.info(msg, {
      caFingerprint: ownTls.caFingerprint,
      fingerprint: ownTls.serverFingerprint,
      names: [...ownTls.dnsNames, ...ownTls.ips],
      notAfter: new Date(ownTls.notAfter).toISOString(),
    });
    if (ownTls.excluded.length) {
      logger.info("HTTPS: names left out of the certificate (outside the local CA's constraints)", {
        names: ownTls.excluded,
      });
    }
  }
  logger.info("gateway started", {
    http: `${config.tlsCert ? "https" : "http"}://${http.hostname}:${http.port}`,
    ...(https ? { https: `https://${https.hostname}:${https.port}` } : {}),
    ...(tlsInfo ? { tlsFingerprint: tlsInfo.caFingerprint ?? tlsInfo.serverFingerprint } : {}),
    console: `/admin${adminHost ? ` on ${adminHost}` : ""}`,
    doorPort: doorPort.local.port,
    mediaPort: mediaPort.local.port,
    multicastGroup: config.multicastGroup,
    interfaces: describeJoins(joined),
    lanIp: config.lanIp ?? "auto (per door: this box's address on the door's subnet)",
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
    addresses: { http, https, door: doorPort.local, media: mediaPort.local },
    metrics,
    events,
    live,
    manager,
    hub,
    bindings,
    pushSubscriptions: pushSubs,
    vapidPublicKey: vapid.publicKey,
    records,
    relay,
    console: adminConsole,
    admins,
    snapshots,
    tls: tlsInfo,
    cluster: link,
    remoteRooms: () => presence?.rooms() ?? new Set(),
    health,
    shutdown,
    finished,
  };
}
