// deno-lint-ignore-file no-console
// relay_node.mjs - the reference relay in Node `dgram` (see README.md for the interface).
//
//   node relay_node.mjs PORT_A PORT_B DOOR_BASE PHONE_BASE CALLS
//
// Also runs unchanged under Deno's Node compatibility layer:
//   deno run --allow-net relay_node.mjs ...
import dgram from "node:dgram";
import process from "node:process";

const [pa, pb, doorBase, phoneBase, calls] = process.argv.slice(2).map(Number);
const a = dgram.createSocket("udp4");
const b = dgram.createSocket("udp4");

/** source port -> destination port, one table per direction */
const aToB = new Map();
const bToA = new Map();
for (let i = 0; i < calls; i++) {
  aToB.set(doorBase + i, phoneBase + i);
  bToA.set(phoneBase + i, doorBase + i);
}

a.on("message", (msg, rinfo) => {
  const port = aToB.get(rinfo.port);
  if (port !== undefined) b.send(msg, port, "127.0.0.1");
});
b.on("message", (msg, rinfo) => {
  const port = bToA.get(rinfo.port);
  if (port !== undefined) a.send(msg, port, "127.0.0.1");
});

let bound = 0;
const ready = () => {
  if (++bound === 2) console.log("READY");
};
a.bind(pa, "127.0.0.1", ready);
b.bind(pb, "127.0.0.1", ready);
