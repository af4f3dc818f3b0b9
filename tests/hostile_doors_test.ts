/**
 * Hostile doors end to end (inside the private namespace only; every flood bounded in rate and
 * time, sent from its own process):
 *
 * - door floods: NS asks and CALLs from ever new door addresses store no door, are rate limited
 *   per source IP, leave counters instead of call records, and neither logins nor a real door's
 *   call wait behind them; a clean shutdown writes every counted call;
 * - door address hijack: one NS ask claiming an unseen address does not pin it; a claim from a
 *   second IP is an alarm; silence does not hand the address over; a restart keeps the real door;
 * - a fake door cannot keep a room busy: the known door wins; a pinned building takes no new door.
 *
 * `INTERCOM_TEST_FIGURES=1` prints one line of figures per test.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, openPhone, sleep } from "./helpers/sims.ts";
import { memoryLogger } from "../src/testing/mod.ts";
import { denoCommand } from "../scripts/deno_flags.ts";
import { encodeNsAsk } from "../src/protocol/mod.ts";
import { openStore } from "../src/store/kv.ts";
import { DoorStore } from "../src/store/doors.ts";
import type { GatewayEvent } from "../src/events/types.ts";

const opts = { ignore: !inNetns };

function figures(test: string, values: Record<string, unknown>): void {
  if (!Deno.env.get("INTERCOM_TEST_FIGURES")) return;
  // deno-lint-ignore no-console
  console.log(`FIGURES ${test} ${JSON.stringify(values)}`);
}

/** Flood rates are divided by this under emulation (the gateway handles a quarter as much). */
const SLOW = TIME_SCALE > 1 ? 4 : 1;
/** Share of the sent datagrams the gateway must receive (an emulated one loses more in its buffer). */
const GOT = TIME_SCALE > 1 ? 0.7 : 0.95;
/**
 * The same for NS asks from new addresses, each a new source for the gateway's admission: an
 * emulated gateway (qemu-user) took 513 of 1,342 in one aarch64 run and 256 of 1,235 in another
 * (21 %), the rest overflowed its socket buffer before it read them; 15 % is still far more than
 * the admission lets through, so the dropping is exercised. What this test proves there is the accounting (every ask
 * received is answered or dropped and counted) and that logins and a call go through.
 */
const GOT_NS = TIME_SCALE > 1 ? 0.15 : 0.95;

const mb = () => Math.round(Deno.memoryUsage().rss / 1048576);

