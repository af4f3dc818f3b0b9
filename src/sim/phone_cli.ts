/**
 * `intercom-gateway sim phone [flags]`: a scripted phone for installers. Logs in, waits for
 * door calls, answers them per the flags and prints a readable event log; exits 0 once the
 * scripted calls completed without problems.
 *
 * @module
 */

import { eprintln, println } from "../print.ts";
import {
  ANSWER_MODE,
  type AnswerMode,
  type CallSummary,
  type PhoneEvent,
  type PhoneMediaStats,
  PhoneSim,
  type PhoneSimOptions,
  type VideoMode,
} from "./phone_sim.ts";

/** Where the command writes (injected by tests). */
export interface CliOutput {
  println(line: string): void;
  eprintln(line: string): void;
}

const USAGE = `sim phone: a scripted phone (phone-protocol.md) for testing a gateway

Usage: intercom-gateway sim phone --uid UID --token TOKEN --room Y00010108090 [flags]

  --url URL            gateway signalling URL (default ws://127.0.0.1:8080/phone)
  --ca FILE            PEM certificate to trust for wss:// (the CA that signed the gateway's
                       certificate, or the gateway's self-signed certificate itself)
  --uid UID            the phone's uid (required)
  --token TOKEN        the secret issued when the uid was bound (required)
  --room ADDRESS       phone-side room address, letter + 11 digits (required)
  --community NAME     community name (default "")
  --answer MODE        ring (never answer) | callok (call ok only) | talk (default talk)
  --talk-after S       seconds from call ok to talk (default 1)
  --talk-retries N     talk again, up to N times, when the door did not answer (default 0)
  --unlock-after S     unlock S seconds after talk begin (or after the ring without talk)
  --hangup-after S     hang up S seconds after talk begin (or after the ring without talk)
  --decline-after S    hang up S seconds after the ring unless talking
  --video MODE         udp | ws | none (default udp)
  --audio              send a 1 kHz G.711 tone to the door after talk begin
  --media-host HOST    gateway media host (default: the URL's host)
  --media-bind HOST    local address of the UDP media socket (default 0.0.0.0)
  --heartbeat-ms MS    heartbeat period (default: the gateway's heartbeatInterval)
  --stop-heartbeats W  never | login | call | talk: when the phone goes silent (default never)
  --calls N            exit after N calls (default 1)
  --timeout S          give up after S seconds (default 0 = wait forever)
  --json               one JSON event per line instead of the readable log
  --verbose            also show heartbeats and media keep-alives
  --help               this text

Exit status: 0 when the scripted calls completed, 1 when one failed or the connection was lost,
2 for bad flags, 130 on Ctrl-C.`;

const BOOLEAN_FLAGS = new Set(["audio", "json", "verbose", "help"]);
const VALUE_FLAGS = new Set([
  "url",
  "ca",
  "uid",
  "token",
  "room",
  "community",
  "answer",
  "talk-after",
  "talk-retries",
  "unlock-after",
  "hangup-after",
  "decline-after",
  "video",
  "media-host",
  "media-bind",
  "heartbeat-ms",
  "stop-heartbeats",
  "calls",
  "timeout",
]);

/** Parsed flags of the command. */
export interface PhoneCliConfig {
  options: PhoneSimOptions;
  /** `--ca`: read by the command into `options.caCerts`. */
  caFile: string | undefined;
  calls: number;
  timeoutS: number;
  json: boolean;
  verbose: boolean;
}

/** A flag error: the message names the flag. */
export class FlagError extends RangeError {
  override name = "FlagError";
}

function seconds(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new FlagError(`Cannot use --${flag} "${v}": expected a number of seconds ≥ 0`);
  }
  return n;
}

function oneOf<T extends string>(flag: string, v: string, values: readonly T[]): T {
  if (!(values as readonly string[]).includes(v)) {
    throw new FlagError(`Cannot use --${flag} "${v}": expected ${values.join(", ")}`);
  }
  return v as T;
}

