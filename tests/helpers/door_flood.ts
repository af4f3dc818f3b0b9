/**
 * Floods the door port with well-formed door packets, each from a new door address, from its
 * own process (so that the flood does not share the event loop of the gateway under test).
 * Usage: `door_flood.ts HOST PORT RATE SECONDS KIND SOURCES [ROOM]`
 *
 * - KIND `ns`: NS asks for ROOM (default `S00020208090`); `call`: CALL asks to ROOM.
 * - SOURCES: how many source IPs, 127.0.1.1 … (each packet's claimed IP is its source IP).
 *
 * Prints `{"sent": N}`. Bounded by RATE × SECONDS; meant for the private test namespace only.
 *
 * @module
 */

import { encodeCall, encodeNsAsk, MSG_TYPE, OP } from "../../src/protocol/mod.ts";

const [
  host = "127.0.0.1",
  port = "8302",
  rate = "1000",
  seconds = "2",
  kind = "ns",
  sources = "1",
] = Deno.args;
const room = Deno.args[6] ?? "S00020208090";
const ips = Array.from({ length: Number(sources) }, (_, i) => `127.0.1.${i + 1}`);
const socks = ips.map((ip) => Deno.listenDatagram({ transport: "udp", hostname: ip, port: 0 }));
const target = { transport: "udp" as const, hostname: host, port: Number(port) };

/** Packet `n`: a door address never used before (M + 7 digits: 8 significant characters). */
function packet(n: number): Uint8Array {
  const ip = ips[n % ips.length]!;
  const door = `M${String(n % 10_000_000).padStart(7, "0")}0`;
  return kind === "call"
    ? encodeCall({
      type: MSG_TYPE.ASK,
      op: OP.CALL,
      caller: door,
      callerIp: ip,
      callee: room,
      calleeIp: "0.0.0.0",
    })
    : encodeNsAsk({ asker: door, askerIp: ip, target: room, targetIp: "0.0.0.0" });
}

const start = performance.now();
const end = start + Number(seconds) * 1000;
let sent = 0;
// Paced by elapsed time: each tick sends what the rate says is due, without awaiting the sends.
while (performance.now() < end) {
  const due = Math.floor(((performance.now() - start) / 1000) * Number(rate));
  while (sent < due) {
    socks[sent % socks.length]!.send(packet(sent), target).catch(() => 0);
    sent++;
  }
  await new Promise((r) => setTimeout(r, 5));
}
await new Promise((r) => setTimeout(r, 100));
for (const s of socks) s.close();
// deno-lint-ignore no-console
console.log(JSON.stringify({ sent }));
