/**
 * Sends junk datagrams at a rate, from its own process (so that the flood does not share the
 * event loop of the gateway under test). Usage: `junk_sender.ts HOST PORT RATE SECONDS`.
 *
 * @module
 */

const [host = "127.0.0.1", port = "8302", rate = "10000", seconds = "3"] = Deno.args;
const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.9", port: 0 });
const target = { transport: "udp" as const, hostname: host, port: Number(port) };
const magic = new TextEncoder().encode("XXXCID");
const samples = [
  new Uint8Array(0),
  magic,
  crypto.getRandomValues(new Uint8Array(57)),
  Uint8Array.from([...magic, 150, 1, 99, ...new Uint8Array(60)]),
  Uint8Array.from([...magic, 154, 1, ...new Uint8Array(48)]),
  Uint8Array.from([...magic, 150, 2, 9, ...new Uint8Array(52)]),
  crypto.getRandomValues(new Uint8Array(1400)),
];
const start = performance.now();
const end = start + Number(seconds) * 1000;
let sent = 0;
// Paced by elapsed time: each tick sends what the rate says is due, without awaiting the sends.
while (performance.now() < end) {
  const due = Math.floor(((performance.now() - start) / 1000) * Number(rate));
  while (sent < due) sock.send(samples[sent++ % samples.length]!, target).catch(() => 0);
  await new Promise((r) => setTimeout(r, 5));
}
await new Promise((r) => setTimeout(r, 100));
sock.close();
// deno-lint-ignore no-console
console.log(sent);