/** Parses the flags; throws {@linkcode FlagError} naming the bad flag. */
export function parsePhoneCliArgs(args: readonly string[]): PhoneCliConfig | "help" {
  const flags = new Map<string, string>();
  const bools = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) {
      throw new FlagError(`Cannot use argument "${arg}": expected a --flag`);
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (BOOLEAN_FLAGS.has(name)) {
      if (eq !== -1) throw new FlagError(`Cannot use --${name} with a value: it is a switch`);
      bools.add(name);
    } else if (VALUE_FLAGS.has(name)) {
      const value = eq === -1 ? args[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new FlagError(`Cannot use --${name}: missing its value`);
      flags.set(name, value);
    } else {
      throw new FlagError(`Cannot use flag --${name}: unknown flag (try --help)`);
    }
  }
  if (bools.has("help")) return "help";
  for (const required of ["uid", "token", "room"]) {
    if (!flags.get(required)) throw new FlagError(`Cannot start: --${required} is required`);
  }
  const room = flags.get("room")!;
  if (!/^[A-Za-z]\d{11}$/.test(room)) {
    throw new FlagError(`Cannot use --room "${room}": expected a letter and 11 digits`);
  }
  const get = (name: string) => flags.get(name);
  const num = (name: string) => {
    const v = get(name);
    return v === undefined ? undefined : seconds(name, v);
  };
  const answer: AnswerMode = oneOf(
    "answer",
    get("answer") ?? ANSWER_MODE.TALK,
    Object.values(ANSWER_MODE),
  );
  const video: VideoMode = oneOf("video", get("video") ?? "udp", ["udp", "ws", "none"] as const);
  const audio = bools.has("audio");
  if (audio && video === "none") {
    throw new FlagError('Cannot use --audio with --video none: audio needs "udp" or "ws"');
  }
  const stop = oneOf(
    "stop-heartbeats",
    get("stop-heartbeats") ?? "never",
    ["never", "login", "call", "talk"] as const,
  );
  const callsText = get("calls") ?? "1";
  const calls = Number(callsText);
  if (!/^\d+$/.test(callsText) || calls < 1) {
    throw new FlagError(`Cannot use --calls "${callsText}": expected a whole number ≥ 1`);
  }
  const retriesText = get("talk-retries") ?? "0";
  const talkRetries = Number(retriesText);
  if (!/^\d+$/.test(retriesText) || talkRetries > 10) {
    throw new FlagError(`Cannot use --talk-retries "${retriesText}": expected a whole number 0–10`);
  }
  const heartbeatText = get("heartbeat-ms");
  const heartbeatMs = heartbeatText === undefined ? undefined : Number(heartbeatText);
  if (heartbeatMs !== undefined && !(Number.isFinite(heartbeatMs) && heartbeatMs > 0)) {
    throw new FlagError(`Cannot use --heartbeat-ms "${heartbeatText}": expected milliseconds > 0`);
  }
  const url = get("url") ?? "ws://127.0.0.1:8080/phone";
  if (!/^wss?:\/\/[^/]/.test(url)) {
    throw new FlagError(`Cannot use --url "${url}": expected ws://host:port/phone or wss://…`);
  }
  const caFile = get("ca");
  if (caFile !== undefined && !url.startsWith("wss://")) {
    throw new FlagError(`Cannot use --ca with --url "${url}": --ca is for wss:// URLs`);
  }
  const options: PhoneSimOptions = {
    url,
    uid: get("uid")!,
    token: get("token")!,
    roomAddress: room,
    community: get("community") ?? "",
    script: {
      answer,
      talkAfterS: num("talk-after") ?? 1,
      talkRetries,
      unlockAfterS: num("unlock-after"),
      hangupAfterS: num("hangup-after"),
      declineAfterS: num("decline-after"),
      enableVideo: video,
      sendAudio: audio,
      stopHeartbeats: stop === "never"
        ? false
        : stop === "login"
        ? true
        : stop === "call"
        ? "on_call"
        : "on_talk",
    },
  };
  if (heartbeatMs !== undefined) options.heartbeatMs = heartbeatMs;
  const mediaHost = get("media-host");
  if (mediaHost !== undefined) options.mediaHost = mediaHost;
  const mediaBind = get("media-bind");
  if (mediaBind !== undefined) options.mediaBindHost = mediaBind;
  return {
    options,
    caFile,
    calls,
    timeoutS: num("timeout") ?? 0,
    json: bools.has("json"),
    verbose: bools.has("verbose"),
  };
}

