/**
 * Loggers for tests: one that keeps its records, one that drops them.
 *
 * @module
 */

import { createLogger, type Logger, type LogLevel, nullLogger } from "../log.ts";

/** A logger that writes nothing. */
export { nullLogger };

/** A logger that keeps parsed JSON records in memory, for assertions on what was logged. */
export function memoryLogger(
  level: LogLevel = "debug",
): Logger & { records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const logger = createLogger({
    level,
    format: "json",
    sink: (line) => records.push(JSON.parse(line)),
  });
  return Object.assign(logger, { records });
}