/** Runs tests/helpers/door_flood.ts to its end; resolves to the datagrams sent. */
async function flood(
  kind: "ns" | "call",
  rate: number,
  seconds: number,
  sources: number,
  room?: string,
): Promise<number> {
  // The same Deno as the gateway (the aarch64 run: the emulated one), as the other senders.
  const [cmd, ...pre] = denoCommand();
  const out = await new Deno.Command(cmd!, {
    args: [
      ...pre,
      "run",
      "--unstable-net",
      "--allow-net",
      new URL("./helpers/door_flood.ts", import.meta.url).pathname,
      "127.0.0.1",
      "8302",
      String(rate),
      String(seconds),
      kind,
      String(sources),
      ...(room ? [room] : []),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout)).sent;
}

/** Milliseconds a new phone takes from connecting to `login ok`. */
async function loginMs(gw: Awaited<ReturnType<typeof startTestGateway>>, uid: string) {
  const t0 = performance.now();
  const phone = await openPhone(gw, uid, { answer: "ring" }, "Y00010108091");
  const ms = Math.round(performance.now() - t0);
  await phone.close();
  return ms;
}

/** Waits (at most 10 s × the suite's time scale) until `count` has not changed for 500 ms. */
async function settled(count: () => number): Promise<void> {
  const until = performance.now() + 10_000 * TIME_SCALE;
  let last = count();
  while (performance.now() < until) {
    await sleep(500);
    const now = count();
    if (now === last) return;
    last = now;
  }
}

/** Counts the KV entries under `prefix` (at most 100,000). */
async function countKeys(kv: Deno.Kv, prefix: Deno.KvKey): Promise<number> {
  let n = 0;
  for await (const _ of kv.list({ prefix }, { limit: 100_000 })) n++;
  return n;
}

Deno.test(
  "door flood: 6,000 NS asks from new addresses store no door and are rate limited; logins and a real door's call go through",
  opts,
  async () => {
    const gw = await startTestGateway();
    const phone = await openPhone(gw, "resident", { answer: "callok" });
    try {
      const rss0 = mb();
      // 2,000 NS asks/s for 3 s, each from a new door address, for the resident's (online) room.
      const sending = flood("ns", 2000 / SLOW, 3, 1, "S00010108090");
      await sleep(1000);
      const login = await loginMs(gw, "late");
      const sent = await sending;
      const m = gw.app.metrics;
      // The flood is over for the gateway once it has read what sits in its socket buffer (an
      // emulated gateway lags the sender by seconds).
      await settled(() => m.get("door_datagrams_received_total"));
      const doors = gw.app.live.doors().length;
      const limited = m.get("door_dropped_total", { reason: "rate_limited" });
      const answered = m.get("door_ns_answered_total");
      const received = m.get("door_datagrams_received_total");
      assertEquals(doors, 0, "an NS ask creates no door");
      assert(
        sent >= 5000 / SLOW && received >= sent * GOT_NS,
        `sent ${sent}, received ${received}`,
      );
      assert(answered <= 30 + 10 * 4, `NS answers to one IP: ${answered}`);
      assertEquals(limited + answered, received, "every ask is answered or dropped and counted");
      assert(login < 2000 * TIME_SCALE, `login took ${login} ms during the flood`);
      // A real door still calls, its call is answered, and that (only that) learns it.
      const door = await openDoor({ ip: "127.0.0.21", hangupAfterS: 1.2 });
      const summary = await door.start();
      await door.close();
      assertEquals([summary.reason, summary.answered], ["hangup_after", true]);
      assertEquals(
        gw.app.live.doors().map((d) => [d.address, d.ip, d.mode]),
        [["M00010100", "127.0.0.21", "learned"]],
      );
      figures("ns_flood", { sent, answered, limited, doors, loginMs: login, rssMb: [rss0, mb()] });
    } finally {
      await phone.close();
      await gw.close();
    }
  },
);

Deno.test(
  "door flood: 2,000 CALLs from 50 IPs leave no call record and no door, only counters, all on disk after shutdown; logins do not wait",
  opts,
  async () => {
    const gw = await startTestGateway();
    const phone = await openPhone(gw, "resident", { answer: "callok" });
    let closed = false;
    try {
      const rss0 = mb();
      // 500 CALLs/s for 4 s from 50 source IPs (40 each: within their limits), to a room with no
      // phone online: each is a call that ends no_phone_online at once.
      const sending = flood("call", 500 / SLOW, 4, 50);
      await sleep(1500);
      const login = await loginMs(gw, "late");
      const sent = await sending;
      await sleep(300);
      const m = gw.app.metrics;
      const calls = m.get("calls_ended_total", { reason: "no_phone_online" });
      const limited = m.get("door_dropped_total", { reason: "rate_limited" });
      const received = m.get("door_datagrams_received_total");
      assert(sent >= 1800 / SLOW && received >= sent * GOT, `sent ${sent}, received ${received}`);
      assert(calls >= received * 0.9, `calls ${calls} of ${received}`);
      assertEquals(calls + limited, received);
      assert(login < 2000 * TIME_SCALE, `login took ${login} ms during the flood`);
      // The shutdown (what SIGTERM runs) writes everything that was accepted.
      await gw.close({ keepData: true });
      closed = true;
      const kv = await openStore(gw.data);
      try {
        const records = await countKeys(kv, ["call"]);
        const doorRows = await countKeys(kv, ["doors"]);
        let counted = 0;
        for await (const e of kv.list<Deno.KvU64>({ prefix: ["call_unoffered"] })) {
          counted += Number(e.value.value);
        }
        assertEquals([records, doorRows], [0, 0], "no record and no door per flooded call");
        assertEquals(counted, calls, "every counted call is on disk, as a counter");
        figures("call_flood", {
          sent,
          calls,
          limited,
          records,
          doorRows,
          counted,
          loginMs: login,
          rssMb: [rss0, mb()],
        });
      } finally {
        kv.close();
      }
    } finally {
      await phone.close();
      if (!closed) await gw.close();
      await Deno.remove(gw.data, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(
  "door flood: CALLs from one IP are rate limited (20 at once, 5 a second); the rest is dropped and counted",
  opts,
  async () => {
    const gw = await startTestGateway();
    try {
      const sent = await flood("call", 500 / SLOW, 2, 1);
      await sleep(200);
      const m = gw.app.metrics;
      const calls = m.get("calls_total");
      const limited = m.get("door_dropped_total", { reason: "rate_limited" });
      const received = m.get("door_datagrams_received_total");
      assert(sent >= 900 / SLOW && received >= sent * GOT, `sent ${sent}, received ${received}`);
      assert(calls <= 20 + 5 * 3, `calls from one IP: ${calls}`);
      assertEquals(calls + limited, received);
      figures("call_flood_one_ip", { sent, calls, limited });
    } finally {
      await gw.close();
    }
  },
);

Deno.test(
  "door hijack: an attacker's NS ask cannot pin an unseen address; a second IP is an alarm; silence hands nothing over; a restart keeps the real door",
  opts,
  async () => {
    const logger = memoryLogger("info");
    let gw = await startTestGateway({ doorRelearnAfter: 1 }, { logger });
    const conflicts: GatewayEvent[] = [];
    gw.app.events.subscribe((e) => conflicts.push(e), { name: "test", types: ["door_conflict"] });
    let phone = await openPhone(gw, "resident", { answer: "callok" });
    const attacker = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.66", port: 0 });
    const claim = () =>
      attacker.send(
        encodeNsAsk({
          asker: "M00010100",
          askerIp: "127.0.0.66",
          target: "S00010108090",
          targetIp: "0.0.0.0",
        }),
        { transport: "udp", hostname: "127.0.0.1", port: 8302 },
      );
    try {
      // The attacker asks first, claiming the real door's address, not yet seen.
      await claim();
      await sleep(200);
      assertEquals(gw.app.live.doors(), [], "an NS ask learns nothing");
      // The real door calls: it is answered, and its answered call is what learns it.
      let door = await openDoor({ ip: "127.0.0.22", hangupAfterS: 1.2 });
      let summary = await door.start();
      await door.close();
      assertEquals([summary.reason, summary.answered], ["hangup_after", true]);
      const doors = () => gw.app.live.doors().map((d) => `${d.address}@${d.ip}`);
      assertEquals(doors(), ["M00010100@127.0.0.22"]);
      // Now the attacker's claim is an alarm: counted, logged at warn, an event.
      await claim();
      await sleep(200);
      assertEquals(gw.app.metrics.get("door_address_conflicts_total"), 1);
      const conflict = conflicts[0];
      assertEquals(
        conflict?.type === "door_conflict" &&
          [conflict.address, conflict.knownIp, conflict.claimedIp],
        ["M00010100", "127.0.0.22", "127.0.0.66"],
      );
      assert(
        logger.records.some((r) => r.level === "warn" && String(r.msg).includes("conflict")),
        "warned",
      );
      // The real door falls silent past --door-relearn-after: an NS ask still moves nothing.
      await sleep(1300);
      await claim();
      await sleep(200);
      assertEquals(doors(), ["M00010100@127.0.0.22"]);
      // A restart: the real door is still the one known; the attacker's claim still moves nothing.
      await phone.close();
      await gw.close({ keepData: true });
      gw = await startTestGateway({ data: gw.data, doorRelearnAfter: 1 });
      phone = await openPhone(gw, "resident", { answer: "callok" });
      await claim();
      await sleep(200);
      assertEquals(doors(), ["M00010100@127.0.0.22"]);
      door = await openDoor({ ip: "127.0.0.22", hangupAfterS: 1.2 });
      summary = await door.start();
      await door.close();
      assertEquals(summary.answered, true, "the real door is answered after the restart");
      figures("hijack", {
        conflicts: conflicts.length,
        doorsAfterRestart: doors(),
      });
    } finally {
      attacker.close();
      await phone.close();
      await gw.close();
    }
  },
);

Deno.test(
  "fake door: a stranger ringing a room does not make the known door busy; a pinned building takes no new door at all",
  opts,
  async () => {
    const gw = await startTestGateway();
    const phone = await openPhone(gw, "resident", { answer: "callok" });
    try {
      // The building's door calls once: answered, learned.
      let real = await openDoor({ ip: "127.0.0.23", hangupAfterS: 1.2 });
      assertEquals((await real.start()).answered, true);
      await real.close();
      // A fake door (an address never seen, its own IP) calls the room and keeps it ringing.
      const fake = await openDoor({ ip: "127.0.0.24", address: "M00010190", ringTimeoutS: 20 });
      void fake.start();
      await fake.when("answered");
      assertEquals(phone.messagesIn("call").length, 2);
      // The real door calls: the known door wins, the fake's call is ended.
      real = await openDoor({ ip: "127.0.0.23", hangupAfterS: 0.5 });
      const summary = await real.start();
      await real.close();
      const fakeSummary = await fake.done;
      assertEquals([summary.reason, summary.answered], ["hangup_after", true]);
      assertEquals(fakeSummary.reason, "ended_by_gateway");
      const calls = phone.messagesIn("call") as unknown as { doorAddress: string }[];
      assertEquals(calls.map((c) => c.doorAddress), ["M00010100", "M00010190", "M00010100"]);
      const records = await gw.app.records.recent(5);
      assertEquals(records.map((r) => [r.door, r.endReason]), [
        ["M00010100", "door_hung_up"],
        ["M00010190", "door_superseded"],
        ["M00010100", "door_hung_up"],
      ]);
      // The installer pins the building (`door pin --all`, its own KV handle, as the CLI does).
      const cli = await openStore(gw.data);
      try {
        await new DoorStore(cli).pin();
      } finally {
        cli.close();
      }
      await sleep(1500); // the gateway polls the doors' change version every second
      const before = phone.messagesIn("call").length;
      const stranger = await openDoor({ ip: "127.0.0.25", address: "M00010170" });
      const refused = await stranger.start();
      await stranger.close();
      assertEquals(refused.reason, "ns_unanswered", "no answer, no call");
      assertEquals([phone.messagesIn("call").length, gw.app.manager.size], [before, 0]);
      // A door is learned once it answers the gateway's CALLCONFIRM from its IP. The fake's call
      // usually ends before the first one; when it answered one (seen under emulation), it was a
      // learned door when the building was pinned, and is pinned like the real one. The stranger
      // that called after the pin is never there.
      const fakeLearned = fakeSummary.counters.confirmsReceived > 0;
      assertEquals(
        gw.app.live.doors().map((d) => [d.address, d.mode]),
        [["M00010100", "pinned"], ...(fakeLearned ? [["M00010190", "pinned"]] : [])],
      );
      figures("fake_door", {
        realAnswered: summary.answered,
        fakeEnd: fakeSummary.reason,
        pinnedStranger: refused.reason,
        fakeLearned,
      });
    } finally {
      await phone.close();
      await gw.close();
    }
  },
);
