/**
 * `CallRouter` against a fake link (no NATS): what it publishes and when it gives a hosted call
 * up.
 */

import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import type { CallNotice, LiveCallInfo, Peer } from "../call/ports.ts";
import type { CallParties } from "../protocol/types.ts";
import type { ClusterLink } from "./link.ts";
import type { Presence } from "./presence.ts";
import { CallRouter } from "./router.ts";
import { FakeSub } from "./fake_sub.ts";

const DOOR: Peer = { hostname: "10.0.0.7", port: 8300 };
const ROOM = "00010108090";

/** A NATS connection that records what is published. */
function fakeNc() {
  const subs = new Map<string, FakeSub>();
  const published: { subject: string; data: Uint8Array | string }[] = [];
  return {
    published,
    publish(subject: string, data: Uint8Array | string) {
      published.push({ subject, data });
    },
    request() {
      return Promise.resolve({ json: () => ({ ok: true }) });
    },
    subs,
    subscribe(subject: string) {
      const sub = new FakeSub();
      subs.set(subject, sub);
      return sub;
    },
  };
}

function fakeLink(nc: ReturnType<typeof fakeNc>) {
  return {
    gatewayId: "gw1",
    leafUp: true,
    hubUp: true,
    nc,
    onChange: () => () => {},
  } as unknown as ClusterLink;
}

function router(nc: ReturnType<typeof fakeNc>, sent: [string, CallNotice][] = []) {
  const presence = {
    gatewayOf: () => "gw2",
    online: () => ["remote-uid"],
    lost: () => {},
  } as unknown as Presence;
  const noop = () => {};
  return new CallRouter({
    link: fakeLink(nc),
    presence,
    logger: { info: noop, warn: noop, debug: noop, error: noop } as never,
    phones: {
      send: (uid: string, _room: string, n: CallNotice) => {
        sent.push([uid, n]);
        return true;
      },
    } as never,
    calls: () => ({ byRoom: () => undefined }) as never,
    relay: { open: noop, route: noop, close: noop, onDoorMedia: noop },
    sendToDoor: noop,
  });
}

const info: LiveCallInfo = {
  callId: "c1",
  mediaKeyOf: () => undefined,
  roomKey: ROOM,
  door: DOOR,
  parties: {} as CallParties,
  doorAddress: "M00010100",
};

Deno.test("router: door media published for a remote viewer is the router's own copy", () => {
  const nc = fakeNc();
  const r = router(nc);
  r.media.open(info);
  r.send(
    "remote-uid",
    ROOM,
    { order: "call", doorAddress: "M00010100", callId: "c1" } as CallNotice,
    info,
  );
  r.media.route("c1", ["remote-uid"], undefined);
  // The door socket's receive buffer: pooled, reused for the next datagram once the tap returns,
  // while the NATS client keeps what it publishes until its next flush (or a reconnection).
  const datagram = new Uint8Array([1, 2, 3, 4]);
  r.onDoorMedia(datagram, DOOR);
  datagram.fill(9);
  const down = nc.published.filter((p) => p.subject === "media.c1.down");
  assertEquals(down.length, 1);
  assert(down[0]!.data instanceof Uint8Array);
  assertEquals([...down[0]!.data], [1, 2, 3, 4]);
});

/** A `call` notice from gateway `origin` for phone `uid` of ROOM. */
function notice(origin: string, callId: string, uid: string) {
  return {
    origin,
    uid,
    roomKey: ROOM,
    notice: { order: "call", doorAddress: "M00010100", callId },
    call: { callId, roomKey: ROOM, doorAddress: "M00010100", door: DOOR, parties: {} },
  };
}

Deno.test("router: a hosted call whose origin fell silent is over for its phones", async () => {
  const nc = fakeNc();
  const sent: [string, CallNotice][] = [];
  const r = router(nc, sent);
  r.start();
  try {
    assertEquals(await nc.subs.get("call.gw1.notice")!.deliver(notice("gw2", "c1", "p1")), {
      ok: true,
    });
    assertEquals(r.control.byRoom(ROOM)?.callId, "c1");
    r.originGone("gw3"); // another gateway: nothing changes
    assertEquals(r.control.byRoom(ROOM)?.callId, "c1");
    r.originGone("gw2");
    assertEquals(r.control.byRoom(ROOM), undefined);
    assertEquals(sent.map(([uid, n]) => [uid, n.order, n.callId]), [
      ["p1", "call", "c1"],
      ["p1", "over", "c1"],
    ]);
  } finally {
    await r.stop();
  }
});

Deno.test("router: a new call from the same origin and room replaces a hosted one left over", async () => {
  const nc = fakeNc();
  const sent: [string, CallNotice][] = [];
  const r = router(nc, sent);
  r.start();
  try {
    const notices = nc.subs.get("call.gw1.notice")!;
    await notices.deliver(notice("gw2", "c1", "p1")); // its close never came (origin restarted)
    await notices.deliver(notice("gw2", "c2", "p1"));
    assertEquals(r.control.byRoom(ROOM)?.callId, "c2");
    assertEquals(r.control.phoneRequest("p1", ROOM, "call ok", "M00010100", "c2"), {
      ok: true,
      callId: "c2",
    });
    assertEquals(sent.map(([uid, n]) => [uid, n.order, n.callId]), [
      ["p1", "call", "c1"],
      ["p1", "over", "c1"],
      ["p1", "call", "c2"],
    ]);
  } finally {
    await r.stop();
  }
});

Deno.test("router: the loops of ended subscriptions do not pile up", async () => {
  const nc = fakeNc();
  const r = router(nc);
  r.start();
  try {
    const base = r.loops;
    assert(base > 0, "the router's own subscriptions run");
    for (let i = 0; i < 5; i++) {
      await nc.subs.get("call.gw1.notice")!.deliver(notice("gw2", `c${i}`, "p1"));
      assertEquals(r.loops, base + 1, "a hosted call's media loop");
      void nc.subs.get("call.gw1.close")!.deliver({ callId: `c${i}` });
      for (let t = 0; t < 20 && r.loops !== base; t++) await new Promise((x) => setTimeout(x, 1));
      assertEquals(r.loops, base, "gone with its call");
    }
  } finally {
    await r.stop();
  }
});
