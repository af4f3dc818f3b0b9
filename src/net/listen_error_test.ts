import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { describeStartError, opening, StartError, type StartStep } from "./listen_error.ts";

const DOOR: StartStep = {
  kind: "udp",
  flag: "door-port",
  port: 8302,
  multicast: { group: "238.9.9.1", interface: "192.168.1.10" },
};
const MEDIA: StartStep = { kind: "udp", flag: "media-port", port: 8303 };
const HTTP: StartStep = { kind: "tcp", flag: "http-port", host: "0.0.0.0", port: 8080 };
const HTTPS: StartStep = { kind: "tcp", flag: "http-port", host: "0.0.0.0", port: 443, tls: true };
const STORE: StartStep = { kind: "store", location: "/var/lib/intercom-gateway" };
const CERT: StartStep = { kind: "file", flag: "tls-cert", path: "/etc/intercom-gateway/tls/c.pem" };

const inUse = () => new Deno.errors.AddrInUse("Address already in use (os error 98)");
const denied = () => new Deno.errors.PermissionDenied("Permission denied (os error 13)");

function one(line: string): string {
  assert(!line.includes("\n"), line);
  return line;
}

Deno.test("describeStartError: a port in use names the protocol, port and flag", () => {
  assert(
    one(describeStartError(inUse(), { step: DOOR })).startsWith(
      "Cannot listen on UDP 8302 (--door-port): address in use; is another gateway running?",
    ),
  );
  assert(
    describeStartError(inUse(), { step: MEDIA }).startsWith(
      "Cannot listen on UDP 8303 (--media-port): address in use",
    ),
  );
  const tcp = describeStartError(inUse(), { step: HTTP });
  assert(tcp.startsWith("Cannot listen on TCP 8080 (--http-port): address in use"), tcp);
  assert(tcp.includes("ss -tlnp 'sport = :8080'"), tcp);
});

Deno.test("describeStartError: a low port without privilege points at the low-port drop-in", () => {
  const m = one(describeStartError(denied(), { step: HTTPS }));
  assert(
    m.startsWith("Cannot listen on TCP 443 (--http-port): ports below 1024 need privilege"),
    m,
  );
  assert(m.includes("deploy/low-port.conf") && m.includes("install.sh --low-port"), m);
  const high = describeStartError(denied(), { step: HTTP });
  assert(!high.includes("low-port") && high.includes("permission denied"), high);
});

Deno.test("describeStartError: a multicast join on a missing interface names both settings", () => {
  const cause = new Error("No such device (os error 19)");
  const e = new Error(`Cannot join multicast group 238.9.9.1: ${cause}`, { cause });
  const m = one(describeStartError(e, { step: DOOR }));
  assert(
    m.startsWith(
      "Cannot join multicast group 238.9.9.1 on 192.168.1.10 (--multicast-interface, else --lan-ip): no local interface has the address 192.168.1.10",
    ),
    m,
  );
});

Deno.test("describeStartError: an HTTP host that is not ours, a bad certificate", () => {
  const host = describeStartError(
    new Deno.errors.AddrNotAvailable("Cannot assign requested address (os error 99)"),
    { step: { ...HTTP, host: "10.9.9.9" } as StartStep },
  );
  assertEquals(
    host,
    "Cannot listen on TCP 10.9.9.9:8080 (--http-host): no local interface has the address 10.9.9.9",
  );
  const pem = describeStartError(
    new Deno.errors.InvalidData("No certificates found in certificate data"),
    { step: HTTPS },
  );
  assertEquals(
    pem,
    "Cannot serve https (--tls-cert, --tls-key): No certificates found in certificate data",
  );
});

Deno.test("describeStartError: a store another user owns, or read-only, names the file and the fix", () => {
  const facts = {
    file: "/var/lib/intercom-gateway/gateway.kv",
    dir: "/var/lib/intercom-gateway",
    uid: 0,
    mode: 0o100644,
  };
  const readonly = new Error(
    "Cannot open store at /var/lib/intercom-gateway: attempt to write a readonly database",
    { cause: new Error("attempt to write a readonly database") },
  );
  const m = one(describeStartError(readonly, { step: STORE, store: facts }));
  assert(
    m.startsWith(
      "Cannot open the data store /var/lib/intercom-gateway/gateway.kv (--data /var/lib/intercom-gateway): the user the gateway runs as cannot write it (owner uid 0, mode 644)",
    ),
    m,
  );
  assert(m.includes("sudo chown -R intercom:intercom /var/lib/intercom-gateway"), m);
  // The write probe of a read-only file owned by us, and a directory we may not enter.
  for (
    const e of [
      new Deno.errors.PermissionDenied(
        "Permission denied (os error 13): open '/var/lib/intercom-gateway/gateway.kv'",
      ),
      new Error("Cannot open store at /x: unable to open database file: /x/gateway.kv"),
    ]
  ) {
    const line = describeStartError(e, { step: STORE, store: { ...facts, mode: 0o100444 } });
    assert(line.includes("cannot write it (owner uid 0, mode 444)"), line);
  }
  const rofs = describeStartError(
    new Error("Read-only file system (os error 30): open '/var/lib/intercom-gateway/gateway.kv'"),
    { step: STORE, store: facts },
  );
  assert(rofs.includes("gateway.kv") && rofs.includes("read-only file system"), rofs);
  const bare = describeStartError(new Error("disk I/O error"), { step: STORE });
  assertEquals(
    bare,
    "Cannot open the data store /var/lib/intercom-gateway (--data /var/lib/intercom-gateway): disk I/O error",
  );
});

Deno.test("describeStartError: a TLS file that is missing or unreadable", () => {
  assertEquals(
    describeStartError(new Deno.errors.NotFound("No such file or directory (os error 2)"), {
      step: CERT,
    }),
    "Cannot read /etc/intercom-gateway/tls/c.pem (--tls-cert): no such file",
  );
  const m = describeStartError(denied(), { step: CERT });
  assert(m.includes("permission denied") && m.includes("root:intercom, mode 0640"), m);
});

Deno.test("describeStartError: Deno's own permission refusal says so", () => {
  const e = new Deno.errors.NotCapable(
    'Requires net access to "0.0.0.0:8080", run again with the --allow-net flag',
  );
  const m = describeStartError(e, { step: HTTP });
  assert(m.includes("--allow-net is not granted"), m);
});

Deno.test("opening: tags a sync or async failure with its step, passes results through", async () => {
  assertEquals(await opening(MEDIA, () => 7), 7);
  for (
    const open of [() => {
      throw inUse();
    }, () => Promise.reject(inUse())]
  ) {
    try {
      await opening(MEDIA, open);
      assert(false, "must throw");
    } catch (e) {
      assert(e instanceof StartError, String(e));
      assertEquals(e.step, MEDIA);
      assert(e.cause instanceof Deno.errors.AddrInUse);
    }
  }
  // An inner tag wins over an outer one.
  const inner = new StartError(DOOR, inUse());
  try {
    await opening(MEDIA, () => Promise.reject(inner));
  } catch (e) {
    assert(e === inner);
  }
});
