import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { formatTraceLine, type TraceLine, traceMatches } from "./trace.ts";

const door: TraceLine = {
  at: Date.UTC(2026, 0, 1, 12, 0, 1, 250),
  kind: "door",
  direction: "in",
  peer: "10.0.0.5:8302",
  summary: "ASK CALL M00010100 10.0.0.5 → S00010108090 10.0.0.2",
  length: 62,
};
const phone: TraceLine = {
  at: door.at,
  kind: "phone",
  direction: "out",
  peer: "10.0.1.9",
  summary: "call uid=u1 room=Y00010108090 door=M00010100 call=c1",
  length: 140,
};
const other: TraceLine = {
  ...door,
  peer: "10.0.0.6:8302",
  summary: "ASK CALLCONFIRM M00010200 10.0.0.6 → S00010208090 10.0.0.2",
};

Deno.test("trace: one line with time, direction, peer, operation, addresses, length", () => {
  assertEquals(
    formatTraceLine(door),
    "12:00:01.250 ← door  10.0.0.5:8302         ASK CALL M00010100 10.0.0.5 → S00010108090 10.0.0.2  (62 B)",
  );
  assert(formatTraceLine(phone).includes("→ phone 10.0.1.9"));
});

Deno.test("trace: filter by door (address or its IP) and by room (its 11 digits, S or Y)", () => {
  const ips = ["10.0.0.5"];
  assert(traceMatches(door, { door: "M00010100" }, ips));
  assert(traceMatches(phone, { door: "M00010100" }, ips));
  assert(!traceMatches(other, { door: "M00010100" }, ips));
  assert(
    traceMatches(
      { ...other, summary: "NS ASK ...", peer: "10.0.0.5:8302" },
      { door: "M00010100" },
      ips,
    ),
  );
  assert(traceMatches(door, { room: "Y00010108090" }));
  assert(traceMatches(phone, { room: "00010108090" }));
  assert(!traceMatches(other, { room: "Y00010108090" }));
  assert(traceMatches(other, {}));
});
