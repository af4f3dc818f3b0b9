/**
 * The gateway's link to the community (`--cluster`): one NATS connection to this box's own leaf
 * node (on 127.0.0.1), kept forever (reconnects every {@linkcode RETRY_MS}), and a probe of the
 * office's JetStream hub behind the leaf (`$JS.hub.API.INFO`, every {@linkcode PROBE_MS}). Both
 * states are `cluster_link` events on the bus and listeners of {@linkcode ClusterLink.onChange};
 * the other cluster adapters (bindings, records, presence) act on them.
 *
 * Never blocks the gateway: it starts serving while the leaf is still being reached, and a
 * request that needs the hub fails at once (no responders) when the link to the office is cut.
 *
 * @module
 */

import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { EventSink } from "../events/bus.ts";
import type { Metrics } from "../metrics.ts";
import { HUB_DOMAIN } from "./subjects.ts";

/** Between two attempts to reach the leaf node. */
export const RETRY_MS = 1000;
/** Between two probes of the hub. */
export const PROBE_MS = 1000;
/** A hub request (probe, binding write) that takes longer counts as "unreachable". */
export const HUB_TIMEOUT_MS = 2000;

/** Options of {@linkcode ClusterLink}. */
export interface ClusterLinkOptions {
  /** `nats://127.0.0.1:4222`: this box's leaf node. */
  readonly url: string;
  /** This gateway's id (connection name `intercom-<id>`). */
  readonly gatewayId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events?: EventSink;
  readonly metrics?: Metrics;
  /** @default {PROBE_MS} */
  readonly probeMs?: number;
}

/** What changed: the leaf connection or the hub's reachability. */
export type LinkChange = { readonly part: "leaf" | "hub"; readonly up: boolean };

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The NATS connection to the leaf node and the hub's reachability. */
export class ClusterLink {
  readonly #o: ClusterLinkOptions;
  #nc: NatsConnection | undefined;
  #leafUp = false;
  #hubUp = false;
  #closed = false;
  #retry: TimerId | undefined;
  #probe: TimerId | undefined;
  #probing: Promise<void> = Promise.resolve();
  #connecting: Promise<void> = Promise.resolve();
  #hubJsm: JetStreamManager | undefined;
  readonly #listeners = new Set<(c: LinkChange) => void>();
  #statusLoop: Promise<void> = Promise.resolve();

