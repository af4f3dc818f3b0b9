import assert from "node:assert/strict";
import {
  COLLECT_LENGTH,
  COUNTER,
  engineLibraryPath,
  ipToNet,
  netToIp,
  openNativeEngine,
  STAT,
} from "./engine.ts";
import { encodeMedia, LENGTH, OFFSET } from "../../protocol/mod.ts";

const LIB = engineLibraryPath(new URL("../../../dist/native/", import.meta.url).pathname);
// Loaded once for the whole file (the library stays loaded for the process, as in the gateway).
await openNativeEngine({
  library: LIB,
  doorPort: 0,
  mediaPort: 0,
  doorReuse: false,
  magic: "XXXCID",
}).stop();

const PARTIES = {
  caller: "M0010100101",
  callerIp: "127.0.0.2",
  callee: "S0001010101",
  calleeIp: "10.0.0.9",
};

function media(op: 7 | 8, dataType: number, payloadOffset: 77 | 86 = 77, n = 64): Uint8Array {
  return encodeMedia({
    ...PARTIES,
    op,
    timestamp: 1234,
    dataType,
    frameNo: 9,
    payloadOffset,
    payload: new Uint8Array(n).fill(0x5a),
  });
}

function sock(hostname: string) {
  return Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
}

async function recvWithin(
  conn: Deno.DatagramConn,
  ms: number,
): Promise<Uint8Array | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    conn.receive().then(([d]) => d),
    new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), ms))),
  ]);
  clearTimeout(timer);
  return r;
}

async function withEngine(fn: (e: ReturnType<typeof openNativeEngine>) => Promise<void>) {
  const e = openNativeEngine({
    library: LIB,
    doorPort: 0,
    mediaPort: 0,
    doorReuse: true,
    magic: "XXXCID",
  });
  try {
    await fn(e);
  } finally {
    await e.stop();
  }
}

const local = (port: number) => ({ hostname: "127.0.0.1", port });

Deno.test("native engine: addresses convert as in_addr words", () => {
  assert.equal(netToIp(ipToNet("192.168.1.20")), "192.168.1.20");
  assert.throws(() => ipToNet("::1"), /Cannot use address ::1: not IPv4/);
});

Deno.test("native engine: unrouted datagrams reach the ports, and the ports send", async () => {
  await withEngine(async (e) => {
    const door = sock("127.0.0.2");
    try {
      const ask = new TextEncoder().encode("XXXCID signalling");
      await door.send(ask, { transport: "udp", ...local(e.door.local.port) });
      const [bytes, from] = await e.door.receive();
      assert.deepEqual(bytes, ask);
      assert.equal(from.hostname, "127.0.0.2");
      assert.equal(from.port, (door.addr as Deno.NetAddr).port);
      e.door.release(bytes);
      // Door media of a door with no route is passed up too (the JS relay decides).
      const m = media(7, 3);
      await door.send(m, { transport: "udp", ...local(e.door.local.port) });
      const [up] = await e.door.receive();
      assert.deepEqual(up, m);
      e.door.send(new Uint8Array([1, 2, 3]), from);
      assert.deepEqual(await recvWithin(door, 2000), new Uint8Array([1, 2, 3]));
      assert.equal(e.door.sendErrors, 0);
      assert.ok(e.stats()[STAT.upDoor]! >= 2);
    } finally {
      door.close();
    }
  });
});

Deno.test("native engine: a routed door's media goes to its phones, not up; door audio waits for talk", async () => {
  await withEngine(async (e) => {
    const door = sock("127.0.0.2");
    const p1 = sock("127.0.0.3");
    const p2 = sock("127.0.0.4");
    try {
      const slot = e.allocate()!;
      const doorAt = { hostname: "127.0.0.2", port: (door.addr as Deno.NetAddr).port };
      const phones = [p1, p2].map((p) => ({
        hostname: (p.addr as Deno.NetAddr).hostname,
        port: (p.addr as Deno.NetAddr).port,
      }));
      e.routeDoor(slot, doorAt, true, false, 77, phones);
      const video = media(7, 3, 77, 1200);
      const to = { transport: "udp" as const, ...local(e.door.local.port) };
      await door.send(video, to);
      assert.deepEqual(await recvWithin(p1, 2000), video);
      assert.deepEqual(await recvWithin(p2, 2000), video);
      // Door audio before talk is heard by nobody.
      await door.send(media(7, 1), to);
      assert.equal(await recvWithin(p1, 300), undefined);
      // A signalling datagram of the same door still goes up, and first: the media did not.
      const sig = new TextEncoder().encode("not media");
      await door.send(sig, to);
      const [up] = await e.door.receive();
      assert.deepEqual(up, sig);
      const c = new Float64Array(COLLECT_LENGTH);
      e.collect(slot, c);
      assert.equal(c[COUNTER.doorIn], 2);
      assert.equal(c[COUNTER.doorInBytes], video.length + media(7, 1).length);
      assert.equal(c[COUNTER.toPhones], 2);
      assert.equal(c[COUNTER.toPhonesBytes], 2 * video.length);
      assert.equal(c[COUNTER.dropDoorAudio], 1);
      e.collect(slot, c);
      assert.equal(c[COUNTER.doorIn], 0, "collect resets the counters");
      // Talking: door audio flows. Not native any more: media goes up.
      e.routeDoor(slot, doorAt, true, true, 77, phones);
      await door.send(media(7, 1), to);
      assert.deepEqual(await recvWithin(p1, 2000), media(7, 1));
      e.routeDoor(slot, doorAt, false, true, 77, phones);
      await door.send(video, to);
      const [again] = await e.door.receive();
      assert.deepEqual(again, video);
      e.release(slot);
    } finally {
      for (const s of [door, p1, p2]) s.close();
    }
  });
});