function clockText(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${
    p(d.getMilliseconds(), 3)
  }`;
}

function mediaText(m: PhoneMediaStats): string {
  const kb = (m.videoBytes / 1024).toFixed(0);
  return `video: ${m.videoPackets} packets (${kb} KiB), audio in ${m.audioIn} / out ${m.audioOut}`;
}

const SECRET = new Set(["token", "mediaKey"]);

function redact(message: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(message).map(([k, v]) => [k, SECRET.has(k) ? "[redacted]" : v]),
  );
}

/** One readable line for an event, or undefined to hide it. */
export function formatPhoneEvent(e: PhoneEvent, verbose = false): string | undefined {
  const t = clockText(e.time);
  switch (e.kind) {
    case "open":
      return `${t}  connected`;
    case "closed":
      return `${t}  connection closed (${e.code}${e.reason ? ` ${e.reason}` : ""})`;
    case "note":
      return `${t}  ${e.text}`;
    case "invalid":
      return `${t}  ! the gateway sent an invalid message (${e.via}): ${e.error}`;
    case "call_end":
      return callEndText(t, e.call);
    case "out": {
      const m = e.message;
      if (e.order === "heartbeat" && !verbose) return undefined;
      if (e.via === "udp") {
        return verbose || !e.repeat
          ? `${t}  → media control datagram (enable_video, callId ${m.callId})`
          : undefined;
      }
      if (e.order === "login") return `${t}  → login as ${m.uid} for room ${m.roomAddress}`;
      if (e.order === "enable_video") return `${t}  → enable_video (${m.transport ?? "udp"})`;
      if (e.order === "(raw)") return `${t}  → ${JSON.stringify(m.raw)}`;
      return `${t}  → ${e.order}`;
    }
    case "in": {
      const m = e.message;
      switch (m.order) {
        case "heartbeat ok":
          return verbose ? `${t}  ← heartbeat ok` : undefined;
        case "login ok":
          return `${t}  ← login ok (heartbeat ${m.heartbeatInterval} s, media port ${m.mediaPort})`;
        case "call":
          return `${t}  ← call from door ${m.doorAddress} (callId ${m.callId})`;
        case "over":
          return `${t}  ← over (${m.reason})`;
        case "unlock fail":
          return `${t}  ← unlock fail (${m.reason})`;
        case "error":
          return `${t}  ← error ${m.code}${m.ref ? ` (${m.ref})` : ""}: ${m.message}`;
        case "enable_video ok":
          return `${t}  ← enable_video ok (${e.via})`;
        default:
          return `${t}  ← ${m.order}`;
      }
    }
  }
}

function callEndText(t: string, c: CallSummary): string {
  const why = c.endedBy === "gateway"
    ? `by the gateway (${c.overReason ?? "over"})`
    : c.endedBy === "phone"
    ? "by the phone"
    : `(${c.endedBy})`;
  const unlock = c.unlocked === true ? ", unlocked" : c.unlockRequested ? ", unlock failed" : "";
  const secs = c.endedAt !== undefined ? ((c.endedAt - c.startedAt) / 1000).toFixed(1) : "?";
  const lines = [
    `${t}  call ${c.callId} ended ${why} after ${secs} s${c.talked ? ", talked" : ""}${unlock}`,
    `${" ".repeat(t.length)}  ${mediaText(c.media)}`,
  ];
  for (const p of c.problems) lines.push(`${" ".repeat(t.length)}  problem: ${p}`);
  return lines.join("\n");
}

/** The PEM text of `--ca FILE`, or a one-line error naming the flag. */
async function readCa(
  file: string,
): Promise<{ ok: true; pem: string } | { ok: false; error: string }> {
  let pem: string;
  try {
    pem = await Deno.readTextFile(file);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Error
      ? e.message
      : String(e);
    return { ok: false, error: `Cannot read ${file} (--ca): ${why}` };
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    return {
      ok: false,
      error: `Cannot use ${file} (--ca): no PEM certificate in it (BEGIN CERTIFICATE)`,
    };
  }
  return { ok: true, pem };
}

/**
 * What to do about a TLS error when connecting (empty for other errors): the runtime's
 * certificate error is exact but terse.
 */
export function certificateHint(message: string, caFile: string | undefined): string {
  if (/UnknownIssuer/.test(message)) {
    return caFile === undefined
      ? "; this machine does not trust the gateway's certificate: pass the CA that signed it, " +
        "or the self-signed certificate itself, with --ca FILE"
      : `; ${caFile} (--ca) did not sign the gateway's certificate`;
  }
  if (/CaUsedAsEndEntity/.test(message)) {
    return "; the gateway's certificate is a CA certificate (what openssl req -x509 makes by " +
      "default): make it with -addext basicConstraints=critical,CA:FALSE";
  }
  if (/NotValidForName|not valid for name/i.test(message)) {
    return "; the certificate does not name the --url host: connect by a name or IP it lists";
  }
  if (/Expired|NotValidYet/.test(message)) return "; the certificate is out of its validity";
  return "";
}

