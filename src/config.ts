/**
 * Gateway configuration: flags with environment-variable equivalents, validated into a frozen
 * {@linkcode Config}. Pure: the caller passes the argument list and the environment.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parseIp } from "./protocol/address.ts";
import { DEFAULT_MAGIC, DEFAULTS, isMagic } from "./protocol/constants.ts";
import { LOG_LEVEL, type LogFormat, type LogLevel } from "./log.ts";
import { parseCidr } from "./http/access.ts";

/** Validated gateway settings. */
export interface Config {
  /** The gateway's IPv4 towards doors; `undefined`: per door, the local address on its subnet. */
  readonly lanIp: string | undefined;
  readonly doorPort: number;
  /** An IPv4 multicast group (224.0.0.0-239.255.255.255). */
  readonly multicastGroup: string;
  /**
   * The interface to join the group on, as given: its local IPv4 address or its name (`eth1`);
   * `undefined`: `lanIp`'s interface, else every IPv4 interface that is up (`multicastJoins`). The
   * serve command resolves a name to the interface's IPv4 (`resolveInterface` in
   * `net/interfaces.ts`) before the gateway starts.
   */
  readonly multicastInterface: string | undefined;
  readonly magic: string;
  readonly data: string;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  readonly httpHost: string;
  readonly httpPort: number;
  readonly mediaPort: number;
  /** Seconds without a heartbeat after which a phone is offline. */
  readonly heartbeatTimeout: number;
  /** Seconds a call may ring. */
  readonly ringTimeout: number;
  /** Seconds a call may talk. */
  readonly talkTimeout: number;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  /**
   * TCP port of HTTPS with the gateway's own certificate (local CA in `<data>/tls/`) when no
   * `--tls-cert` is given; `undefined`: off. Port 0 (tests only) picks a free port.
   */
  readonly httpsPort: number | undefined;
  /** The only local address the console (`/admin`, `/api`) answers on; `undefined`: all. */
  readonly adminHost: string | undefined;
  /**
   * Door addresses (`ADDR` or `ADDR=IP`, each checked to be a door address) accepted; empty:
   * doors are learned from their first answered call (CALLANSWER and a keep-alive reply).
   */
  readonly doorAllowlist: readonly string[];
  /**
   * Seconds after which a learned door that speaks from a new IP is re-learned, counted from the
   * last datagram of its old IP; 0: never.
   */
  readonly doorRelearnAfter: number;
  /** IPv4 addresses and CIDRs (besides loopback) that may read `/metrics`. */
  readonly metricsAllow: readonly string[];
  /** A bearer token that may read `/metrics` from anywhere; `undefined`: none. */
  readonly metricsToken: string | undefined;
  /**
   * Door video a web phone cannot decode (MPEG-4 Part 2) converted to JPEG frames with ffmpeg:
   * `auto` when the gateway may run it (`--allow-run=ffmpeg`) and it is installed, `off` never.
   */
  readonly transcode: "auto" | "off";
  /**
   * Who forwards the hot media: `deno` (the gateway's own sockets) or `native` (the optional
   * engine, `native/media_engine.c`, loaded from `mediaEngineLib`; needs `--allow-ffi`).
   */
  readonly mediaEngine: "deno" | "native";
  /** The directory holding `libintercom_media.<arch>.so` for `--media-engine native`. */
  readonly mediaEngineLib: string;
  /**
   * An `http(s)://` URL the gateway POSTs signed JSON to for every call offered to a room (`ring`)
   * and its end (`ring ended`), so native apps can wake sleeping phones; `undefined`: none.
   */
  readonly pushWebhook: string | undefined;
  /** The HMAC-SHA256 key of the webhook's `X-Intercom-Signature` (required with the webhook). */
  readonly pushWebhookSecret: string | undefined;
  /**
   * Seconds a call to a room with no phone online, but reachable by push, waits for a phone to
   * wake (never beyond `ringTimeout`).
   */
  readonly wakeWindow: number;
  /**
   * The VAPID `sub` claim of Web Push requests: how the push services reach the operator
   * (`mailto:` or `https:` URL).
   */
  readonly pushSubject: string;
  /**
   * Accept Web Push endpoints over `http:` and on addresses or `localhost` (tests, a push
   * service on the LAN); off: only `https:` endpoints with a DNS name.
   */
  readonly pushAllowHttp: boolean;
  /**
   * The gateway box's own NATS leaf node (`nats://127.0.0.1:4222`) joining the community
   * (several gateways: shared bindings, records, presence); `undefined`: this box alone, on its
   * embedded Deno KV.
   */
  readonly cluster: string | undefined;
  /**
   * This gateway's name in the community (letters, digits, `-`, `_`; at most 32): its NATS
   * subjects and JetStream domain (`rec.<id>.>`). Required with `cluster`.
   */
  readonly gatewayId: string | undefined;
}

