/**
 * The call manager with phones on other gateways (`RemotePhones`, several gateways): the ring
 * group is local ∪ remote, a notice for a phone not connected here goes to the remote port, a
 * remote phone's requests take the same checks, and a remote phone reported gone leaves the call
 * (LINEUSE when it was the last one ringing).
 */

import { assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../testing/mod.ts";
import { nullLogger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { EventBus } from "../events/bus.ts";
import { doorCallEvent as callEvent, FakeDoor } from "../testing/fake_door.ts";
import { CallManager } from "./manager.ts";
import type { CallNotice, LiveCallInfo } from "./ports.ts";

const ROOM = "00010108090";
const DOOR = { hostname: "10.0.0.5", port: 8302 };
const parties = {
  caller: "M00010100",
  callerIp: "10.0.0.5",
  callee: "S00010108090",
  calleeIp: "10.0.0.2",
};

function setup(local: string[], remote: string[]) {
  const door = new FakeDoor();
  const log: string[] = [];
  const m = new CallManager({
    door,
    phones: {
      send: (uid, _r, n: CallNotice) =>
        local.includes(uid) && (log.push(`local ${uid} ${n.order}`), true),
      online: () => local,
    },
    remote: {
      online: () => remote,
      send: (uid, _r, n: CallNotice, call: LiveCallInfo) => {
        if (!remote.includes(uid)) return false;
        log.push(
          `remote ${uid} ${n.order}${
            n.order === "call" ? ` key=${call.mediaKeyOf(uid) !== undefined}` : ""
          }`,
        );
        return true;
      },
    },
    clock: new FakeClock(),
    logger: nullLogger,
    events: new EventBus({ logger: nullLogger, metrics: new Metrics() }),
    ringTimeoutMs: 30_000,
    talkTimeoutMs: 180_000,
  });
  return { door, log, m };
}

Deno.test("manager: a room whose phones are here and on another gateway rings both; the remote talk wins", async () => {
  const { door, log, m } = setup(["a"], ["b", "a"]);
  m.onDoorEvent(callEvent(parties, DOOR));
  assertEquals(log.splice(0), ["local a call", "remote b call key=true"]);
  const callId = m.byRoom(ROOM)!.callId;
  // The remote phone's requests: checked like a local phone's.
  assertEquals(m.phoneRequest("b", ROOM, "call ok", "M00010999").ok, false);
  assertEquals(m.phoneRequest("b", ROOM, "call ok", "M00010100", callId).ok, true);
  assertEquals(m.phoneRequest("b", ROOM, "talk", "M00010100").ok, true);
  assertEquals(door.log, ["answer CALLANSWER 10.0.0.5", "ask CALLSTART 10.0.0.5"]);
  door.reply("CALLSTART");
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(m.byRoom(ROOM)!.talker, "b");
  assertEquals(log, ["remote b talk begin", "local a over"]);
});

Deno.test("manager: the only phone is remote and is reported gone: the door gets LINEUSE", () => {
  const { door, log, m } = setup([], ["b"]);
  m.onDoorEvent(callEvent(parties, DOOR));
  assertEquals(log, ["remote b call key=true"]);
  m.phoneLeft("b", [ROOM]);
  assertEquals(door.log, ["answer LINEUSE 10.0.0.5"]);
  assertEquals(m.size, 0);
});
