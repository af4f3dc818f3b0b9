/**
 * Door video for phones that cannot decode it (README "Web phone", phone-protocol.md
 * `enable_video` `codecs`). No browser decodes MPEG-4 Part 2, so when a phone lists the codecs
 * it decodes and the door's codec is not among them, the gateway converts the door's video to
 * JPEG frames with `ffmpeg` (`--transcode auto`, the default; needs `--allow-run=ffmpeg`) and
 * sends them to that phone in the door's own media packets (CALLUP, data type 2, 1200-byte
 * chunks), so the phone has one video path. Audio passes through untouched.
 *
 * - A decorator of the relay's {@linkcode PhoneMedia}: `enableWs` gets a wrapped `send`; the
 *   relay is not changed. Phones that say nothing (`codecs` absent), or whose codecs include
 *   the door's, get the door's bytes as they are.
 * - The codec is read from the first chunk of the first frame (JPEG `FF D8`, MPEG-4 start codes
 *   with a byte ≥ 0x80 after them (VOP `B6`), otherwise H.264).
 * - One `ffmpeg` per call, started at the first frame a watching phone cannot decode and shared
 *   by every such phone of the call; stopped when no video came for `idleMs` (the call ended or
 *   moved), at shutdown, and bounded to `maxSessions` at once. Without the permission, without
 *   ffmpeg, or over the bound, the phone gets the door's bytes (the web phone then says "video
 *   not available for this door"); each of these is logged once and counted.
 * - Bounded: at most `maxQueuedFrames` frames wait for ffmpeg's input; beyond that frames are
 *   dropped until the next I-frame (a P-frame without its predecessors cannot be decoded).
 *
 * @module
 */

import type { Clock, TimerId } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { PhoneMedia } from "../phone/ports.ts";
import { CHUNK_SIZE, COMMAND, DATA_TYPE, LENGTH, OFFSET, OP } from "../protocol/constants.ts";
import { mediaPayloadOffset } from "../protocol/media.ts";
import { sniffCodec } from "./video_codec.ts";

/** `--transcode`: `auto` converts when ffmpeg can be run, `off` never. */
export type TranscodeMode = "auto" | "off";

/** The values of `--transcode`. */
export const TRANSCODE_MODES: readonly TranscodeMode[] = ["auto", "off"];

export { sniffCodec, type SniffedCodec } from "./video_codec.ts";

/** A running converter: frames in (the door's codec), JPEG bytes out. */
export interface ConverterProcess {
  /** Writes one whole frame; resolves once it is taken. */
  write(frame: Uint8Array): Promise<void>;
  /** The output byte stream (concatenated JPEGs). */
  readonly output: AsyncIterable<Uint8Array>;
  /** Stops it; resolves once the process has exited and its pipes are closed. */
  stop(): Promise<void>;
}

/** Starts a converter for `input` video (an ffmpeg process in the product). */
export type StartConverter = (input: "h264" | "mpeg4") => ConverterProcess;

/** The ffmpeg arguments: raw `input` stream on stdin, MJPEG on stdout, no buffering. */
export function ffmpegArgs(input: "h264" | "mpeg4"): string[] {
  return [
    ...["-hide_banner", "-loglevel", "error"],
    // Not "-fflags nobuffer": with it, a stream joined at a later I-VOP decodes grey.
    ...["-fflags", "discardcorrupt", "-flags", "low_delay"],
    ...["-probesize", "32", "-analyzeduration", "0", "-threads", "1"],
    ...["-f", input === "h264" ? "h264" : "m4v", "-i", "pipe:0"],
    ...["-an", "-c:v", "mjpeg", "-q:v", "5", "-f", "mjpeg", "-flush_packets", "1", "pipe:1"],
  ];
}