/** The data directory when neither `--data` nor `INTERCOM_DATA` is given. */
export const DEFAULT_DATA = "./data";

/**
 * `INTERCOM_*` variables that the test and CI tools read, not the gateway: no warning for them.
 */
export const TOOL_VARIABLES: readonly string[] = [
  "INTERCOM_DENO",
  "INTERCOM_IN_NETNS",
  "INTERCOM_TEST_FIGURES",
  "INTERCOM_TEST_KEEP",
  "INTERCOM_TEST_LOG",
  "INTERCOM_TEST_SCALE",
  "INTERCOM_TEST_TIMEOUT_S",
];

/** How an option's text is checked and converted. */
type Kind =
  | "ip"
  | "multicast"
  | "interface"
  | "port"
  | "port_or_off"
  | "string"
  | "seconds"
  | "seconds_or_never"
  | "level"
  | "format"
  | "magic"
  | "allowlist"
  | "cidrs"
  | "token"
  | "url"
  | "transcode"
  | "engine"
  | "contact"
  | "onoff"
  | "nats_url"
  | "gateway_id";

/** One option: flag, environment variable, default, kind, help. */
export interface OptionSpec {
  readonly flag: string;
  readonly env: string;
  readonly key: keyof Config;
  readonly kind: Kind;
  readonly default: string | undefined;
  readonly help: string;
}

