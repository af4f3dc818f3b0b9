/**
 * Do-not-disturb (phone-protocol.md #11 `dnd`): the order, its checks and reply, and what it
 * does to presence (not rung, not answered for in NS), and the `audioLaw` of `call`/`talk begin`.
 */

import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock, nullLogger } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import { BindingStore } from "../store/bindings.ts";
import { PhoneHub, type PhoneSocket } from "./hub.ts";
import { PhoneService } from "./service.ts";
import { MAX_DND_MS, parseGatewayMessage, parsePhoneMessage } from "./messages.ts";
import type { CallManager } from "../call/manager.ts";

class FakeSocket implements PhoneSocket {
  out: Record<string, unknown>[] = [];
  closedWith: number | undefined;
  send(data: string | Uint8Array): void {
    if (typeof data === "string") this.out.push(JSON.parse(data));
  }
  close(code?: number): void {
    this.closedWith = code;
  }
  last(): Record<string, unknown> {
    return this.out.at(-1)!;
  }
}

const ID = { uid: "359608060142756", roomAddress: "Y00010108090", community: "花苑" };
const ROOM = "00010108090";

async function setup(audioLaw?: (door: string) => "ulaw" | "alaw" | undefined) {
  const kv = await Deno.openKv(":memory:");
  const bindings = new BindingStore(kv);
  const { token } = await bindings.add(ID);
  const other = await bindings.add({ ...ID, uid: "u2" });
  const clock = new FakeClock();
  const joined: string[] = [];
  const metrics = new Metrics();
  const hub = new PhoneHub({
    clock,
    logger: nullLogger,
    metrics,
    heartbeatTimeoutMs: 6000,
    onJoined: (uid, room) => joined.push(`${uid}:${room}`),
    ...(audioLaw ? { audioLaw } : {}),
  });
  const manager = {
    phoneRequest: () => ({ ok: false as const, code: "not_in_call" as const }),
    byRoom: () => undefined,
  } as unknown as Pick<CallManager, "phoneRequest" | "byRoom">;
  const service = new PhoneService({
    hub,
    manager,
    bindings,
    logger: nullLogger,
    metrics,
    mediaPort: 8303,
    clock,
  });
  const login = async (uid = ID.uid, tok = token) => {
    const socket = new FakeSocket();
    const session = hub.attach(socket, "10.0.1.1");
    await service.onText(session, JSON.stringify({ order: "login", ...ID, uid, token: tok }));
    assertEquals(socket.last().order, "login ok");
    return { socket, session };
  };
  const close = () => {
    hub.close();
    kv.close();
  };
  return { token, otherToken: other.token, clock, hub, service, login, joined, close };
}

Deno.test("dnd: parsed with its identity and an integer `until`; `dnd ok` parses back", () => {
  assertEquals(parsePhoneMessage(JSON.stringify({ order: "dnd", ...ID, until: 0 })), {
    order: "dnd",
    ...ID,
    until: 0,
  });
  for (const until of [-1, 1.5, "soon", null]) {
    const m = parsePhoneMessage(JSON.stringify({ order: "dnd", ...ID, until }));
    assert("error" in m && m.error.ref === "dnd", JSON.stringify(m));
  }
  const noRoom = parsePhoneMessage(JSON.stringify({ order: "dnd", uid: ID.uid, until: 0 }));
  assert("error" in noRoom && /roomAddress/.test(noRoom.error.message));
  assertEquals(parseGatewayMessage(JSON.stringify({ order: "dnd ok", ...ID, until: 5 })), {
    order: "dnd ok",
    ...ID,
    until: 5,
  });
});

Deno.test("dnd: before login, for a room not logged in, then on and off with `dnd ok`", async () => {
  const t = await setup();
  try {
    const socket = new FakeSocket();
    const session = t.hub.attach(socket);
    await t.service.onText(session, JSON.stringify({ order: "dnd", ...ID, until: 0 }));
    assertEquals([socket.last().code, socket.last().ref], ["login_required", "dnd"]);

    const a = await t.login();
    await t.service.onText(
      a.session,
      JSON.stringify({ order: "dnd", ...ID, roomAddress: "Y00010108091", until: 1 }),
    );
    assertEquals([a.socket.last().code, a.socket.last().ref], ["not_bound", "dnd"]);
    await t.service.onText(a.session, JSON.stringify({ order: "dnd", ...ID, uid: "x", until: 1 }));
    assertEquals(a.socket.last().code, "unauthorized");

    const until = t.clock.wallNow() + 60_000;
    await t.service.onText(a.session, JSON.stringify({ order: "dnd", ...ID, until }));
    assertEquals(a.socket.last(), { order: "dnd ok", ...ID, until });
    assertEquals(t.hub.online(ROOM), []);
    assert(!t.hub.roomOnline(ROOM), "NS is not answered for a room whose phones all are in DND");

    await t.service.onText(a.session, JSON.stringify({ order: "dnd", ...ID, until: 0 }));
    assertEquals(a.socket.last(), { order: "dnd ok", ...ID, until: 0 });
    assertEquals(t.hub.online(ROOM), [ID.uid]);
  } finally {
    t.close();
  }
});

