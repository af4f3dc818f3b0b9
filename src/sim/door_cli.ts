/**
 * `intercom-gateway sim door`: a simulated door station calling a room through the gateway, with
 * a readable event log for the person commissioning a building (or JSON lines with `--json`).
 *
 * Exit code: 0 when every call completed as scripted (answered, then ended by the gateway, or
 * hung up by `--hangup-after` with the CALLEND acknowledged), 1 otherwise, 2 on a bad flag.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { eprintln, println } from "../print.ts";
import { openUdpPort } from "../net/udp.ts";
import { isMagic, parseIp, type PayloadOffset } from "../protocol/mod.ts";
import {
  DOOR_SIM_DEFAULTS,
  DOOR_SIM_END,
  DoorSim,
  type DoorSimEvent,
  type DoorSimOptions,
  type DoorSimSummary,
  DROP_REASON,
  roomAddressFor,
} from "./door_sim.ts";
import type { G711Codec } from "./g711.ts";

/** Where the command writes (stdout and stderr lines). */
export interface DoorCliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** The simulator options the flags set (everything but the socket). */
export type DoorCliSimOptions = Omit<DoorSimOptions, "socket" | "clock" | "onEvent" | "video"> & {
  ip: string;
  port: number;
};

/** Result of {@linkcode parseDoorSimArgs}. */
export type DoorCliArgs =
  | {
    readonly kind: "ok";
    readonly sim: DoorCliSimOptions;
    readonly calls: number;
    readonly json: boolean;
    readonly pauseS: number;
  }
  | { readonly kind: "help" }
  | { readonly kind: "error"; readonly message: string };

/** Usage text of `sim door`. */
export const DOOR_SIM_USAGE = `Usage: intercom-gateway sim door [flags]

Simulates a door station: resolves the room by multicast (NS), calls the IP that answered,
sends test-card video while ringing, answers the gateway's keep-alive, talks (400 Hz tone)
after CALLSTART, opens the lock on REMOTEOPENLOCK, and logs every step.

  --address M00010100      door address
  --ip 127.0.0.2           the door's own IPv4 (binds ip:port)
  --room 0809              room to call: 4-digit room in the door's building/unit, or S00010108090
  --group 238.9.9.1        name-resolution multicast group
  --port 8302              protocol port (door and gateway)
  --magic XXXCID           packet magic (some OEM builds: QIUSHI)
  --payload-offset 77      media header form: 77 or 86
  --codec ulaw             audio: ulaw or alaw
  --flag04                 set flag 0x04 on the CALLSTART reply ("8126 door")
  --exact-lengths          drop gateway packets whose length is not exactly 57/61/62
  --keepalive-window 6000  ms without CALLCONFIRM before the door hangs up (strict build: 2400)
  --ring-timeout 30        s of ringing without CALLSTART before the door hangs up
  --talk-timeout 120       s of talk before the door hangs up
  --hangup-after S         the door hangs up S seconds after CALLANSWER (scripted end)
  --fps 15                 video frame rate, 10–25
  --reply-to-8302          send replies to port 8302 of the peer (older firmwares)
  --unlock-needs-talk      acknowledge REMOTEOPENLOCK but open only after CALLSTART
  --unlock-needs-talk-silent  no reply at all to REMOTEOPENLOCK before CALLSTART (common build)
  --door-confirms MS       the door also sends its own CALLCONFIRM every MS ms (default off)
  --calls 1                place N calls, one after the other
  --pause 2                seconds between calls
  --json                   print events as JSON lines
  -h, --help               this text

Exit code: 0 when every call completed as scripted, 1 otherwise, 2 on a bad flag.`;

const STRING_FLAGS = [
  "address",
  "ip",
  "room",
  "group",
  "port",
  "magic",
  "payload-offset",
  "codec",
  "keepalive-window",
  "ring-timeout",
  "talk-timeout",
  "hangup-after",
  "fps",
  "door-confirms",
  "calls",
  "pause",
] as const;

const BOOLEAN_FLAGS = [
  "flag04",
  "exact-lengths",
  "reply-to-8302",
  "unlock-needs-talk",
  "unlock-needs-talk-silent",
  "json",
  "help",
] as const;

class FlagError extends Error {}

function num(
  values: Record<string, unknown>,
  flag: string,
  min: number,
  max: number,
  integer = true,
): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (String(raw).trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new FlagError(
      `Cannot use --${flag} "${raw}": expected ${integer ? "an integer" : "a number"}`,
    );
  }
  if (n < min || n > max) throw new FlagError(`Cannot use --${flag} ${n}: expected ${min}–${max}`);
  return n;
}