/** The option table (the README's configuration table mirrors it). */
export const OPTIONS: readonly OptionSpec[] = [
  {
    flag: "lan-ip",
    env: "INTERCOM_LAN_IP",
    key: "lanIp",
    kind: "ip",
    default: undefined,
    help: "gateway IPv4 given to doors (default: per door, the local address on its subnet)",
  },
  {
    flag: "door-port",
    env: "INTERCOM_DOOR_PORT",
    key: "doorPort",
    kind: "port",
    default: String(DEFAULTS.DOOR_PORT),
    help: "UDP port of the door protocol (signalling and door media)",
  },
  {
    flag: "multicast-group",
    env: "INTERCOM_MULTICAST_GROUP",
    key: "multicastGroup",
    kind: "multicast",
    default: DEFAULTS.MULTICAST_GROUP,
    help: "name-resolution multicast group",
  },
  {
    flag: "multicast-interface",
    env: "INTERCOM_MULTICAST_INTERFACE",
    key: "multicastInterface",
    kind: "interface",
    default: undefined,
    help:
      "interface joining the group: its name (eth1) or IPv4 (default: --lan-ip's, else every IPv4 interface that is up)",
  },
  {
    flag: "magic",
    env: "INTERCOM_MAGIC",
    key: "magic",
    kind: "magic",
    default: DEFAULT_MAGIC,
    help: "packet magic, 6 ASCII characters (some OEM builds: QIUSHI)",
  },
  {
    flag: "data",
    env: "INTERCOM_DATA",
    key: "data",
    kind: "string",
    default: DEFAULT_DATA,
    help: "data directory (Deno KV: bindings, call records)",
  },
  {
    flag: "log-level",
    env: "INTERCOM_LOG_LEVEL",
    key: "logLevel",
    kind: "level",
    default: "info",
    help: "debug, info, warn or error",
  },
  {
    flag: "log-format",
    env: "INTERCOM_LOG_FORMAT",
    key: "logFormat",
    kind: "format",
    default: "json",
    help: "json (one object per line) or text",
  },
  {
    flag: "http-host",
    env: "INTERCOM_HTTP_HOST",
    key: "httpHost",
    kind: "ip",
    default: "0.0.0.0",
    help: "address of the phone WebSocket / HTTP listener",
  },
  {
    flag: "http-port",
    env: "INTERCOM_HTTP_PORT",
    key: "httpPort",
    kind: "port",
    default: "8080",
    help: "TCP port of GET /phone, /healthz, /metrics",
  },
  {
    flag: "media-port",
    env: "INTERCOM_MEDIA_PORT",
    key: "mediaPort",
    kind: "port",
    default: "8303",
    help: "UDP port of phone media",
  },
  {
    flag: "heartbeat-timeout",
    env: "INTERCOM_HEARTBEAT_TIMEOUT",
    key: "heartbeatTimeout",
    kind: "seconds",
    default: "6",
    help: "seconds without a heartbeat before a phone is offline",
  },
  {
    flag: "ring-timeout",
    env: "INTERCOM_RING_TIMEOUT",
    key: "ringTimeout",
    kind: "seconds",
    default: "30",
    help: "seconds a call may ring",
  },
  {
    flag: "talk-timeout",
    env: "INTERCOM_TALK_TIMEOUT",
    key: "talkTimeout",
    kind: "seconds",
    default: "180",
    help: "seconds a call may talk",
  },
  {
    flag: "tls-cert",
    env: "INTERCOM_TLS_CERT",
    key: "tlsCert",
    kind: "string",
    default: undefined,
    help: "PEM certificate: serve wss/https",
  },
  {
    flag: "tls-key",
    env: "INTERCOM_TLS_KEY",
    key: "tlsKey",
    kind: "string",
    default: undefined,
    help: "PEM private key for --tls-cert",
  },
  {
    flag: "https-port",
    env: "INTERCOM_HTTPS_PORT",
    key: "httpsPort",
    kind: "port_or_off",
    default: "8443",
    help:
      "TCP port of HTTPS with the gateway's own certificate (local CA in DATA/tls) when no --tls-cert is given; off: none",
  },
  {
    flag: "admin-host",
    env: "INTERCOM_ADMIN_HOST",
    key: "adminHost",
    kind: "ip",
    default: undefined,
    help:
      "the only local IPv4 the console (/admin, /api) answers on; other addresses get 404 (default: all)",
  },
  {
    flag: "door-allowlist",
    env: "INTERCOM_DOOR_ALLOWLIST",
    key: "doorAllowlist",
    kind: "allowlist",
    default: "",
    help:
      "comma-separated door addresses (ADDR or ADDR=IP, e.g. M00010100=192.168.1.21) accepted; empty: learn each door from its first answered call",
  },
  {
    flag: "door-relearn-after",
    env: "INTERCOM_DOOR_RELEARN_AFTER",
    key: "doorRelearnAfter",
    kind: "seconds_or_never",
    default: "60",
    help:
      "seconds: a learned door that speaks from a new IP is re-learned once its old IP has been silent this long; 0: never",
  },
  {
    flag: "metrics-allow",
    env: "INTERCOM_METRICS_ALLOW",
    key: "metricsAllow",
    kind: "cidrs",
    default: "",
    help:
      "comma-separated IPv4 addresses or CIDRs (e.g. 192.168.1.0/24) that may read /metrics; loopback always may",
  },
  {
    flag: "metrics-token",
    env: "INTERCOM_METRICS_TOKEN",
    key: "metricsToken",
    kind: "token",
    default: undefined,
    help:
      "a secret of at least 16 characters: a request with the header Authorization: Bearer and that secret may read /metrics from anywhere (use with TLS)",
  },
  {
    flag: "transcode",
    env: "INTERCOM_TRANSCODE",
    key: "transcode",
    kind: "transcode",
    default: "auto",
    help:
      "auto or off: convert door video a web phone cannot decode (MPEG-4) to JPEG with ffmpeg; needs --allow-run=ffmpeg",
  },
  {
    flag: "media-engine",
    env: "INTERCOM_MEDIA_ENGINE",
    key: "mediaEngine",
    kind: "engine",
    default: "deno",
    help:
      "deno or native: who forwards door and phone media; native loads libintercom_media.<arch>.so from --media-engine-lib (needs --allow-ffi for it; not with --cluster)",
  },
  {
    flag: "media-engine-lib",
    env: "INTERCOM_MEDIA_ENGINE_LIB",
    key: "mediaEngineLib",
    kind: "string",
    default: "/usr/local/lib/intercom-gateway",
    help:
      "directory of the native media engine's libraries (deno task build:native puts them in dist/native)",
  },
  {
    flag: "push-webhook",
    env: "INTERCOM_PUSH_WEBHOOK",
    key: "pushWebhook",
    kind: "url",
    default: undefined,
    help:
      "http(s) URL that gets a signed JSON POST for every call offered to a room and its end (wakes sleeping native phones); needs --push-webhook-secret",
  },
  {
    flag: "push-webhook-secret",
    env: "INTERCOM_PUSH_WEBHOOK_SECRET",
    key: "pushWebhookSecret",
    kind: "token",
    default: undefined,
    help:
      "the webhook's HMAC-SHA256 key, at least 16 characters: X-Intercom-Signature is sha256=hex(HMAC(secret, TIMESTAMP.BODY))",
  },
  {
    flag: "wake-window",
    env: "INTERCOM_WAKE_WINDOW",
    key: "wakeWindow",
    kind: "seconds",
    default: "20",
    help:
      "seconds a call to a room whose phones all sleep waits for one to wake and connect (at most --ring-timeout)",
  },
  {
    flag: "push-subject",
    env: "INTERCOM_PUSH_SUBJECT",
    key: "pushSubject",
    kind: "contact",
    default: "mailto:admin@localhost",
    help:
      "mailto: or https: contact the Web Push services see in the gateway's VAPID token (set it to the operator's address)",
  },
  {
    flag: "push-allow-http",
    env: "INTERCOM_PUSH_ALLOW_HTTP",
    key: "pushAllowHttp",
    kind: "onoff",
    default: "off",
    help:
      "on: accept Web Push endpoints over http and on IP addresses or localhost (tests, a LAN push service); off: https with a DNS name only",
  },
  {
    flag: "cluster",
    env: "INTERCOM_CLUSTER",
    key: "cluster",
    kind: "nats_url",
    default: undefined,
    help:
      "nats://HOST:PORT of this box's NATS leaf node: join the community's gateways (shared bindings, records, presence); default: this box alone",
  },
  {
    flag: "gateway-id",
    env: "INTERCOM_GATEWAY_ID",
    key: "gatewayId",
    kind: "gateway_id",
    default: undefined,
    help:
      "this gateway's name in the community (letters, digits, - and _, at most 32; its leaf node's JetStream domain); required with --cluster",
  },
];