Deno.test("dnd: ends by itself at `until`, a time past is off, more than 7 days is cut", async () => {
  const t = await setup();
  try {
    const a = await t.login();
    const send = (until: number) =>
      t.service.onText(a.session, JSON.stringify({ order: "dnd", ...ID, until }));
    await send(t.clock.wallNow() + 3000);
    assertEquals(t.hub.online(ROOM), []);
    t.clock.advance(2000);
    await send(t.clock.wallNow() + 1000); // heard: presence stays
    t.clock.advance(1000);
    assertEquals(t.hub.online(ROOM), [ID.uid], "online again once `until` has passed");

    await send(t.clock.wallNow() - 1);
    assertEquals([a.socket.last().until, t.hub.online(ROOM)], [0, [ID.uid]]);

    await send(t.clock.wallNow() + 30 * 24 * 3600 * 1000);
    assertEquals(a.socket.last().until, t.clock.wallNow() + MAX_DND_MS);
  } finally {
    t.close();
  }
});

Deno.test("dnd: only the phone in DND is skipped; the room stays online through the other", async () => {
  const t = await setup();
  try {
    const a = await t.login();
    await t.login("u2", t.otherToken);
    await t.service.onText(
      a.session,
      JSON.stringify({ order: "dnd", ...ID, until: t.clock.wallNow() + 60_000 }),
    );
    assertEquals(t.hub.online(ROOM), ["u2"]);
    assert(t.hub.roomOnline(ROOM));
  } finally {
    t.close();
  }
});

Deno.test("dnd: a newer connection of the phone keeps its DND and is not rung by the call ringing", async () => {
  const t = await setup();
  try {
    const a = await t.login();
    await t.service.onText(
      a.session,
      JSON.stringify({ order: "dnd", ...ID, until: t.clock.wallNow() + 60_000 }),
    );
    t.joined.length = 0;
    await t.login();
    assertEquals(a.socket.closedWith, 4002);
    assertEquals(t.joined, [], "a phone in DND does not join the ringing call");
    assertEquals(t.hub.online(ROOM), []);
  } finally {
    t.close();
  }
});

Deno.test("audioLaw: `call` and `talk begin` name the door's law (μ-law when unknown), others not", async () => {
  const t = await setup((door) => (door === "M00010200" ? "alaw" : undefined));
  try {
    const a = await t.login();
    const call = { doorAddress: "M00010200", callId: "c1" };
    t.hub.send(ID.uid, ROOM, { order: "call", ...call, mediaKey: "k" });
    assertEquals(a.socket.last().audioLaw, "alaw");
    t.hub.send(ID.uid, ROOM, { order: "talk begin", ...call });
    assertEquals(a.socket.last().audioLaw, "alaw");
    t.hub.send(ID.uid, ROOM, {
      order: "call",
      doorAddress: "M00010100",
      callId: "c2",
      mediaKey: "k",
    });
    assertEquals(a.socket.last().audioLaw, "ulaw");
    t.hub.send(ID.uid, ROOM, { order: "unlock success", ...call });
    assertEquals("audioLaw" in a.socket.last(), false);
    const parsed = parseGatewayMessage(JSON.stringify(a.socket.out.at(-2)));
    assert(!("error" in parsed) && parsed.order === "call" && parsed.audioLaw === "ulaw");
  } finally {
    t.close();
  }
});

Deno.test("audioLaw: a hub without the door's law sends none (the field is optional)", async () => {
  const t = await setup();
  try {
    const a = await t.login();
    t.hub.send(ID.uid, ROOM, {
      order: "call",
      doorAddress: "M00010100",
      callId: "c",
      mediaKey: "k",
    });
    assertEquals("audioLaw" in a.socket.last(), false);
  } finally {
    t.close();
  }
});