/** Parses the flags of `sim door`; errors name the flag. */
export function parseDoorSimArgs(args: string[]): DoorCliArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries([
      ...STRING_FLAGS.map((f) => [f, { type: "string" as const }]),
      ...BOOLEAN_FLAGS.map((f) => [f, { type: "boolean" as const }]),
    ]);
    options["help"] = { type: "boolean", short: "h" };
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (e) {
    const message = e instanceof Error ? e.message.split(". ")[0]! : String(e);
    return { kind: "error", message: `Cannot run sim door: ${message} (try --help)` };
  }
  if (values.help) return { kind: "help" };
  try {
    const d = DOOR_SIM_DEFAULTS;
    const str = (flag: string) => values[flag] as string | undefined;
    const ip = str("ip") ?? d.ip;
    if (!parseIp(ip)) throw new FlagError(`Cannot use --ip "${ip}": expected an IPv4 address`);
    const group = str("group") ?? d.group;
    if (!parseIp(group)) throw new FlagError(`Cannot use --group "${group}": expected an IPv4`);
    const address = str("address") ?? d.address;
    if (!/^M\d{7,19}$/.test(address)) {
      throw new FlagError(`Cannot use --address "${address}": expected M + digits (M00010100)`);
    }
    const room = str("room") ?? d.room;
    try {
      roomAddressFor(address, room);
    } catch (e) {
      throw new FlagError(`Cannot use --room: ${(e as Error).message}`);
    }
    const magic = str("magic") ?? d.magic;
    if (!isMagic(magic)) {
      throw new FlagError(`Cannot use --magic "${magic}": expected 6 ASCII characters`);
    }
    const payloadOffset = num(values, "payload-offset", 77, 86) ?? d.payloadOffset;
    if (payloadOffset !== 77 && payloadOffset !== 86) {
      throw new FlagError(`Cannot use --payload-offset ${payloadOffset}: expected 77 or 86`);
    }
    const codec = str("codec") ?? d.codec;
    if (codec !== "ulaw" && codec !== "alaw") {
      throw new FlagError(`Cannot use --codec "${codec}": expected ulaw or alaw`);
    }
    const sim: DoorCliSimOptions = {
      address,
      ip,
      room,
      group,
      magic,
      port: num(values, "port", 1, 65535) ?? d.port,
      payloadOffset: payloadOffset as PayloadOffset,
      codec: codec as G711Codec,
      flag04: values.flag04 === true,
      exactLengths: values["exact-lengths"] === true,
      keepaliveWindowMs: num(values, "keepalive-window", 100, 600_000) ?? d.keepaliveWindowMs,
      ringTimeoutS: num(values, "ring-timeout", 1, 3600, false) ?? d.ringTimeoutS,
      talkTimeoutS: num(values, "talk-timeout", 1, 36_000, false) ?? d.talkTimeoutS,
      hangupAfterS: num(values, "hangup-after", 0, 36_000, false),
      fps: num(values, "fps", 10, 25) ?? d.fps,
      replyToPort8302: values["reply-to-8302"] === true,
      unlockNeedsTalk: values["unlock-needs-talk-silent"] === true
        ? "silent"
        : values["unlock-needs-talk"] === true,
      confirmIntervalMs: num(values, "door-confirms", 100, 60_000) ?? 0,
    };
    return {
      kind: "ok",
      sim,
      calls: num(values, "calls", 1, 100_000) ?? 1,
      pauseS: num(values, "pause", 0, 3600, false) ?? 2,
      json: values.json === true,
    };
  } catch (e) {
    if (e instanceof FlagError) return { kind: "error", message: e.message };
    throw e;
  }
}