Deno.test("native engine: the talker's audio goes to the door rewritten and paced", async () => {
  await withEngine(async (e) => {
    const door = sock("127.0.0.2");
    const talker = sock("127.0.0.3");
    const other = sock("127.0.0.4");
    try {
      const slot = e.allocate()!;
      const doorAt = { hostname: "127.0.0.2", port: (door.addr as Deno.NetAddr).port };
      // The door speaks the long header form (86); the phone sends the short one (77).
      e.routeDoor(slot, doorAt, true, true, 86, []);
      const parties48 = new Uint8Array(48).fill(0x41);
      const state = new Float64Array([1000, 41, NaN, 16]);
      const from = { hostname: "127.0.0.3", port: (talker.addr as Deno.NetAddr).port };
      e.talker(slot, from, parties48, state);
      const to = { transport: "udp" as const, ...local(e.media.local.port) };
      const audio = media(8, 1, 77, 64);
      await talker.send(audio, to);
      const got = await recvWithin(door, 2000);
      assert.ok(got, "the door got the phone's audio");
      assert.equal(got.length, LENGTH.MEDIA_LONG + 64);
      assert.deepEqual(got.subarray(OFFSET.CALLER, OFFSET.CALLER + 48), parties48);
      const v = new DataView(got.buffer, got.byteOffset);
      assert.equal(v.getUint32(OFFSET.TIMESTAMP, true), 1008, "last timestamp + 8 ms");
      assert.equal(v.getUint16(OFFSET.FRAME_NO, true), 42, "frame numbers go on");
      assert.deepEqual(got.subarray(LENGTH.MEDIA_SHORT, LENGTH.MEDIA_LONG), new Uint8Array(9));
      assert.deepEqual(got.subarray(LENGTH.MEDIA_LONG), new Uint8Array(64).fill(0x5a));
      // Another phone's audio is not the talker's: up to JS (which drops it as not_talker).
      await other.send(audio, to);
      const [up, upFrom] = await e.media.receive();
      assert.deepEqual(up, audio);
      assert.equal(upFrom.hostname, "127.0.0.4");
      // A burst far above the real-time rate: at most the burst allowance goes on.
      for (let i = 0; i < 60; i++) await talker.send(audio, to);
      let n = 0;
      while (await recvWithin(door, 500)) n++;
      const c = new Float64Array(COLLECT_LENGTH);
      e.collect(slot, c);
      assert.ok(n >= 15 && n <= 30, `forwarded ${n} of 60`);
      assert.equal(c[COUNTER.toDoor], n + 1);
      assert.equal(c[COUNTER.dropPaced], 60 - n);
      assert.equal(c[COUNTER.phoneIn], 61);
      assert.equal(c[COUNTER.outFrame], 42 + n);
      assert.ok(c[COUNTER.heardAgo]! >= 0 && c[COUNTER.heardAgo]! < 5000);
      // Not media from the talker: dropped and counted.
      await talker.send(new Uint8Array(80), to);
      await recvWithin(door, 300);
      e.collect(slot, c);
      assert.equal(c[COUNTER.dropNotMedia], 1);
      // Cleared: the talker's datagrams go up.
      e.talker(slot, undefined, parties48, state);
      await talker.send(audio, to);
      const [after] = await e.media.receive();
      assert.deepEqual(after, audio);
    } finally {
      for (const s of [door, talker, other]) s.close();
    }
  });
});

Deno.test("native engine: closing both ports stops it; receives reject; a second engine starts", async () => {
  const e = openNativeEngine({
    library: LIB,
    doorPort: 0,
    mediaPort: 0,
    doorReuse: false,
    magic: "XXXCID",
  });
  assert.throws(
    () =>
      openNativeEngine({
        library: LIB,
        doorPort: 0,
        mediaPort: 0,
        doorReuse: false,
        magic: "XXXCID",
      }),
    /Cannot start the native media engine: one is already running/,
  );
  const pending = e.door.receive();
  e.door.close();
  await assert.rejects(pending, /Cannot receive: the port is closed/);
  assert.equal(e.media.closed, false);
  e.media.close();
  // Stopped by the last close; the helper thread's wait has returned once stop() resolves.
  await e.stop();
  assert.equal(e.allocate(), undefined);
  const again = openNativeEngine({
    library: LIB,
    doorPort: 0,
    mediaPort: 0,
    doorReuse: false,
    magic: "XXXCID",
  });
  await again.stop();
  assert.throws(
    () =>
      openNativeEngine({
        library: "/nonexistent/lib.so",
        doorPort: 0,
        mediaPort: 0,
        doorReuse: false,
        magic: "XXXCID",
      }),
    /Cannot start the native media engine: .*already loaded/,
  );
});
