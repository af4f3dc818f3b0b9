/**
 * `deploy/gateway.env.example` is what an installer copies to `/etc/intercom-gateway/gateway.env`
 * and uncomments: every example value in it must mean what it says to this gateway. The file is
 * read the way systemd reads it (the unit's `Environment=` first, then the `EnvironmentFile=`),
 * with every commented-out example switched on, and the gateway started with it.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { inNetns } from "./helpers/netns.ts";
import { RUN_FLAGS } from "./helpers/process.ts";
import { startDeno } from "./helpers/serve_process.ts";
import { OPTIONS, resolveConfig } from "../src/config.ts";

const DEPLOY = new URL("../deploy/", import.meta.url);
const TLS = new URL("./fixtures/tls/", import.meta.url);
const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** `KEY=value` lines of an environment file: those in force, and the commented-out examples. */
function readEnvFile(
  text: string,
): { active: Record<string, string>; examples: Record<string, string> } {
  const active: Record<string, string> = {};
  const examples: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^(#?)([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) (m[1] ? examples : active)[m[2]!] = m[3]!;
  }
  return { active, examples };
}

/** The unit's `Environment=KEY=value` lines. */
function unitEnvironment(unit: string): Record<string, string> {
  return Object.fromEntries(
    unit.split("\n").flatMap((l) => {
      const m = /^Environment=([A-Z][A-Z0-9_]*)=(.*)$/.exec(l);
      return m ? [[m[1]!, m[2]!]] : [];
    }),
  );
}

const example = readEnvFile(await Deno.readTextFile(new URL("gateway.env.example", DEPLOY)));
const unit = unitEnvironment(await Deno.readTextFile(new URL("intercom-gateway.service", DEPLOY)));

Deno.test("gateway.env.example shows every setting, and no variable the gateway does not read", () => {
  assertEquals(Object.keys(example.active), [], "the example sets nothing by default");
  assertEquals(Object.keys(example.examples).sort(), OPTIONS.map((o) => o.env).sort());
});

Deno.test("gateway.env.example: every example value is accepted as it is written", () => {
  const { config, warnings } = resolveConfig({}, { ...unit, ...example.examples });
  assertEquals(warnings, []);
  // The values mean what the comments say.
  assertEquals(config.doorAllowlist, ["M00010100=192.168.1.21", "M00010200=192.168.1.22"]);
  assertEquals(config.multicastInterface, "eth0");
  assertEquals(config.heartbeatTimeout, 6);
  assertEquals(config.httpHost, "0.0.0.0");
  assertEquals(config.data, "/var/lib/intercom-gateway");
  // Each default shown is the gateway's own default (the data directory is the unit's).
  for (const o of OPTIONS) {
    if (o.default !== undefined && o.default !== "" && o.env !== "INTERCOM_DATA") {
      assertEquals(example.examples[o.env], o.default, o.env);
    }
  }
});

Deno.test({
  name: "the gateway starts with gateway.env.example switched on (and stops on SIGTERM)",
  ignore: !inNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "gw-example-" });
    for (const f of ["cert.pem", "key.pem"]) await Deno.copyFile(new URL(f, TLS), `${dir}/${f}`);
    const client = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(new URL("ca.pem", TLS))],
    });
    // What this namespace cannot have as the example writes it: an eth0 (its only interface is
    // lo), /var/lib and /etc/intercom-gateway, a NATS leaf node (tests/cluster_test.ts runs the
    // community settings). Everything else, ports included, as written.
    const { INTERCOM_CLUSTER: _c, INTERCOM_GATEWAY_ID: _g, ...examples } = example.examples;
    const env = {
      ...unit,
      ...examples,
      INTERCOM_MULTICAST_INTERFACE: "lo",
      INTERCOM_DATA: `${dir}/data`,
      INTERCOM_TLS_CERT: `${dir}/cert.pem`,
      INTERCOM_TLS_KEY: `${dir}/key.pem`,
      HOME: dir,
    };
    const port = example.examples.INTERCOM_HTTP_PORT;
    try {
      const gw = await startDeno(
        ["run", ...RUN_FLAGS, MAIN, "serve"],
        `https://localhost:${port}/healthz`,
        { env, cleanIntercomEnv: true, client },
      );
      let health;
      try {
        const res = await fetch(`https://localhost:${port}/healthz`, { client });
        health = await res.json();
      } finally {
        assertEquals(await gw.stop(), 0, gw.log());
      }
      assertEquals([health.ok, health.doorPort, health.mediaPort], [true, 8302, 8303]);
      const records = gw.log().trim().split("\n").map((l) => JSON.parse(l));
      assert(records.some((r) => r.msg === "gateway started"), gw.log());
      assertEquals(records.filter((r) => r.level === "warn" || r.level === "error"), []);
    } finally {
      client.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
