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

const DOOR: Peer = { hostname: "10.0.0.7", port: 8300 };
const ROOM = "00010108090";

/** A NATS connection that records what is published. */
function fakeNc() {
  const published: { subject: string; data: Uint8Array | string }[] = [];
  return {
    published,
    publish(subject: string, data: Uint8Array | string) {
      published.push({ subject, data });
    },
    request() {
      return Promise.resolve({ json: () => ({ ok: true }) });
    },
    subscribe() {
      return { unsubscribe() {}, async *[Symbol.asyncIterator]() {} };
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

function router(nc: ReturnType<typeof fakeNc>) {
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
    phones: { send: () => true } as never,
    calls: () => ({}) as never,
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