/**
 * Runs the phone simulator until `--calls` calls completed; resolves to the exit code.
 * Output goes through `out` (`src/print.ts` println/eprintln by default).
 */
export async function phoneSimCommand(
  args: string[],
  out: CliOutput = { println, eprintln },
): Promise<number> {
  let config: PhoneCliConfig | "help";
  try {
    config = parsePhoneCliArgs(args);
  } catch (e) {
    if (e instanceof FlagError) {
      out.eprintln(e.message);
      return 2;
    }
    throw e;
  }
  if (config === "help") {
    out.println(USAGE);
    return 0;
  }
  const { calls, json, verbose, timeoutS } = config;
  if (config.caFile !== undefined) {
    const ca = await readCa(config.caFile);
    if (!ca.ok) {
      out.eprintln(ca.error);
      return 2;
    }
    config.options.caCerts = [ca.pem];
  }
  let closing = false;
  const print = (e: PhoneEvent) => {
    if (json) {
      const shown = e.kind === "in" || e.kind === "out"
        ? { ...e, message: redact(e.message as Record<string, unknown>) }
        : e.kind === "call_end"
        ? { ...e, call: { ...e.call, mediaKey: "[redacted]" } }
        : e;
      out.println(JSON.stringify(shown));
      return;
    }
    const line = formatPhoneEvent(e, verbose);
    if (line !== undefined) out.println(line);
  };

  let opened = false;
  let finish!: (code: number) => void;
  const done = new Promise<number>((r) => finish = r);
  const sim = new PhoneSim({
    ...config.options,
    onEvent: (e) => {
      print(e);
      if (e.kind === "call_end") {
        if (e.call.problems.length > 0) finish(1);
        else if (sim.completedCalls >= calls) finish(0);
      } else if (e.kind === "open") {
        opened = true;
      } else if (e.kind === "closed" && !closing && opened) {
        out.eprintln("The gateway closed the connection");
        finish(1);
      } else if (e.kind === "in" && e.message.order === "error" && !sim.loggedIn) {
        finish(1);
      }
    },
  });

  const onSignal = () => finish(130);
  let signals = false;
  try {
    Deno.addSignalListener("SIGINT", onSignal);
    signals = true;
  } catch {
    // no signal support (e.g. some test sandboxes): Ctrl-C just kills the process
  }
  const timer = timeoutS > 0
    ? setTimeout(() => {
      out.eprintln(`Timed out after ${timeoutS} s (${sim.completedCalls}/${calls} calls)`);
      finish(1);
    }, timeoutS * 1000)
    : undefined;
  const progress = setInterval(() => {
    const c = sim.call;
    if (!json && c && c.phase !== "ended") {
      out.println(`${clockText(Date.now())}  ${mediaText(c.media)}`);
    }
  }, 5000);

  try {
    if (!json) out.println(`${clockText(Date.now())}  connecting to ${config.options.url}`);
    try {
      await sim.start();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      out.eprintln(message + certificateHint(message, config.caFile));
      return 1;
    }
    const code = await done;
    if (!json && code === 0) {
      out.println(`${clockText(Date.now())}  done: ${sim.completedCalls} call(s) completed`);
    }
    return code;
  } finally {
    closing = true;
    clearInterval(progress);
    if (timer !== undefined) clearTimeout(timer);
    if (signals) Deno.removeSignalListener("SIGINT", onSignal);
    await sim.close();
  }
}