/** A bad flag or environment value; the message names it. */
export class ConfigError extends RangeError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Longest duration any timer option takes: one day. */
const MAX_SECONDS = 86400;

/** A door address (door-protocol.md §2): a capital letter, then letters or digits (`M00010100`). */
const DOOR_ADDRESS = /^[A-Z][0-9A-Za-z]{1,19}$/;

/** A gateway id: one NATS subject token and a JetStream domain name. */
const GATEWAY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/** Linux interface names: at most 15 characters, no `/`, `:` or blanks. */
const INTERFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$/;

/**
 * Why `entry` is not a `--door-allowlist` entry (`ADDR` or `ADDR=IP`); `undefined` when it is.
 * An IP given alone is the usual mistake (the registry would take it for a door address and
 * reject every real door), so it gets its own hint.
 */
export function allowlistEntryProblem(entry: string): string | undefined {
  const [address = "", ip, ...rest] = entry.split("=");
  if (/^[\d.]+(\/\d+)?$/.test(address)) {
    return `an IP address, not a door address (write ADDR=IP, e.g. M00010100=${address})`;
  }
  if (!DOOR_ADDRESS.test(address)) {
    return "not a door address (a capital letter and digits, e.g. M00010100, optionally =IP)";
  }
  if (rest.length > 0 || (ip !== undefined && !parseIp(ip))) {
    return `${JSON.stringify(ip ?? "")} after "=" is not an IPv4 address`;
  }
  return undefined;
}

