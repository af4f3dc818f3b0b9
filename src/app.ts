/**
 * The composition root: builds the ports (UDP sockets, KV, HTTP server) and wires door
 * transport ↔ call manager ↔ phone hub ↔ media relay. `start()` opens everything;
 * `shutdown()` ends calls cleanly (CALLEND to doors, `over` to phones) and closes it all.
 *
 * @module
 */

import { type Clock, systemClock } from "./clock.ts";
import type { Config } from "./config.ts";
import { createLogger, type Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import type { DatagramPort } from "./net/port.ts";
import { openUdpPort } from "./net/udp.ts";
import { DoorTransport } from "./door/transport.ts";
import { pickLocalIp } from "./door/local_ip.ts";
import { CallManager } from "./call/manager.ts";
import { PhoneHub } from "./phone/hub.ts";
import { PhoneService } from "./phone/service.ts";
import { createHandler } from "./phone/handler.ts";
import { openStore } from "./store/kv.ts";
import { BindingStore } from "./store/bindings.ts";
import { RecordStore } from "./store/records.ts";
import { MediaRelay } from "./media/relay.ts";
import { receiveLoop } from "./net/receive_loop.ts";
import { DoorRegistry } from "./door/registry.ts";
import { TokenBucketLimiter } from "./phone/limiter.ts";

/** A running gateway. */
export interface App {
  /** Where it listens (ports resolved when 0 was asked). */
  readonly addresses: {
    http: Deno.NetAddr;
    door: { hostname: string; port: number };
    media: { hostname: string; port: number };
  };
  readonly metrics: Metrics;
  readonly manager: CallManager;
  readonly hub: PhoneHub;
  readonly bindings: BindingStore;
  readonly records: RecordStore;
  readonly relay: MediaRelay;
  /** Liveness: sockets bound, KV open. */
  health(): { ok: boolean; [k: string]: unknown };
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

/** Opens every port and starts serving. */
export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ??
    createLogger({ level: config.logLevel, format: config.logFormat });
  const metrics = new Metrics();
  const kv = await openStore(config.data);
  let kvOpen = true;
  const bindings = new BindingStore(kv);
  const records = new RecordStore(kv);

  const registry = new DoorRegistry({
    clock,
    allowlist: config.doorAllowlist,
    onLearn: (address, ip) => {
      logger.info("door learned", { door: address, ip });
      kv.set(["door", address], ip).catch((e) =>
        logger.error("door registry write failed", { error: e })
      );
    },
  });
  for await (const e of kv.list<string>({ prefix: ["door"] })) {
    registry.restore(String(e.key[1]), e.value);
  }
  // Calls a crash or power loss left open cannot be live any more: close their records.
  for (const r of await records.recent(200)) {
    if (!r.endedAt) {
      await records.update(r.callId, {
        endedAt: new Date().toISOString(),
        endReason: "gateway_restarted",
      });
    }
  }

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

  const opened: DatagramPort[] = [];
  let doorPort: DatagramPort;
  let mediaPort: DatagramPort;
  try {
    doorPort = await openUdpPort({
      port: config.doorPort,
      pooled: true,
      multicast: {
        group: config.multicastGroup,
        interface: config.multicastInterface ?? config.lanIp ?? "0.0.0.0",
      },
    });
    opened.push(doorPort);
    mediaPort = await openUdpPort({ port: config.mediaPort, pooled: true });
    opened.push(mediaPort);
  } catch (e) {
    for (const p of opened) p.close();
    kv.close();
    throw e;
  }

  const relay = new MediaRelay({
    logger: logger.child({ part: "media" }),
    metrics,
    magic: config.magic,
    sendToPhone: (bytes, to) => mediaPort.send(bytes, to),
    sendToDoor: (bytes, to) => doorPort.send(bytes, to),
  });
  // deno-lint-ignore prefer-const
  let manager: CallManager;
  const hub = new PhoneHub({
    clock,
    logger: logger.child({ part: "phones" }),
    metrics,
    heartbeatTimeoutMs: config.heartbeatTimeout * 1000,
    onLeft: (uid, rooms) => manager.phoneLeft(uid, rooms),
    onJoined: (uid, room) => manager.phoneJoined(uid, room),
  });
  const transport = new DoorTransport({
    port: doorPort,
    clock,
    logger: logger.child({ part: "door" }),
    metrics,
    magic: config.magic,
    isOnline: (room) => hub.roomOnline(room),
    localIpFor,
    onEvent: (e) => manager.onDoorEvent(e),
    onMedia: (bytes, from) => relay.onDoorMedia(bytes, from),
    admit: (address, ip) => registry.admit(address, ip),
  });
  manager = new CallManager({
    door: transport,
    phones: hub,
    clock,
    logger: logger.child({ part: "calls" }),
    metrics,
    ringTimeoutMs: config.ringTimeout * 1000,
    talkTimeoutMs: config.talkTimeout * 1000,
    localIpFor,
    lanIp: config.lanIp,
    media: relay,
    records: {
      start: async (r) => void (await records.start(r)),
      update: async (id, patch) => void (await records.update(id, patch)),
      unlock: async (id, entry) => void (await records.addUnlock(id, entry)),
    },
  });
  const service = new PhoneService({
    hub,
    manager,
    bindings,
    logger: logger.child({ part: "phones" }),
    metrics,
    mediaPort: mediaPort.local.port,
    audit: records,
    media: relay,
    limiter: new TokenBucketLimiter(clock),
  });

  const health = () => ({
    ok: kvOpen && !closing,
    kv: kvOpen,
    doorPort: doorPort.local.port,
    mediaPort: mediaPort.local.port,
    calls: manager.size,
    phones: hub.size,
  });
  metrics.gauge("calls_active", () => manager.size, "Calls in progress");

  const abort = new AbortController();
  let resolveListen!: (addr: Deno.NetAddr) => void;
  const listening = new Promise<Deno.NetAddr>((r) => (resolveListen = r));
  let server: ReturnType<typeof Deno.serve>;
  let http: Deno.NetAddr;
  try {
    const tls = config.tlsCert && config.tlsKey
      ? {
        cert: await Deno.readTextFile(config.tlsCert),
        key: await Deno.readTextFile(config.tlsKey),
      }
      : {};
    server = Deno.serve({
      hostname: config.httpHost,
      port: config.httpPort,
      signal: abort.signal,
      onListen: (addr) => resolveListen(addr as Deno.NetAddr),
      ...tls,
    }, createHandler({ hub, service, metrics, health, version: options.version ?? "dev" }));
    http = await listening;
  } catch (e) {
    // No TLS files or the HTTP port taken: close what is open so far (the caller may go on).
    hub.close();
    doorPort.close();
    mediaPort.close();
    kv.close();
    throw e;
  }
  transport.start();
  const mediaLoop = receiveLoop(
    mediaPort,
    (bytes, from) => relay.onPhoneDatagram(bytes, from),
    logger,
  );

  logger.info("gateway started", {
    http: `${config.tlsCert ? "https" : "http"}://${http.hostname}:${http.port}`,
    doorPort: doorPort.local.port,
    mediaPort: mediaPort.local.port,
    multicastGroup: config.multicastGroup,
    lanIp: config.lanIp ?? "auto",
  });

  // Months unattended: keep the KV bounded (call records and unlock audit older than 90 days).
  const prune = () =>
    records.pruneOlderThan(90).catch((e) => logger.error("record pruning failed", { error: e }));
  void prune();
  const pruneTimer = setInterval(prune, 24 * 3600 * 1000);

  let closing = false;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  const shutdown = async () => {
    if (closing) return finished;
    closing = true;
    logger.info("gateway stopping", { calls: manager.size });
    clearInterval(pruneTimer);
    await manager.shutdown(1500);
    hub.close();
    await transport.close();
    mediaPort.close();
    await mediaLoop;
    abort.abort();
    await server.finished.catch(() => {});
    kv.close();
    kvOpen = false;
    logger.info("gateway stopped");
    resolveFinished();
  };

  return {
    addresses: { http, door: doorPort.local, media: mediaPort.local },
    metrics,
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