function clock(): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${
    p(d.getMilliseconds(), 3)
  }`;
}

/** What {@linkcode formatEvent} needs to know about the simulated door. */
export interface EventContext {
  readonly group: string;
  readonly port: number;
  readonly fps: number;
  readonly keepaliveWindowMs: number;
  readonly lockGuardMs: number;
}

/**
 * One log line (without the time) for a person commissioning a building, or `undefined` for
 * events that only repeat (later confirms, CALL retries are kept: they tell of a slow gateway).
 */
export function formatEvent(e: DoorSimEvent, ctx: EventContext): string | undefined {
  switch (e.type) {
    case "ns_sent":
      return e.attempt === 1
        ? `NS     who has ${e.target}? (multicast ${ctx.group}:${ctx.port})`
        : `NS     who has ${e.target}? no answer yet, asking again (${e.attempt}/6)`;
    case "ns_resolved":
      return `NS     → ${e.ip} answered${e.from !== e.ip ? ` (reply sent from ${e.from})` : ""}`;
    case "ns_failed":
      return `NS     no answer after ${e.sends} asks: is a phone of this room online?`;
    case "call_sent":
      return e.attempt === 1
        ? `CALL   calling ${e.ip}`
        : `CALL   no answer yet, CALL resent (${e.attempt}/6)`;
    case "call_failed":
      return `CALL   no CALLANSWER after ${e.sends} CALLs`;
    case "answered":
      return `CALL   answered, ringing (video ${ctx.fps} fps)`;
    case "busy":
      return `CALL   line busy (LINEUSE from ${e.ip})`;
    case "video_started":
      return `VIDEO  sending to ${e.to}: ${e.frameBytes}-byte JPEG frames, ${e.packets} packets each`;
    case "confirm_received":
      return e.count === 1
        ? `KEEP   first CALLCONFIRM from the gateway (door window ${ctx.keepaliveWindowMs} ms)`
        : undefined;
    case "talk":
      return `TALK   talk started (audio ${
        e.codec === "ulaw" ? "μ-law" : "A-law"
      }, payload at ${e.payloadOffset}${
        e.replyFlags ? `, reply flag 0x${e.replyFlags.toString(16).padStart(2, "0")}` : ""
      }), media to ${e.mediaIp}`;
    case "audio_received":
      return e.count === 1
        ? `AUDIO  first audio from the gateway played`
        : `AUDIO  ${e.count} packets of gateway audio played`;
    case "lock_opened":
      return `LOCK   lock opened`;
    case "lock_ignored":
      return e.reason === "needs_talk"
        ? `LOCK   unlock acknowledged, not opened: this door opens only after talk started`
        : e.reason === "needs_talk_silent"
        ? `LOCK   unlock not answered: this door ignores unlock until talk started`
        : `LOCK   unlock acknowledged, not opened: re-trigger guard (${ctx.lockGuardMs / 1000} s)`;
    case "iframe_forced":
      return `VIDEO  I-frame requested by the gateway`;
    case "dropped":
      return `DROP   ${e.what} (${e.length} B) from ${e.from}: ${DROP_REASON[e.reason]}`;
    case "hangup_sent":
      return `END    hanging up (CALLEND): ${DOOR_SIM_END[e.reason]}`;
    case "ended":
      return `END    hung up: ${DOOR_SIM_END[e.reason]}`;
  }
}

/** The closing line of one call. */
export function formatSummary(s: DoorSimSummary): string {
  const c = s.counters;
  return `SUM    call ${s.completed ? "completed" : "NOT completed"} in ${
    (s.durationMs / 1000).toFixed(1)
  } s: video ${c.videoFrames} frames (${c.videoPackets} packets), audio sent ${c.audioSent}` +
    ` / played ${c.audioPlayed} (stale ${c.audioOutOfOrder}), confirms ${c.confirmsReceived},` +
    ` locks ${s.locksOpened}, dropped ${c.dropped}`;
}

/** Runs `sim door`; resolves to the exit code. */
export async function doorSimCommand(
  args: string[],
  io: DoorCliIo = { out: println, err: eprintln },
): Promise<number> {
  const parsed = parseDoorSimArgs(args);
  if (parsed.kind === "help") {
    io.out(DOOR_SIM_USAGE);
    return 0;
  }
  if (parsed.kind === "error") {
    io.err(parsed.message);
    return 2;
  }
  const { sim: opts, calls, json } = parsed;
  let interrupts = 0;
  let current: DoorSim | undefined;
  const onSigint = () => {
    interrupts++;
    if (!current) return;
    if (interrupts === 1) void current.hangUp();
    else void current.powerOff();
  };
  let listening = false;
  try {
    Deno.addSignalListener("SIGINT", onSigint);
    listening = true;
  } catch {
    // no signals here (e.g. a test without permission): Ctrl-C just ends the process
  }
  let allCompleted = true;
  try {
    for (let n = 1; n <= calls && interrupts === 0; n++) {
      if (n > 1) await new Promise((r) => setTimeout(r, parsed.pauseS * 1000));
      if (interrupts > 0) break;
      let socket;
      try {
        socket = await openUdpPort({ hostname: opts.ip, port: opts.port });
      } catch (e) {
        io.err(`Cannot bind ${opts.ip}:${opts.port}: ${e instanceof Error ? e.message : e}`);
        return 1;
      }
      const seenDrops = new Set<string>();
      const sim: DoorSim = new DoorSim({
        ...opts,
        socket,
        onEvent: (e) => {
          if (json) {
            io.out(JSON.stringify({ call: n, wall: new Date().toISOString(), ...e }));
            return;
          }
          if (e.type === "dropped") {
            const key = `${e.reason}|${e.what}`;
            if (seenDrops.has(key)) return;
            seenDrops.add(key);
          }
          const line = formatEvent(e, { ...sim.options });
          if (line) io.out(`${clock()}  ${line}`);
        },
      });
      current = sim;
      if (!json) {
        io.out(
          `${clock()}  DOOR   ${sim.address} at ${sim.ip}:${opts.port} calling ${sim.room}` +
            (calls > 1 ? ` (call ${n}/${calls})` : ""),
        );
      }
      const summary = await sim.start();
      current = undefined;
      if (json) io.out(JSON.stringify({ call: n, type: "summary", ...summary }));
      else io.out(`${clock()}  ${formatSummary(summary)}`);
      if (!summary.completed) allCompleted = false;
    }
  } finally {
    if (listening) Deno.removeSignalListener("SIGINT", onSigint);
  }
  return allCompleted && interrupts === 0 ? 0 : 1;
}