function isMulticast(ip: string): boolean {
  const p = parseIp(ip);
  return p !== undefined && p[0] >= 224 && p[0] <= 239;
}

function seconds(raw: string, zero: boolean): number | undefined {
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || n > MAX_SECONDS || (n === 0 && !zero)) return undefined;
  return n;
}

function convert(spec: OptionSpec, raw: string, source: string): unknown {
  const bad = (why: string) =>
    new ConfigError(`Cannot use ${source}=${JSON.stringify(raw)}: ${why}`);
  switch (spec.kind) {
    case "ip":
      if (!parseIp(raw)) throw bad("not an IPv4 address");
      return raw;
    case "multicast":
      if (!isMulticast(raw)) throw bad("not an IPv4 multicast group (224.0.0.0-239.255.255.255)");
      return raw;
    case "interface":
      if (parseIp(raw)) return raw;
      if (/^[\d.]+$/.test(raw) || !INTERFACE_NAME.test(raw)) {
        throw bad("not an interface name (eth1) or IPv4 address");
      }
      return raw;
    case "port": {
      if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
        throw bad("not a port (1-65535)");
      }
      return Number(raw);
    }
    case "port_or_off": {
      if (raw === "off") return undefined;
      if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
        throw bad("not a port (1-65535) or off");
      }
      return Number(raw);
    }
    case "seconds": {
      const n = seconds(raw, false);
      if (n === undefined) throw bad(`not a positive number of seconds (at most ${MAX_SECONDS})`);
      return n;
    }
    case "seconds_or_never": {
      const n = seconds(raw, true);
      if (n === undefined) throw bad(`not a number of seconds from 0 (never) to ${MAX_SECONDS}`);
      return n;
    }
    case "level":
      if (!(raw in LOG_LEVEL) || raw === "silent") throw bad("not one of debug, info, warn, error");
      return raw;
    case "format":
      if (raw !== "json" && raw !== "text") throw bad("not json or text");
      return raw;
    case "magic":
      if (!isMagic(raw)) throw bad("not 6 ASCII characters");
      return raw;
    case "allowlist": {
      const entries = raw.split(",").map((s) => s.trim()).filter(Boolean);
      for (const entry of entries) {
        const why = allowlistEntryProblem(entry);
        if (why) {
          throw new ConfigError(`Cannot use ${source} entry ${JSON.stringify(entry)}: ${why}`);
        }
      }
      return entries;
    }
    case "cidrs": {
      const entries = raw.split(",").map((e) => e.trim()).filter(Boolean);
      for (const entry of entries) {
        if (!parseCidr(entry)) {
          throw new ConfigError(
            `Cannot use ${source} entry ${
              JSON.stringify(entry)
            }: not an IPv4 address or CIDR (192.168.1.0/24)`,
          );
        }
      }
      return entries;
    }
    case "token":
      // Never echo the value: it is a secret.
      if (!/^[\x21-\x7e]{16,}$/.test(raw)) {
        throw new ConfigError(
          `Cannot use ${source}: not a token (at least 16 visible ASCII characters, no spaces)`,
        );
      }
      return raw;
    case "url": {
      let url: URL | undefined;
      try {
        url = new URL(raw);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
        throw bad("not an http:// or https:// URL");
      }
      return raw;
    }
    case "nats_url": {
      let url: URL | undefined;
      try {
        url = new URL(raw);
      } catch {
        url = undefined;
      }
      if (!url || url.protocol !== "nats:" || url.hostname === "" || url.pathname.length > 1) {
        throw bad("not a nats://HOST:PORT URL (this box's leaf node, e.g. nats://127.0.0.1:4222)");
      }
      return raw;
    }
    case "gateway_id":
      if (!GATEWAY_ID.test(raw) || raw === "hub") {
        throw bad('not a gateway id (1-32 letters, digits, - or _; not "hub")');
      }
      return raw;
    case "transcode":
      if (raw !== "auto" && raw !== "off") throw bad("not auto or off");
      return raw;
    case "engine":
      if (raw !== "deno" && raw !== "native") throw bad("not deno or native");
      return raw;
    case "onoff":
      if (raw !== "on" && raw !== "off") throw bad("not on or off");
      return raw === "on";
    case "contact":
      if (!/^(mailto:[^\s@]+@[^\s@]+|https:\/\/\S+)$/.test(raw) || raw.length > 256) {
        throw bad("not a mailto: address or https: URL");
      }
      return raw;
    case "string":
      if (raw === "") throw bad("empty");
      return raw;
  }
}