  /** Creates the link; {@linkcode ClusterLink.start} connects. */
  constructor(options: ClusterLinkOptions) {
    this.#o = options;
    options.metrics?.gauge(
      "cluster_hub_up",
      () => (this.#hubUp ? 1 : 0),
      "1 while the community hub answers through the leaf node",
    );
    options.metrics?.gauge(
      "cluster_leaf_up",
      () => (this.#leafUp ? 1 : 0),
      "1 while this box's NATS leaf node is connected",
    );
  }

  /** This gateway's id. */
  get gatewayId(): string {
    return this.#o.gatewayId;
  }

  /** The connection while the leaf is up. */
  get nc(): NatsConnection | undefined {
    return this.#leafUp ? this.#nc : undefined;
  }

  /** True while the leaf node is connected. */
  get leafUp(): boolean {
    return this.#leafUp;
  }

  /** True while the hub answered the last probe. */
  get hubUp(): boolean {
    return this.#hubUp;
  }

  /** Calls `fn` on every change of the leaf or hub state; returns the unsubscribe. */
  onChange(fn: (c: LinkChange) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Tries the leaf once now (resolves when connected or refused) and keeps trying in the
   * background; `waitMs`: how long to wait for the hub's first answer (so that a gateway
   * starting with the office reachable sets up its shared buckets before serving).
   */
  async start(waitMs = 0): Promise<void> {
    this.#connecting = this.#connect();
    await this.#connecting;
    if (waitMs > 0 && this.#leafUp) {
      const until = this.#o.clock.now() + waitMs;
      while (!this.#hubUp && !this.#closed && this.#o.clock.now() < until) {
        await this.#probeOnce();
        if (!this.#hubUp) await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** The JetStream client of this box's leaf node (its own domain). */
  localJs(): JetStreamClient {
    const nc = this.#require();
    return jetstream(nc, { timeout: HUB_TIMEOUT_MS });
  }

  /**
   * The JetStream client of the hub (domain `hub`, through the leaf); `timeoutMs` for slow
   * operations (creating a replicated stream elects its leader first).
   */
  hubJs(timeoutMs = HUB_TIMEOUT_MS): JetStreamClient {
    const nc = this.#require();
    return jetstream(nc, { domain: HUB_DOMAIN, timeout: timeoutMs });
  }

  /** A JetStream manager of the leaf node, or of the hub with `domain: "hub"`. */
  manager(domain?: string): Promise<JetStreamManager> {
    const nc = this.#require();
    return jetstreamManager(nc, {
      timeout: HUB_TIMEOUT_MS,
      checkAPI: false,
      ...(domain ? { domain } : {}),
    });
  }

  #require(): NatsConnection {
    const nc = this.nc;
    if (!nc) throw new Error(`this box's NATS leaf node (${this.#o.url}) is not connected`);
    return nc;
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    try {
      const nc = await connect({
        servers: this.#o.url,
        name: `intercom-${this.#o.gatewayId}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: RETRY_MS,
        waitOnFirstConnect: false,
        timeout: HUB_TIMEOUT_MS,
      });
      if (this.#closed) {
        await nc.close().catch(() => {});
        return;
      }
      this.#nc = nc;
      this.#statusLoop = this.#watchStatus(nc);
      this.#set("leaf", true);
      this.#scheduleProbe(0);
    } catch (e) {
      this.#o.logger.warn("cluster: cannot reach this box's NATS leaf node, retrying", {
        url: this.#o.url,
        error: message(e),
      });
      this.#retry = this.#o.clock.setTimeout(() => {
        this.#retry = undefined;
        this.#connecting = this.#connect();
      }, RETRY_MS);
    }
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        this.#set("leaf", false);
        this.#set("hub", false);
      } else if (s.type === "reconnect") {
        this.#set("leaf", true);
        this.#scheduleProbe(0);
      }
    }
  }

  #scheduleProbe(ms: number): void {
    if (this.#closed || this.#probe !== undefined) return;
    this.#probe = this.#o.clock.setTimeout(() => {
      this.#probe = undefined;
      this.#probing = this.#probeOnce().finally(() =>
        this.#scheduleProbe(this.#o.probeMs ?? PROBE_MS)
      );
    }, ms);
  }

  async #probeOnce(): Promise<void> {
    if (!this.#leafUp || this.#closed) return;
    try {
      this.#hubJsm ??= await this.manager(HUB_DOMAIN);
      await this.#hubJsm.getAccountInfo();
      this.#set("hub", true);
    } catch (e) {
      this.#set("hub", false, message(e));
    }
  }

  #set(part: "leaf" | "hub", up: boolean, detail?: string): void {
    const was = part === "leaf" ? this.#leafUp : this.#hubUp;
    if (was === up) return;
    if (part === "leaf") {
      this.#leafUp = up;
      if (!up) this.#hubJsm = undefined;
    } else this.#hubUp = up;
    const log = up ? "info" : "warn";
    this.#o.logger[log](
      part === "leaf"
        ? (up ? "cluster: leaf node connected" : "cluster: leaf node lost")
        : (up
          ? "cluster: community hub reachable"
          : "cluster: community hub unreachable, working on this gateway's own"),
      { url: this.#o.url, ...(detail ? { detail } : {}) },
    );
    this.#o.events?.emit({
      type: "cluster_link",
      at: this.#o.clock.wallNow(),
      part,
      up,
      ...(detail ? { detail } : {}),
    });
    for (const fn of this.#listeners) {
      try {
        fn({ part, up });
      } catch (e) {
        this.#o.logger.error("cluster: link listener failed", { error: e });
      }
    }
  }

  /** Stops probing and closes the connection (after `drain` of what was published). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry !== undefined) this.#o.clock.clearTimeout(this.#retry);
    if (this.#probe !== undefined) this.#o.clock.clearTimeout(this.#probe);
    await this.#connecting;
    await this.#probing;
    const nc = this.#nc;
    this.#nc = undefined;
    this.#leafUp = false;
    this.#hubUp = false;
    if (nc) {
      await nc.drain().catch(() => nc.close().catch(() => {}));
      await this.#statusLoop.catch(() => {});
    }
  }
}
