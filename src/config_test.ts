import { assert, assertEquals } from "../tests/helpers/assert.ts";
import { ConfigError, parseConfig } from "./config.ts";

Deno.test("config: embedded defaults", () => {
  const c = parseConfig([]);
  assertEquals(
    [c.lanIp, c.doorPort, c.multicastGroup, c.magic, c.data, c.httpPort, c.mediaPort],
    [undefined, 8302, "238.9.9.1", "XXXCID", "./data", 8080, 8303],
  );
  assertEquals([c.heartbeatTimeout, c.ringTimeout, c.talkTimeout, c.logFormat], [
    6,
    30,
    180,
    "json",
  ]);
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
