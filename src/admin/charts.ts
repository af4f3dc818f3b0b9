/**
 * The console's charts, kept in memory and bounded: calls per hour (the last 48 hours), and
 * every minute of the last 6 hours the media packets per second (door → gateway, gateway →
 * phones, phones → gateway, gateway → doors), media drops per second and the phones online.
 * Lost at a restart (the call records hold the history that matters).
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";

/** Running totals the sampler reads each minute. */
export interface ChartCounters {
  readonly doorIn: number;
  readonly toPhones: number;
  readonly phoneIn: number;
  readonly toDoor: number;
  readonly dropped: number;
  readonly phonesOnline: number;
}

/** One minute. */
export interface MinutePoint {
  /** Epoch ms of the minute's end. */
  readonly t: number;
  readonly doorInPerS: number;
  readonly toPhonesPerS: number;
  readonly phoneInPerS: number;
  readonly toDoorPerS: number;
  readonly droppedPerS: number;
  readonly phonesOnline: number;
}

/** One hour of calls. */
export interface HourPoint {
  /** Epoch ms of the hour's start. */
  readonly t: number;
  readonly calls: number;
}

/** What `GET /api/v1/charts` answers. */
export interface ChartData {
  readonly minutes: readonly MinutePoint[];
  readonly hours: readonly HourPoint[];
}

/** Minutes kept. */
export const MINUTES_KEPT = 360;
/** Hours kept. */
export const HOURS_KEPT = 48;
const HOUR_MS = 3600_000;

/** Options of {@linkcode ChartSampler}. */
export interface ChartSamplerOptions {
  clock: Pick<Clock, "now" | "wallNow" | "setTimeout" | "clearTimeout">;
  read: () => ChartCounters;
  /** @default 60_000 */
  everyMs?: number;
}

/** Samples the counters every minute; counts calls per hour. */
export class ChartSampler {
  readonly #o: ChartSamplerOptions;
  readonly #every: number;
  #minutes: MinutePoint[] = [];
  #hours: HourPoint[] = [];
  #last: { at: number; c: ChartCounters } | undefined;
  #timer: TimerId | undefined;
  #closed = false;

  /** Creates the sampler; {@linkcode ChartSampler.start} starts its timer. */
  constructor(options: ChartSamplerOptions) {
    this.#o = options;
    this.#every = options.everyMs ?? 60_000;
  }

  /** Takes the first reading and starts sampling. */
  start(): void {
    this.#last = { at: this.#o.clock.now(), c: this.#o.read() };
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.sample();
      this.#schedule();
    }, this.#every);
  }

  /** Takes one sample now (the timer's work; tests call it). */
  sample(): void {
    const now = this.#o.clock.now();
    const c = this.#o.read();
    const last = this.#last;
    this.#last = { at: now, c };
    if (!last || now <= last.at) return;
    const s = (now - last.at) / 1000;
    const rate = (a: number, b: number) => Math.max(0, Math.round(((a - b) / s) * 10) / 10);
    this.#minutes.push({
      t: this.#o.clock.wallNow(),
      doorInPerS: rate(c.doorIn, last.c.doorIn),
      toPhonesPerS: rate(c.toPhones, last.c.toPhones),
      phoneInPerS: rate(c.phoneIn, last.c.phoneIn),
      toDoorPerS: rate(c.toDoor, last.c.toDoor),
      droppedPerS: rate(c.dropped, last.c.dropped),
      phonesOnline: c.phonesOnline,
    });
    if (this.#minutes.length > MINUTES_KEPT) this.#minutes.shift();
  }

  /** A call started at wall time `at`. */
  callStarted(at: number): void {
    const hour = Math.floor(at / HOUR_MS) * HOUR_MS;
    const i = this.#hours.findIndex((h) => h.t >= hour);
    if (i >= 0 && this.#hours[i]!.t === hour) {
      this.#hours[i] = { t: hour, calls: this.#hours[i]!.calls + 1 };
    } else {
      this.#hours.splice(i < 0 ? this.#hours.length : i, 0, { t: hour, calls: 1 });
      if (this.#hours.length > HOURS_KEPT) this.#hours.shift();
    }
  }

  /** The series, oldest first; hours without calls are filled with zeros. */
  data(): ChartData {
    const nowHour = Math.floor(this.#o.clock.wallNow() / HOUR_MS) * HOUR_MS;
    const byHour = new Map(this.#hours.map((h) => [h.t, h.calls]));
    const hours: HourPoint[] = [];
    for (let i = 23; i >= 0; i--) {
      const t = nowHour - i * HOUR_MS;
      hours.push({ t, calls: byHour.get(t) ?? 0 });
    }
    return { minutes: [...this.#minutes], hours };
  }

  /** Stops the timer. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
  }
}
