/**
 * Starts the whole gateway in-process for end-to-end tests: door port 8302 (inside the test's
 * private network namespace), HTTP and media on ephemeral ports, a temporary data directory.
 *
 * @module
 */

import { type App, startApp } from "../../src/app.ts";
import { type Config, parseConfig } from "../../src/config.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { nullLogger } from "../../src/testing/mod.ts";

/** A running test gateway. */
export interface TestGateway {
  readonly app: App;
  /** `ws://127.0.0.1:PORT/phone` */
  readonly url: string;
  readonly httpBase: string;
  readonly data: string;
  /** Binds a phone to a room and returns its token. */
  bind(uid: string, roomAddress: string, community?: string): Promise<string>;
  /** Shuts the gateway down and removes its data (unless `keepData`). */
  close(options?: { keepData?: boolean }): Promise<void>;
}

/** Starts a gateway; `overrides` replace config fields (ports 0 = ephemeral). */
export async function startTestGateway(
  overrides: Partial<Config> = {},
  options: { logger?: Logger } = {},
): Promise<TestGateway> {
  const data = overrides.data ?? await Deno.makeTempDir({ prefix: "gw-test-" });
  const base = parseConfig([], {});
  const config: Config = Object.freeze({
    ...base,
    httpHost: "127.0.0.1",
    httpPort: 0,
    mediaPort: 0,
    // No HTTPS listener unless a test asks for one (httpsPort: 0 = a free port).
    httpsPort: undefined,
    data,
    ...overrides,
  });
  const logger = options.logger ??
    (Deno.env.get("INTERCOM_TEST_LOG")
      ? createLogger({ level: "debug", format: "text" })
      : nullLogger);
  let app: App;
  try {
    app = await startApp(config, { logger, version: "test" });
  } catch (e) {
    if (overrides.data === undefined) await Deno.remove(data, { recursive: true }).catch(() => {});
    throw e;
  }
  const httpBase = `http://127.0.0.1:${app.addresses.http.port}`;
  return {
    app,
    url: `ws://127.0.0.1:${app.addresses.http.port}/phone`,
    httpBase,
    data,
    bind: async (uid, roomAddress, community = "花苑") =>
      (await app.bindings.add({ uid, roomAddress, community })).token,
    close: async (options = {}) => {
      await app.shutdown();
      if (!options.keepData) await Deno.remove(data, { recursive: true }).catch(() => {});
    },
  };
}

export { TIME_SCALE } from "./scale.ts";