/** `parseArgs` options for the serve flags. */
export function serveArgOptions(): Record<string, { type: "string" }> {
  return Object.fromEntries(OPTIONS.map((o) => [o.flag, { type: "string" as const }]));
}

/** A configuration and what was odd about its input (unknown variables). */
export interface ConfigResult {
  readonly config: Config;
  /** One line each, for the log at warn level. */
  readonly warnings: readonly string[];
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j]! + 1,
        row[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * Warnings for `INTERCOM_*` variables that no option reads (a typo, or a setting of another
 * version), with the closest known name when there is one.
 */
export function unknownVariableWarnings(
  env: Readonly<Record<string, string | undefined>>,
): string[] {
  const known = OPTIONS.map((o) => o.env);
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith("INTERCOM_") || known.includes(name) || TOOL_VARIABLES.includes(name)) {
      continue;
    }
    const near = known
      .map((k) => [k, distance(name, k)] as const)
      .sort((a, b) => a[1] - b[1])[0]!;
    out.push(
      `Ignoring ${name}: no such setting${near[1] <= 3 ? ` (did you mean ${near[0]}?)` : ""}`,
    );
  }
  return out;
}

/**
 * Builds the configuration from already-parsed flag values and the environment: a flag beats
 * its environment variable, which beats the default. Unknown `INTERCOM_*` variables are
 * warnings, not errors (an old gateway.env must not stop an upgraded gateway).
 *
 * @throws {ConfigError} naming the flag (or variable) whose value is bad.
 */
