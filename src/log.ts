/**
 * A small structured logger: levels, child fields, JSON lines or text, an injectable sink.
 *
 * We write our own instead of `@std/log` (unreachable here, and deprecated upstream): the
 * gateway needs levels, `child({ callId })` and one line per record, nothing more.
 *
 * @module
 */

/** Log levels in increasing severity. */
export const LOG_LEVEL = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;

/** A level name. */
export type LogLevel = keyof typeof LOG_LEVEL;

/** Output format of a log line. */
export type LogFormat = "json" | "text";

/** Structured fields attached to a record. */
export type LogFields = Readonly<Record<string, unknown>>;

/** Where formatted lines go. */
export type LogSink = (line: string) => void;

/** A structured logger. */
export interface Logger {
  /** Logs at debug level. */
  debug(msg: string, fields?: LogFields): void;
  /** Logs at info level. */
  info(msg: string, fields?: LogFields): void;
  /** Logs at warn level. */
  warn(msg: string, fields?: LogFields): void;
  /** Logs at error level. */
  error(msg: string, fields?: LogFields): void;
  /** True when records of this level would be written (guards costly field building). */
  enabled(level: LogLevel): boolean;
  /** A logger that adds `fields` to every record. */
  child(fields: LogFields): Logger;
}

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. @default {"info"} */
  level?: LogLevel;
  /** Line format. @default {"json"} */
  format?: LogFormat;
  /** Line consumer. @default writes to stderr */
  sink?: LogSink;
  /** Clock for the `ts` field. @default {Date.now} */
  now?: () => number;
}

/** Field names whose values never reach a log line. */
const SECRET_FIELDS = new Set(["token", "mediaKey", "password", "secret", "key"]);

function clean(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return value;
}

function render(
  format: LogFormat,
  ts: number,
  level: LogLevel,
  msg: string,
  fields: LogFields,
): string {
  const entries = Object.entries(fields).map(([k, v]) =>
    [k, SECRET_FIELDS.has(k) ? "[redacted]" : clean(v)] as const
  );
  if (format === "json") {
    return JSON.stringify({
      ts: new Date(ts).toISOString(),
      level,
      msg,
      ...Object.fromEntries(entries),
    });
  }
  const tail = entries.map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  return [new Date(ts).toISOString(), level.toUpperCase().padEnd(5), msg, ...tail].join(" ");
}

const encoder = new TextEncoder();

function stderrSink(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing sensible left to do with a log line.
  }
}

/**
 * Creates a logger.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "debug", format: "text" });
 * log.child({ callId: "c1" }).info("call started", { room: "00010108090" });
 * ```
 */
export function createLogger(options: LoggerOptions = {}, fields: LogFields = {}): Logger {
  const min = LOG_LEVEL[options.level ?? "info"];
  const format = options.format ?? "json";
  const sink = options.sink ?? stderrSink;
  const now = options.now ?? Date.now;
  const write = (level: LogLevel, msg: string, extra?: LogFields) => {
    if (LOG_LEVEL[level] < min) return;
    sink(render(format, now(), level, msg, extra ? { ...fields, ...extra } : fields));
  };
  return {
    debug: (msg, extra) => write("debug", msg, extra),
    info: (msg, extra) => write("info", msg, extra),
    warn: (msg, extra) => write("warn", msg, extra),
    error: (msg, extra) => write("error", msg, extra),
    enabled: (level) => LOG_LEVEL[level] >= min,
    child: (more) => createLogger(options, { ...fields, ...more }),
  };
}

/** A logger that writes nothing (a default for optional loggers; tests use it too). */
export const nullLogger: Logger = createLogger({ level: "silent", sink: () => {} });