/** Starts `ffmpeg` with {@linkcode ffmpegArgs} (needs `--allow-run=ffmpeg`). */
export function startFfmpeg(input: "h264" | "mpeg4", logger?: Logger): ConverterProcess {
  const child = new Deno.Command("ffmpeg", {
    args: ffmpegArgs(input),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const errors = (async () => {
    const dec = new TextDecoder();
    let text = "";
    for await (const chunk of child.stderr) {
      if (text.length < 2048) text += dec.decode(chunk, { stream: true });
    }
    if (text.trim()) logger?.debug("ffmpeg said", { text: text.slice(0, 2048) });
  })().catch(() => {});
  let stopped: Promise<void> | undefined;
  return {
    write: (frame) => writer.write(frame),
    output: child.stdout,
    stop: () =>
      stopped ??= (async () => {
        try {
          child.kill("SIGKILL");
        } catch {
          // exited already
        }
        await writer.abort().catch(() => {});
        await child.status;
        await errors;
      })(),
  };
}

/** True when this process may run ffmpeg (`--allow-run=ffmpeg`, or all of run). */
export function mayRunFfmpeg(): boolean {
  try {
    return Deno.permissions.querySync({ name: "run", command: "ffmpeg" }).state === "granted";
  } catch {
    return false;
  }
}

/** Options of {@linkcode Transcoder}. */
export interface TranscoderOptions {
  mode: TranscodeMode;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Starts a converter. @default ffmpeg ({@linkcode startFfmpeg}) */
  start?: StartConverter;
  /** Whether converters may be started. @default {@linkcode mayRunFfmpeg} */
  allowed?: () => boolean;
  /** A call's converter stops after this long without door video. @default {3000} */
  idleMs?: number;
  /** Converters at once (one per call). @default {4} */
  maxSessions?: number;
  /** Frames waiting for the converter's input at most. @default {8} */
  maxQueuedFrames?: number;
}

type Send = (bytes: Uint8Array) => void;

/** One phone's view of a call: what it can decode and what it gets. */
interface Sink {
  readonly send: Send;
  readonly codecs: readonly string[];
  mode: "undecided" | "pass" | "convert";
  /** When the relay last gave it door video (it routes video; converted frames follow that). */
  seen: number;
}

/** A call's converter and the phones it feeds. */
interface Session {
  readonly callId: string;
  readonly proc: ConverterProcess;
  /** The phones it feeds, by uid (the latest `enableWs` of each). */
  readonly sinks: Map<string, Sink>;
  /** The door's bytes 0–56 (magic, command, op, parties): the head of every packet sent. */
  head: Uint8Array | undefined;
  /** The frame being reassembled from the door's chunks. */
  frame: { no: number; total: number; parts: (Uint8Array | undefined)[]; got: number } | undefined;
  lastChunk: string;
  started: boolean;
  queued: number;
  needKey: boolean;
  outFrame: number;
  timestamp: number;
  lastInput: number;
  timer: TimerId | undefined;
  done: Promise<void>;
}

const u16 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);

/** Converts door video for phones that cannot decode it (see the module notes). */
export class Transcoder {
  #o: TranscoderOptions;
  #start: StartConverter;
  #allowed: () => boolean;
  #sessions = new Map<string, Session>();
  #said = new Set<string>();
  #closed = false;

  /** Wires the transcoder (nothing runs until a phone watches a door it cannot decode). */
  constructor(options: TranscoderOptions) {
    this.#o = options;
    this.#start = options.start ?? ((input) => startFfmpeg(input, options.logger));
    this.#allowed = options.allowed ?? mayRunFfmpeg;
    options.metrics.gauge(
      "transcode_sessions",
      () => this.#sessions.size,
      "Door video converters running (ffmpeg, one per call)",
    );
  }

  /** Converters running now. */
  get size(): number {
    return this.#sessions.size;
  }

  /** The relay's phone media, with `enableWs` converting video where the phone needs it. */
  wrap(media: PhoneMedia): PhoneMedia {
    const wrapped: PhoneMedia = {
      enableWs: (callId, uid, send, isOpen, codecs) =>
        media.enableWs(callId, uid, this.sinkFor(callId, uid, send, codecs), isOpen, codecs),
      wsAudio: (uid, bytes) => media.wsAudio(uid, bytes),
    };
    if (media.enableUdp) wrapped.enableUdp = (callId, uid) => media.enableUdp!(callId, uid);
    if (media.detach) wrapped.detach = (callId, uid) => media.detach!(callId, uid);
    return wrapped;
  }

  /**
   * The `send` to give the relay for a phone's WebSocket media: `send` itself when the phone
   * named no codecs or transcoding is off, else one that converts video the phone cannot decode.
   */
  sinkFor(callId: string, uid: string, send: Send, codecs?: readonly string[]): Send {
    if (this.#o.mode === "off" || codecs === undefined) return send;
    // The relay keeps one sink per phone and call: this one replaces the phone's older one.
    const sink: Sink = { send, codecs, mode: "undecided", seen: -Infinity };
    return (bytes) => this.#onDatagram(callId, uid, sink, bytes);
  }

  #onDatagram(callId: string, uid: string, sink: Sink, bytes: Uint8Array): void {
    const at = mediaPayloadOffset(bytes);
    const video = at !== 0 && bytes[OFFSET.OP] === OP.CALLUP &&
      u16(bytes, OFFSET.DATA_TYPE) !== DATA_TYPE.AUDIO;
    if (!video || sink.mode === "pass") return sink.send(bytes);
    sink.seen = this.#o.clock.now();
    if (sink.mode === "undecided") {
      if (u16(bytes, OFFSET.PACKET_INDEX) !== 1) return; // a frame's middle: cannot tell yet
      const codec = sniffCodec(bytes.subarray(at));
      if (codec === "unknown" || sink.codecs.includes(codec) || codec === "jpeg") {
        sink.mode = "pass";
        return sink.send(bytes);
      }
      if (!this.#join(callId, uid, sink, codec)) {
        sink.mode = "pass";
        return sink.send(bytes);
      }
      sink.mode = "convert";
    }
    const session = this.#sessions.get(callId);
    if (!session) {
      // The converter stopped (idle, failed): decide again on the next frame.
      sink.mode = "undecided";
      return;
    }
    session.sinks.set(uid, sink);
    this.#feed(session, bytes, at);
  }

  #join(callId: string, uid: string, sink: Sink, codec: "h264" | "mpeg4"): boolean {
    const existing = this.#sessions.get(callId);
    if (existing) {
      existing.sinks.set(uid, sink);
      return true;
    }
    if (this.#closed) return false;
    if (!this.#allowed()) {
      this.#sayOnce(
        "permission",
        "Cannot convert door video for web phones: run the gateway with --allow-run=ffmpeg (or --transcode off)",
        { codec },
      );
      this.#o.metrics.inc("transcode_refused_total", { reason: "permission" });
      return false;
    }
    if (this.#sessions.size >= (this.#o.maxSessions ?? 4)) {
      this.#sayOnce("limit", "Cannot convert door video: too many conversions at once", {
        max: this.#o.maxSessions ?? 4,
      });
      this.#o.metrics.inc("transcode_refused_total", { reason: "limit" });
      return false;
    }
    let proc: ConverterProcess;
    try {
      proc = this.#start(codec);
    } catch (e) {
      this.#sayOnce(
        "spawn",
        "Cannot convert door video: ffmpeg does not start (is it installed?)",
        {
          error: e,
        },
      );
      this.#o.metrics.inc("transcode_refused_total", { reason: "spawn" });
      return false;
    }
    const session: Session = {
      callId,
      proc,
      sinks: new Map([[uid, sink]]),
      head: undefined,
      frame: undefined,
      lastChunk: "",
      started: false,
      queued: 0,
      needKey: true,
      outFrame: 0,
      timestamp: 0,
      lastInput: this.#o.clock.now(),
      timer: undefined,
      done: Promise.resolve(),
    };
    session.done = this.#pump(session);
    this.#sessions.set(callId, session);
    this.#o.metrics.inc("transcode_sessions_total", { codec });
    this.#o.logger.info("converting door video for web phones", {
      callId,
      from: codec,
      to: "jpeg",
    });
    this.#armIdle(session);
    return true;
  }

  #sayOnce(key: string, msg: string, fields: Record<string, unknown>): void {
    if (this.#said.has(key)) return;
    this.#said.add(key);
    this.#o.logger.warn(msg, fields);
  }

  /** One chunk of door video: reassembled; a whole frame goes to the converter. */
  #feed(s: Session, bytes: Uint8Array, at: number): void {
    const no = u16(bytes, OFFSET.FRAME_NO);
    const index = u16(bytes, OFFSET.PACKET_INDEX);
    const total = u16(bytes, OFFSET.TOTAL_PACKETS);
    const chunkKey = `${no}/${index}`;
    if (chunkKey === s.lastChunk) return; // the same datagram, fanned out to another phone
    s.lastChunk = chunkKey;
    s.lastInput = this.#o.clock.now();
    s.head ??= bytes.slice(0, OFFSET.TIMESTAMP); // magic, command, type, op, parties
    s.timestamp = (bytes[OFFSET.TIMESTAMP]! | (bytes[OFFSET.TIMESTAMP + 1]! << 8) |
      (bytes[OFFSET.TIMESTAMP + 2]! << 16) | (bytes[OFFSET.TIMESTAMP + 3]! << 24)) >>> 0;
    if (total < 1 || total > 4096 || index < 1 || index > total) return;
    if (!s.frame || s.frame.no !== no) {
      s.frame = { no, total, parts: new Array(total), got: 0 };
    }
    const f = s.frame;
    if (f.total !== total || f.parts[index - 1]) return;
    f.parts[index - 1] = bytes.slice(at);
    if (++f.got < f.total) return;
    s.frame = undefined;
    const type = u16(bytes, OFFSET.DATA_TYPE);
    const key = type === DATA_TYPE.CIF_I || type === DATA_TYPE.D1_I;
    if (s.needKey && !key) return;
    if (s.queued >= (this.#o.maxQueuedFrames ?? 8)) {
      s.needKey = true;
      this.#o.metrics.inc("transcode_frames_dropped_total");
      return;
    }
    s.needKey = false;
    const frame = new Uint8Array(f.parts.reduce((n, p) => n + p!.length, 0));
    let o = 0;
    for (const p of f.parts) {
      frame.set(p!, o);
      o += p!.length;
    }
    s.queued++;
    s.proc.write(frame).then(
      () => s.queued--,
      () => this.#stop(s, "input closed"),
    );
  }

  /** Reads the converter's JPEGs and sends each, packetised, to the session's phones. */
  async #pump(s: Session): Promise<void> {
    let buf = new Uint8Array(0);
    try {
      for await (const chunk of s.proc.output) {
        const joined = new Uint8Array(buf.length + chunk.length);
        joined.set(buf);
        joined.set(chunk, buf.length);
        buf = joined;
        for (;;) {
          const start = indexOf(buf, 0xff, 0xd8, 0);
          if (start < 0) {
            buf = new Uint8Array(0);
            break;
          }
          const end = indexOf(buf, 0xff, 0xd9, start + 2);
          if (end < 0) {
            buf = buf.slice(start);
            break;
          }
          this.#emit(s, buf.subarray(start, end + 2));
          buf = buf.slice(end + 2);
        }
        if (buf.length > 4 * 1024 * 1024) buf = new Uint8Array(0); // no EOI in 4 MiB: garbage
      }
    } catch (e) {
      this.#o.logger.debug("door video converter output failed", { callId: s.callId, error: e });
    }
  }

  /** One converted JPEG as CALLUP packets (data type 2, 1200-byte chunks, index from 1). */
  #emit(s: Session, jpeg: Uint8Array): void {
    if (!s.head || !s.sinks.size) return;
    // Only to the phones the relay still sends this call's video to (the talker, once talking).
    const now = this.#o.clock.now();
    const to = [...s.sinks.values()].filter((k) => now - k.seen < 1000);
    s.outFrame = s.outFrame >= 0xffff ? 1 : s.outFrame + 1;
    const total = Math.max(1, Math.ceil(jpeg.length / CHUNK_SIZE));
    for (let i = 0; i < total; i++) {
      const payload = jpeg.subarray(i * CHUNK_SIZE, Math.min(jpeg.length, (i + 1) * CHUNK_SIZE));
      const out = new Uint8Array(LENGTH.MEDIA_SHORT + payload.length);
      out.set(s.head, 0);
      out[OFFSET.COMMAND] = COMMAND.VIDEOTALK;
      out[OFFSET.OP] = OP.CALLUP;
      const v = new DataView(out.buffer);
      v.setUint32(OFFSET.TIMESTAMP, s.timestamp, true);
      v.setUint16(OFFSET.DATA_TYPE, DATA_TYPE.CIF_I, true);
      v.setUint16(OFFSET.FRAME_NO, s.outFrame, true);
      v.setUint32(OFFSET.FRAME_LEN, jpeg.length, true);
      v.setUint16(OFFSET.TOTAL_PACKETS, total, true);
      v.setUint16(OFFSET.PACKET_INDEX, i + 1, true);
      v.setUint16(OFFSET.DATA_LEN, payload.length, true);
      v.setUint16(OFFSET.PACK_LEN, CHUNK_SIZE, true);
      out.set(payload, LENGTH.MEDIA_SHORT);
      for (const k of to) k.send(out);
    }
    this.#o.metrics.inc("transcode_frames_total");
  }

  #armIdle(s: Session): void {
    const idle = this.#o.idleMs ?? 3000;
    s.timer = this.#o.clock.setTimeout(() => {
      s.timer = undefined;
      if (this.#sessions.get(s.callId) !== s) return;
      if (this.#o.clock.now() - s.lastInput >= idle) void this.#stop(s, "no door video");
      else this.#armIdle(s);
    }, idle);
  }

  async #stop(s: Session, why: string): Promise<void> {
    if (this.#sessions.get(s.callId) === s) {
      this.#sessions.delete(s.callId);
      this.#o.logger.info("door video conversion stopped", { callId: s.callId, why });
    }
    if (s.timer !== undefined) this.#o.clock.clearTimeout(s.timer);
    s.timer = undefined;
    await s.proc.stop();
    await s.done;
  }

  /** Stops every converter and waits for their processes. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#sessions.values()].map((s) => this.#stop(s, "shutdown")));
  }
}

function indexOf(b: Uint8Array, x: number, y: number, from: number): number {
  for (let i = Math.max(0, from); i + 1 < b.length; i++) {
    if (b[i] === x && b[i + 1] === y) return i;
  }
  return -1;
}
