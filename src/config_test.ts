import { assert, assertEquals } from "../tests/helpers/assert.ts";
import {
  allowlistEntryProblem,
  ConfigError,
  DEFAULT_DATA,
  loadConfig,
  OPTIONS,
  parseConfig,
} from "./config.ts";

function failure(args: string[], env: Record<string, string> = {}): string {
  try {
    parseConfig(args, env);
  } catch (e) {
    assert(e instanceof ConfigError, String(e));
    return e.message;
  }
  throw new Error(`${args.join(" ")} ${JSON.stringify(env)} must fail`);
}

Deno.test("config: embedded defaults", () => {
  const c = parseConfig([]);
  assertEquals(
    [c.lanIp, c.doorPort, c.multicastGroup, c.magic, c.data, c.httpPort, c.mediaPort],
    [undefined, 8302, "238.9.9.1", "XXXCID", DEFAULT_DATA, 8080, 8303],
  );
  assertEquals([c.heartbeatTimeout, c.ringTimeout, c.talkTimeout, c.logFormat], [
    6,
    30,
    180,
    "json",
  ]);
  assertEquals([c.httpHost, c.doorRelearnAfter, c.doorAllowlist], ["0.0.0.0", 60, []]);
  assertEquals(DEFAULT_DATA, "./data");
  assert(Object.isFrozen(c));
});

Deno.test("config: flag beats environment beats default", () => {
  const env = { INTERCOM_DOOR_PORT: "9000", INTERCOM_MAGIC: "QIUSHI", INTERCOM_LAN_IP: "10.0.0.2" };
  const c = parseConfig(["--door-port", "9001"], env);
  assertEquals([c.doorPort, c.magic, c.lanIp], [9001, "QIUSHI", "10.0.0.2"]);
});

Deno.test("config: a bad value names its flag or variable", () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--door-port", "70000"], {}, /--door-port/],
    [["--lan-ip", "1.2.3"], {}, /--lan-ip/],
    [["--log-format", "xml"], {}, /--log-format/],
    [["--magic", "ABC"], {}, /--magic/],
    [["--ring-timeout", "-1"], {}, /--ring-timeout/],
    [[], { INTERCOM_HTTP_PORT: "x" }, /INTERCOM_HTTP_PORT/],
    [["--no-such-flag"], {}, /no-such-flag/],
    [["--tls-cert", "a.pem"], {}, /--tls-cert/],
  ];
  for (const [args, env, re] of cases) {
    try {
      parseConfig(args, env);
      assert(false, `${args.join(" ")} must fail`);
    } catch (e) {
      assert(e instanceof ConfigError, String(e));
      assert(re.test(e.message), e.message);
    }
  }
});

Deno.test("config: an allowlist entry that is an IP, or not a door address, is refused by name", () => {
  const ip = failure([], { INTERCOM_DOOR_ALLOWLIST: "M00010100,192.168.1.21" });
  assert(/INTERCOM_DOOR_ALLOWLIST entry "192\.168\.1\.21"/.test(ip), ip);
  assert(/an IP address, not a door address/.test(ip) && /M00010100=192\.168\.1\.21/.test(ip), ip);
  const cidr = failure(["--door-allowlist", "192.168.1.0/24"]);
  assert(/--door-allowlist entry "192\.168\.1\.0\/24": an IP address/.test(cidr), cidr);
  for (
    const entry of ["door1", "m00010100", "M00010100=10.0.0", "M00010100=1.2.3.4=5", "=1.2.3.4"]
  ) {
    const m = failure(["--door-allowlist", entry]);
    assert(m.includes(`--door-allowlist entry ${JSON.stringify(entry)}`), m);
  }
  assertEquals(
    parseConfig(["--door-allowlist", " M00010100=192.168.1.21 , S00010108090 ,"]).doorAllowlist,
    ["M00010100=192.168.1.21", "S00010108090"],
  );
  assertEquals(allowlistEntryProblem("M00010200"), undefined);
});

Deno.test("config: --multicast-interface takes an interface name or an IPv4 address", () => {
  assertEquals(parseConfig(["--multicast-interface", "eth1"]).multicastInterface, "eth1");
  assertEquals(
    parseConfig([], { INTERCOM_MULTICAST_INTERFACE: "192.168.1.10" }).multicastInterface,
    "192.168.1.10",
  );
  for (const bad of ["1.2.3", "eth 1", "a-name-far-too-long-for-linux", "eth1/2"]) {
    assert(/--multicast-interface/.test(failure(["--multicast-interface", bad])), bad);
  }
});

Deno.test("config: --multicast-group must be a multicast address", () => {
  const m = failure(["--multicast-group", "10.0.0.1"]);
  assert(/^Cannot use --multicast-group="10\.0\.0\.1": not an IPv4 multicast group/.test(m), m);
  assertEquals(parseConfig(["--multicast-group", "239.1.2.3"]).multicastGroup, "239.1.2.3");
  assertEquals(parseConfig(["--multicast-group", "224.0.0.1"]).multicastGroup, "224.0.0.1");
});