export function resolveConfig(
  flags: Readonly<Record<string, string | boolean | undefined>>,
  env: Readonly<Record<string, string | undefined>> = {},
): ConfigResult {
  const out: Record<string, unknown> = {};
  for (const spec of OPTIONS) {
    const flag = flags[spec.flag];
    const fromEnv = env[spec.env];
    if (typeof flag === "string") out[spec.key] = convert(spec, flag, `--${spec.flag}`);
    else if (fromEnv !== undefined && fromEnv !== "") {
      out[spec.key] = convert(spec, fromEnv, spec.env);
    } else {
      out[spec.key] = spec.default === undefined
        ? undefined
        : convert(spec, spec.default, `--${spec.flag}`);
    }
  }
  if ((out.tlsCert === undefined) !== (out.tlsKey === undefined)) {
    throw new ConfigError("Cannot use --tls-cert without --tls-key (or the reverse)");
  }
  if ((out.pushWebhook === undefined) !== (out.pushWebhookSecret === undefined)) {
    throw new ConfigError(
      "Cannot use --push-webhook without --push-webhook-secret (or the reverse)",
    );
  }
  if (out.cluster !== undefined && out.gatewayId === undefined) {
    throw new ConfigError(
      "Cannot use --cluster without --gateway-id (this gateway's name in the community)",
    );
  }
  if (out.cluster !== undefined && out.mediaEngine === "native") {
    throw new ConfigError(
      "Cannot use --media-engine native with --cluster: media between gateways goes through the deno engine",
    );
  }
  if (out.cluster === undefined && out.gatewayId !== undefined) {
    throw new ConfigError("Cannot use --gateway-id without --cluster (the leaf node's URL)");
  }
  if (out.tlsCert === undefined && out.httpsPort !== undefined && out.httpsPort === out.httpPort) {
    throw new ConfigError(
      `Cannot use --https-port=${out.httpsPort}: it is the --http-port (choose another, or off)`,
    );
  }
  return {
    config: Object.freeze(out) as unknown as Config,
    warnings: unknownVariableWarnings(env),
  };
}

/**
 * {@linkcode resolveConfig} without the warnings.
 *
 * @throws {ConfigError} naming the flag (or variable) whose value is bad.
 */
export function configFrom(
  flags: Readonly<Record<string, string | boolean | undefined>>,
  env: Readonly<Record<string, string | undefined>> = {},
): Config {
  return resolveConfig(flags, env).config;
}

/** Parsed serve flags. */
export interface ServeArgs {
  /** Flag values by flag name (without `--`). */
  readonly values: Readonly<Record<string, string | undefined>>;
  /** `--help` or `-h` was given. */
  readonly help: boolean;
}

function argsErrorMessage(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown }).code;
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag) {
    return `Cannot use ${flag}: no such flag (serve --help lists them)`;
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag) {
    if (/does not take an argument/.test(message)) return `Cannot use ${flag}: it takes no value`;
    return `Cannot use ${flag}: it needs a value (one that starts with "-" is written ${flag}=-…)`;
  }
  const positional = /Unexpected argument '([^']*)'/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL" && positional !== undefined) {
    return `Cannot use ${JSON.stringify(positional)}: serve takes flags only (--flag value)`;
  }
  return `Cannot parse flags: ${message.split("\n").join(" ")}`;
}

/**
 * Parses the serve flags (and `--help`). A value that is a negative number (`--ring-timeout -1`)
 * is taken as the flag's value, so that the value check names the flag.
 *
 * @throws {ConfigError} with one line naming the flag, for an unknown flag or a missing value.
 */
export function parseServeArgs(args: readonly string[]): ServeArgs {
  const options = serveArgOptions();
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    if (a.startsWith("--") && a.slice(2) in options && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${a}=${next}`);
      i++;
    } else joined.push(a);
  }
  try {
    const { values } = parseArgs({
      args: joined,
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    });
    const { help, ...rest } = values;
    return { values: rest as Record<string, string | undefined>, help: help === true };
  } catch (e) {
    throw new ConfigError(argsErrorMessage(e));
  }
}

/**
 * Parses serve flags and environment into a configuration and its warnings (`--help` is the
 * serve command's business and ignored here).
 *
 * @throws {ConfigError} for an unknown flag or a bad value.
 */
export function loadConfig(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): ConfigResult {
  return resolveConfig(parseServeArgs(args).values, env);
}

/**
 * Parses serve flags and environment into a {@linkcode Config}.
 *
 * @throws {ConfigError} for an unknown flag or a bad value.
 */
export function parseConfig(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): Config {
  return loadConfig(args, env).config;
}

/** Usage lines for the serve flags. */
export function optionsHelp(): string {
  return OPTIONS.map((o) =>
    `  --${o.flag.padEnd(20)} ${o.help}${o.default ? ` [${o.default}]` : ""} (${o.env})`
  ).join("\n");
}
