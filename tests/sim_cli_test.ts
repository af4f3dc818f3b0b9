/**
 * The simulators as an installer meets them: `sim --help`, `sim door --multicast-interface`'s
 * flag errors, and `sim phone` against a gateway serving `wss://` with a self-signed certificate
 * (made here with openssl): without `--ca` the real certificate error, with it a completed call.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { denoCommand, RUN_FLAGS } from "./helpers/process.ts";
import { inNetns } from "./helpers/netns.ts";
import { runBounded } from "./helpers/run_bounded.ts";
import { TIME_SCALE } from "./helpers/scale.ts";
import { startTestGateway } from "./helpers/gateway.ts";
import { openDoor } from "./helpers/sims.ts";
import { doorSimCommand } from "../src/sim/door_cli.ts";
import { phoneSimCommand } from "../src/sim/phone_cli.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROOM = "Y00010108090";

async function main(...args: string[]) {
  const [cmd, ...pre] = denoCommand();
  return await runBounded(cmd!, [...pre, "run", ...RUN_FLAGS, MAIN, ...args], 20_000 * TIME_SCALE);
}

Deno.test("sim --help, and sim alone, list the simulators; an unknown one exits 2", async () => {
  for (const args of [["sim", "--help"], ["sim"], ["sim", "-h"]]) {
    const r = await main(...args);
    assertEquals(r.code, 0, `${args.join(" ")}: ${r.err}`);
    assert(/sim door \[flags\]/.test(r.out) && /sim phone \[flags\]/.test(r.out), r.out);
    assert(r.out.includes("--multicast-interface") && r.out.includes("--ca FILE"), r.out);
  }
  const bad = await main("sim", "lift");
  assertEquals(bad.code, 2, bad.err);
  assert(bad.err.startsWith('Cannot run sim lift: expected "sim door" or "sim phone"'), bad.err);
});

Deno.test("sim door --multicast-interface: an unknown interface, or one contradicting --ip, exits 2 naming it", async () => {
  const lines: string[] = [];
  const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
  assertEquals(await doorSimCommand(["--multicast-interface", "nosuch9"], io), 2);
  assert(
    lines[0]!.startsWith('Cannot use --multicast-interface "nosuch9": no interface'),
    lines[0],
  );
  lines.length = 0;
  assertEquals(await doorSimCommand(["--multicast-interface", "lo", "--ip", "127.0.0.3"], io), 2);
  assert(
    lines[0]!.startsWith('Cannot use --ip 127.0.0.3 with --multicast-interface "lo"'),
    lines[0],
  );
  lines.length = 0;
  assertEquals(await doorSimCommand(["--help"], io), 0);
  assert(lines.join("\n").includes("--multicast-interface IF"));
});

Deno.test("sim phone --ca: a missing file or a non-PEM exits 2; --ca with ws:// is refused", async () => {
  const err: string[] = [];
  const io = { println: () => {}, eprintln: (l: string) => err.push(l) };
  const base = ["--uid", "u", "--token", "t", "--room", ROOM, "--url", "wss://127.0.0.1:1/phone"];
  assertEquals(await phoneSimCommand([...base, "--ca", "/nonexistent/ca.pem"], io), 2);
  assertEquals(err.at(-1), "Cannot read /nonexistent/ca.pem (--ca): no such file");
  const notPem = await Deno.makeTempFile({ suffix: ".pem" });
  try {
    await Deno.writeTextFile(notPem, "hello");
    assertEquals(await phoneSimCommand([...base, "--ca", notPem], io), 2);
    assert(err.at(-1)!.startsWith(`Cannot use ${notPem} (--ca): no PEM certificate`), err.at(-1));
  } finally {
    await Deno.remove(notPem);
  }
  const ws = ["--uid", "u", "--token", "t", "--room", ROOM, "--url", "ws://127.0.0.1:1/phone"];
  assertEquals(await phoneSimCommand([...ws, "--ca", "/x.pem"], io), 2);
  assert(err.at(-1)!.includes("--ca is for wss:// URLs"), err.at(-1));
});

/** A self-signed server certificate for 127.0.0.1 (CA:FALSE: Deno refuses a CA as the server's). */
async function selfSigned(dir: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  const r = await runBounded("openssl", [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
    ...["-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=intercom-gateway test"],
    ...["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
    ...["-addext", "basicConstraints=critical,CA:FALSE"],
  ], 20_000);
  if (r.code !== 0) throw new Error(`Cannot make a certificate with openssl: ${r.err}`);
  return { cert, key };
}

const hasOpenssl = await new Deno.Command("openssl", { args: ["version"], stdout: "null" })
  .output().then((r) => r.success, () => false);

Deno.test({
  name: "sim phone over wss://: the certificate error as it is without --ca; a call with --ca",
  ignore: !inNetns || !hasOpenssl,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "gw-tls-" });
    const { cert, key } = await selfSigned(dir);
    const gw = await startTestGateway({ tlsCert: cert, tlsKey: key });
    try {
      const url = `wss://127.0.0.1:${gw.app.addresses.http.port}/phone`;
      const token = await gw.bind("u-tls", ROOM);
      const base = ["--url", url, "--uid", "u-tls", "--token", token, "--room", ROOM];

      const out: string[] = [];
      const err: string[] = [];
      const io = { println: (l: string) => out.push(l), eprintln: (l: string) => err.push(l) };
      assertEquals(await phoneSimCommand([...base, "--timeout", "10"], io), 1);
      assertEquals(err.length, 1, err.join("\n"));
      assert(
        err[0]!.startsWith(`Cannot connect to ${url}: invalid peer certificate: UnknownIssuer`),
        err[0],
      );
      assert(err[0]!.includes("--ca FILE"), err[0]);

      out.length = 0;
      err.length = 0;
      const phone = phoneSimCommand([
        ...base,
        ...["--ca", cert, "--talk-after", "0.2", "--hangup-after", "0.3"],
        ...["--media-bind", "127.0.0.1", "--timeout", "20"],
      ], io);
      const deadline = Date.now() + 10_000;
      while (!out.some((l) => l.includes("← login ok")) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const door = await openDoor();
      try {
        const summary = await door.start();
        assertEquals(summary.completed, true, JSON.stringify(summary));
      } finally {
        await door.close();
      }
      assertEquals(await phone, 0, [...out, ...err].join("\n"));
      assert(out.some((l) => l.includes("done: 1 call(s) completed")), out.join("\n"));
    } finally {
      await gw.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
