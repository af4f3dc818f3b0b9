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

/** Validated gateway settings. */
export interface Config {
  /** The gateway's IPv4 towards doors; `undefined`: per door, the local address on its subnet. */
  readonly lanIp: string | undefined;
  readonly doorPort: number;
  readonly multicastGroup: string;
  /** Local IPv4 of the interface to join the group on; `undefined`: the kernel's choice. */
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
  /** Door addresses (and optionally `=IP`) accepted; empty: doors are learned on first contact. */
  readonly doorAllowlist: readonly string[];
}

type Kind = "ip" | "port" | "string" | "seconds" | "level" | "format" | "magic" | "list";

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
    kind: "ip",
    default: DEFAULTS.MULTICAST_GROUP,
    help: "name-resolution multicast group",
  },
  {
    flag: "multicast-interface",
    env: "INTERCOM_MULTICAST_INTERFACE",
    key: "multicastInterface",
    kind: "ip",
    default: undefined,
    help: "local IPv4 of the interface that joins the group (default: the kernel's choice)",
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
    default: "./data",
    help: "data directory (Deno KV: bindings, call records)",
  },
  {
    flag: "log-level",
    env: "INTERCOM_LOG_LEVEL",
    key: "logLevel",
    kind: "level",
    default: "info",
    help: "debug | info | warn | error",
  },
  {
    flag: "log-format",
    env: "INTERCOM_LOG_FORMAT",
    key: "logFormat",
    kind: "format",
    default: "json",
    help: "json | text",
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
    flag: "door-allowlist",
    env: "INTERCOM_DOOR_ALLOWLIST",
    key: "doorAllowlist",
    kind: "list",
    default: "",
    help:
      "comma-separated door addresses (ADDR or ADDR=IP) accepted; empty: learn on first contact",
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

function convert(spec: OptionSpec, raw: string, source: string): unknown {
  const bad = (why: string) =>
    new ConfigError(`Cannot use ${source}=${JSON.stringify(raw)}: ${why}`);
  switch (spec.kind) {
    case "ip":
      if (!parseIp(raw)) throw bad("not an IPv4 address");
      return raw;
    case "port": {
      if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
        throw bad("not a port (1-65535)");
      }
      return Number(raw);
    }
    case "seconds": {
      const n = Number(raw);
      if (!/^\d+(\.\d+)?$/.test(raw) || !(n > 0) || n > 86400) {
        throw bad("not a positive number of seconds");
      }
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
    case "list":
      return raw.split(",").map((s) => s.trim()).filter(Boolean);
    case "string":
      if (raw === "") throw bad("empty");
      return raw;
  }
}

/** `parseArgs` options for the serve flags. */
export function serveArgOptions(): Record<string, { type: "string" }> {
  return Object.fromEntries(OPTIONS.map((o) => [o.flag, { type: "string" as const }]));
}

/**
 * Builds the configuration from already-parsed flag values and the environment: a flag beats
 * its environment variable, which beats the default.
 *
 * @throws {ConfigError} naming the flag (or variable) whose value is bad.
 */
export function configFrom(
  flags: Readonly<Record<string, string | boolean | undefined>>,
  env: Readonly<Record<string, string | undefined>> = {},
): Config {
  const out: Record<string, unknown> = {};
  for (const spec of OPTIONS) {
    const flag = flags[spec.flag];
    const fromEnv = env[spec.env];
    if (typeof flag === "string") out[spec.key] = convert(spec, flag, `--${spec.flag}`);
    else if (fromEnv !== undefined && fromEnv !== "") {
      out[spec.key] = convert(spec, fromEnv, spec.env);
    } else {out[spec.key] = spec.default === undefined
        ? undefined
        : convert(spec, spec.default, `--${spec.flag}`);}
  }
  if ((out.tlsCert === undefined) !== (out.tlsKey === undefined)) {
    throw new ConfigError("Cannot use --tls-cert without --tls-key (or the reverse)");
  }
  return Object.freeze(out) as unknown as Config;
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
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...args],
      options: serveArgOptions(),
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    throw new ConfigError(`Cannot parse flags: ${e instanceof Error ? e.message : String(e)}`);
  }
  return configFrom(values, env);
}

/** Usage lines for the serve flags. */
export function optionsHelp(): string {
  return OPTIONS.map((o) =>
    `  --${o.flag.padEnd(20)} ${o.help}${o.default ? ` [${o.default}]` : ""} (${o.env})`
  ).join("\n");
}