Deno.test("config: negative or zero durations name their flag in one line", () => {
  for (const flag of ["ring-timeout", "talk-timeout", "heartbeat-timeout"]) {
    for (const value of ["-1", "-0.5", "0", "0.0", "1e3", "90000"]) {
      const m = failure([`--${flag}`, value]);
      assert(m.startsWith(`Cannot use --${flag}="${value}": not a positive number`), m);
      assert(!m.includes("\n"), m);
    }
  }
  const relearn = failure(["--door-relearn-after", "-5"]);
  assert(relearn.startsWith(`Cannot use --door-relearn-after="-5"`), relearn);
  assert(/INTERCOM_RING_TIMEOUT/.test(failure([], { INTERCOM_RING_TIMEOUT: "-1" })));
});

Deno.test("config: --door-relearn-after is seconds from 0 (never), default 60", () => {
  assertEquals(parseConfig(["--door-relearn-after", "0"]).doorRelearnAfter, 0);
  assertEquals(parseConfig([], { INTERCOM_DOOR_RELEARN_AFTER: "600" }).doorRelearnAfter, 600);
  assertEquals(parseConfig([]).doorRelearnAfter, 60);
  assert(/--door-relearn-after/.test(failure(["--door-relearn-after", "soon"])));
});

Deno.test("config: flag errors are one line naming the flag", () => {
  const cases: [string[], RegExp][] = [
    [["--data", "--door-port", "1"], /^Cannot use --data: it needs a value/],
    [["--data"], /^Cannot use --data: it needs a value/],
    [["--bogus"], /^Cannot use --bogus: no such flag/],
    [["serve"], /^Cannot use "serve": serve takes flags only/],
  ];
  for (const [args, re] of cases) {
    const m = failure(args);
    assert(re.test(m) && !m.includes("\n"), m);
  }
});

Deno.test("config: an unknown INTERCOM_ variable is a warning, with the closest name", () => {
  const { config, warnings } = loadConfig([], {
    INTERCOM_DOOR_ALLOW_LIST: "M00010100",
    INTERCOM_FOO: "1",
    INTERCOM_IN_NETNS: "1",
    INTERCOM_DATA: "/tmp/x",
    HOME: "/root",
  });
  assertEquals(config.data, "/tmp/x");
  assertEquals(warnings, [
    "Ignoring INTERCOM_DOOR_ALLOW_LIST: no such setting (did you mean INTERCOM_DOOR_ALLOWLIST?)",
    "Ignoring INTERCOM_FOO: no such setting",
  ]);
  assertEquals(loadConfig([], { INTERCOM_LAN_IP: "10.0.0.2" }).warnings, []);
});

Deno.test("README: the configuration table has one 4-cell row per option, as config.ts has it", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const section = readme.split("\n## Configuration")[1]!.split("\n## ")[0]!;
  const rows = section.split("\n").filter((l) => l.startsWith("| `--"));
  assertEquals(rows.length, OPTIONS.length);
  for (const [i, row] of rows.entries()) {
    // A "|" inside a cell must be escaped ("\|"), else the table loses the rest of the row.
    const cells = row.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim());
    const o = OPTIONS[i]!;
    assertEquals(cells, [
      `\`--${o.flag}\``,
      `\`${o.env}\``,
      o.default ? `\`${o.default}\`` : "—",
      o.help,
    ]);
  }
});

Deno.test("--metrics-allow takes IPv4s and CIDRs; --metrics-token a long secret, never echoed", () => {
  const c = parseConfig(["--metrics-allow", "192.168.1.0/24, 10.0.0.5"], {
    INTERCOM_METRICS_TOKEN: "0123456789abcdef0123",
  });
  assertEquals([c.metricsAllow, c.metricsToken], [
    ["192.168.1.0/24", "10.0.0.5"],
    "0123456789abcdef0123",
  ]);
  assertEquals(parseConfig([], {}).metricsAllow, []);
  assert(failure(["--metrics-allow", "192.168.1.0/40"]).includes("CIDR"));
  const why = failure(["--metrics-token", "short secret"]);
  assert(why.includes("--metrics-token") && !why.includes("short secret"), why);
});

Deno.test("config: --cluster takes a nats:// URL and needs --gateway-id (and the reverse)", () => {
  const c = parseConfig([], {
    INTERCOM_CLUSTER: "nats://127.0.0.1:4222",
    INTERCOM_GATEWAY_ID: "gate-1",
  });
  assertEquals([c.cluster, c.gatewayId], ["nats://127.0.0.1:4222", "gate-1"]);
  const alone = parseConfig([]);
  assertEquals([alone.cluster, alone.gatewayId], [undefined, undefined]);
  assert(failure(["--cluster", "nats://127.0.0.1:4222"]).includes("without --gateway-id"));
  assert(failure(["--gateway-id", "a"]).includes("without --cluster"));
  for (const bad of ["http://127.0.0.1:4222", "127.0.0.1:4222", "nats://", "nats://h:1/x"]) {
    assert(
      failure(["--cluster", bad, "--gateway-id", "a"]).startsWith(`Cannot use --cluster="`),
      bad,
    );
  }
  for (const bad of ["a.b", "a b", "hub", "x".repeat(33), ">"]) {
    assert(
      failure(["--cluster", "nats://127.0.0.1:4222", "--gateway-id", bad])
        .includes("not a gateway id"),
      bad,
    );
  }
});
