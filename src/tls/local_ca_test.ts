import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { dnsWithin, inNetwork, loadOrCreateTls } from "./local_ca.ts";
import { fingerprint, fromPem } from "./certificate.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tls-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function openssl(args: string[], stdin?: string): Promise<{ code: number; out: string }> {
  const child = new Deno.Command("openssl", {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await child.output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout) + d.decode(r.stderr) };
}

const hasOpenssl = await new Deno.Command("openssl", {
  args: ["version"],
  stdout: "null",
  stderr: "null",
})
  .output().then((r) => r.success, () => false);

Deno.test("name constraint helpers: networks and DNS suffixes", () => {
  assert(inNetwork("192.168.1.10", "192.168.0.0/16"));
  assert(inNetwork("172.31.255.1", "172.16.0.0/12"));
  assert(!inNetwork("172.32.0.1", "172.16.0.0/12"));
  assert(!inNetwork("8.8.8.8", "10.0.0.0/8"));
  assert(dnsWithin("gatebox.local", "local"));
  assert(dnsWithin("LOCAL", "local"));
  assert(!dnsWithin("evillocal", "local"));
});

Deno.test("local CA: created once, reused; the server certificate is re-issued for a new address under the same CA", async () => {
  await withDir(async (dir) => {
    const first = await loadOrCreateTls({
      dir,
      dnsNames: ["localhost", "gatebox", "gatebox.local"],
      ips: ["127.0.0.1", "192.168.1.10"],
    });
    assertEquals(first.created, "ca");
    assertEquals(first.excluded, []);
    const again = await loadOrCreateTls({
      dir,
      dnsNames: ["localhost", "gatebox"],
      ips: ["127.0.0.1"],
    });
    assertEquals(again.created, "none");
    assertEquals(again.serverFingerprint, first.serverFingerprint);
    const moved = await loadOrCreateTls({
      dir,
      dnsNames: ["localhost", "gatebox"],
      ips: ["127.0.0.1", "192.168.7.7", "8.8.8.8"],
    });
    assertEquals(moved.created, "server");
    assertEquals(moved.caFingerprint, first.caFingerprint);
    assert(moved.serverFingerprint !== first.serverFingerprint);
    assertEquals(moved.excluded, ["8.8.8.8"], "a public address is not in the constrained CA");
    assertEquals(moved.ips, ["127.0.0.1", "192.168.7.7"]);
    assertEquals(
      (await Deno.stat(`${dir}/ca.key`)).mode! & 0o777,
      0o600,
      "the CA key is readable by the gateway only",
    );
    assertEquals(
      await fingerprint(fromPem(moved.caPem, "CERTIFICATE")!),
      moved.caFingerprint,
    );
  });
});

Deno.test("local CA: a server certificate close to expiry is re-issued", async () => {
  await withDir(async (dir) => {
    const now = Date.UTC(2026, 0, 1);
    const first = await loadOrCreateTls({
      dir,
      dnsNames: ["localhost"],
      ips: ["127.0.0.1"],
      now: new Date(now),
    });
    const later = await loadOrCreateTls({
      dir,
      dnsNames: ["localhost"],
      ips: ["127.0.0.1"],
      now: new Date(now + 800 * 86_400_000),
    });
    assertEquals(later.created, "server");
    assert(later.notAfter > first.notAfter);
  });
});

Deno.test({
  name: "local CA: openssl reads both certificates and verifies the chain for the names",
  ignore: !hasOpenssl,
  fn: async () => {
    await withDir(async (dir) => {
      const tls = await loadOrCreateTls({
        dir,
        dnsNames: ["localhost", "gatebox", "gatebox.local"],
        ips: ["127.0.0.1", "10.1.2.3"],
      });
      const text = await openssl(["x509", "-noout", "-text", "-in", `${dir}/server.pem`]);
      assertEquals(text.code, 0, text.out);
      for (
        const want of [
          "DNS:gatebox.local",
          "IP Address:10.1.2.3",
          "TLS Web Server Authentication",
          "ecdsa-with-SHA256",
          "CA:FALSE",
        ]
      ) assert(text.out.includes(want), `${want} in\n${text.out}`);
      const ca = await openssl(["x509", "-noout", "-text", "-in", `${dir}/ca.pem`]);
      assert(ca.out.includes("CA:TRUE, pathlen:0"), ca.out);
      assert(ca.out.includes("Permitted:"), ca.out);
      const fp = await openssl([
        "x509",
        "-noout",
        "-fingerprint",
        "-sha256",
        "-in",
        `${dir}/ca.pem`,
      ]);
      assert(fp.out.includes(tls.caFingerprint), `${fp.out} vs ${tls.caFingerprint}`);
      for (
        const [flag, name] of [["-verify_hostname", "gatebox.local"], ["-verify_ip", "10.1.2.3"]]
      ) {
        const v = await openssl([
          "verify",
          "-CAfile",
          `${dir}/ca.pem`,
          flag!,
          name!,
          `${dir}/server.pem`,
        ]);
        assertEquals(v.code, 0, v.out);
      }
      const outside = await openssl([
        "verify",
        "-CAfile",
        `${dir}/ca.pem`,
        "-verify_hostname",
        "example.com",
        `${dir}/server.pem`,
      ]);
      assert(outside.code !== 0, "a name outside the certificate is refused");
    });
  },
});

Deno.test("local CA: Deno serves HTTPS with it and a client trusting the CA connects", async () => {
  await withDir(async (dir) => {
    const tls = await loadOrCreateTls({ dir, dnsNames: ["localhost"], ips: ["127.0.0.1"] });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: tls.cert, key: tls.key, onListen: () => {} },
      () => new Response("ok"),
    );
    const client = Deno.createHttpClient({ caCerts: [tls.caPem] });
    try {
      const port = (server.addr as Deno.NetAddr).port;
      for (const host of ["127.0.0.1", "localhost"]) {
        const res = await fetch(`https://${host}:${port}/`, { client });
        assertEquals(await res.text(), "ok");
      }
    } finally {
      client.close();
      await server.shutdown();
    }
  });
});
