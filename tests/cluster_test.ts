/**
 * Several gateways, one community (issue 15): a 3-node hub and two gateways, each in its own
 * network namespace with its own leaf node (tests/helpers/cluster.ts).
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import {
  bind,
  doorCall,
  type GatewayNode,
  loginAs,
  ROOM,
  state,
  withCommunity,
  within,
} from "./helpers/cluster.ts";
import { inNetns } from "./helpers/netns.ts";
import { api } from "./helpers/admin_console.ts";
import { TIME_SCALE } from "./helpers/scale.ts";

// Natively only: each scenario starts a 3-node hub, leaves and two or three gateways in nested
// namespaces; under qemu-user the gateways' start alone outlasts the scenarios' bounds. The
// cluster's unit tests (src/cluster/, against a real nats-server) run on both.
const opts = {
  ignore: !inNetns || TIME_SCALE > 1,
  sanitizeOps: false,
  sanitizeResources: false,
};
const T = (ms: number) => ms * TIME_SCALE;

/** A measured figure, on stderr (the issue asks for them). */
function report(line: string): void {
  // deno-lint-ignore no-console
  console.error(`  [measured] ${line}`);
}

Deno.test(
  "community: a phone bound once (on gateway A) logs in on A and on B",
  opts,
  () =>
    withCommunity(async ({ a, b, loggedIn }) => {
      const bound = await a.ctl<{ token: string }>("/bind", { uid: "uid-1", room: ROOM });
      const token = bound.token;
      assert(token, JSON.stringify(bound));
      const took = await within(
        "binding on B",
        T(5000),
        async () => (await state(b)).bindings.some((x) => x.uid === "uid-1"),
      );
      report(`binding reached B in ${took.toFixed(0)} ms`);
      for (const n of [a, b]) await (await loggedIn(n, "uid-1", token)).close();
    }),
);

Deno.test(
  "community: a removal or rotation at the office ends the phone's session on the other gateway",
  opts,
  () =>
    withCommunity(async ({ c, a, b, phone }) => {
      const bindOn = async (n: GatewayNode, uid: string) => {
        const r = await n.ctl<{ token: string; error?: string }>("/bind", { uid, room: ROOM });
        assert(r.token, JSON.stringify(r));
        await within(`${uid} everywhere`, T(10_000), async () => {
          for (const x of c.nodes) {
            const s = await state(x);
            if (!s.bindings.some((y) => y.uid === uid)) return false;
          }
          return true;
        });
        return r.token;
      };
      const t1 = await bindOn(a, "uid-r");
      const t2 = await bindOn(a, "uid-t");
      const pr = await phone(b, "uid-r", t1);
      const pt = await phone(b, "uid-t", t2);
      await pr.waitFor("login ok", T(5000));
      await pt.waitFor("login ok", T(5000));

      // Removal made on A (written to the hub): B's phone is cut off.
      let t0 = performance.now();
      const removed = await a.ctl<{ removed: number }>("/unbind", { uid: "uid-r", room: ROOM });
      assertEquals(removed.removed, 1);
      const closed = await pr.waitFor("closed", T(5000));
      const removal = performance.now() - t0;
      assertEquals((closed as { code?: number }).code, 4004);
      report(`removal on A → session on B closed in ${removal.toFixed(0)} ms`);
      assert(removal < T(2000), `removal took ${removal.toFixed(0)} ms`);

      // Rotation on A: the old token's session on B ends.
      t0 = performance.now();
      const again = await a.ctl<{ token: string }>("/bind", { uid: "uid-t", room: ROOM });
      assert(again.token && again.token !== t2);
      const closed2 = await pt.waitFor("closed", T(5000));
      const rotation = performance.now() - t0;
      assertEquals((closed2 as { code?: number }).code, 4004);
      report(`rotation on A → old session on B closed in ${rotation.toFixed(0)} ms`);
      assert(rotation < T(2000), `rotation took ${rotation.toFixed(0)} ms`);
    }),
);

Deno.test(
  "community: link cut — bind add fails clearly (CLI and API), logins work with the last-seen bindings; after healing, a removal made meanwhile is enforced",
  opts,
  () =>
    withCommunity(async ({ a, b, loggedIn, boundOnA }) => {
      const t1 = await boundOnA("uid-c");

      b.link.cut();
      await within("B sees the hub gone", T(5000), async () => !(await state(b)).hubUp);
      const health = await (await fetch(`${b.httpBase}/healthz`)).json();
      assertEquals([health.ok, health.cluster], [true, { gateway: "gwB", leaf: true, hub: false }]);
      // Changes need the hub: refused at once, saying why.
      const cli = await b.ctl<{ code: number; err: string[] }>("/cli", {
        cmd: "bind",
        args: ["add", "--uid", "uid-x", "--room", ROOM],
      });
      assertEquals(cli.code, 1);
      assert(
        cli.err.join("\n").startsWith("Cannot add binding: the community hub is unreachable"),
        cli.err.join("\n"),
      );
      const direct = await b.ctl<{ error?: string }>("/bind", { uid: "uid-x", room: ROOM });
      assert(direct.error?.startsWith("Cannot add binding: the community hub is unreachable"));
      // The console's API says the same, as 503.
      const cookie = await loginAs(b);
      const res = await api(b.httpBase, cookie, "POST", "/api/v1/bindings", {
        uid: "uid-x",
        room: ROOM,
      });
      assertEquals(res.status, 503);
      const error = res.body.error as { code: string; message: string };
      assertEquals(error.code, "unavailable");
      assert(error.message.startsWith("Cannot add binding: the community hub is unreachable"));
      // A login on B with the binding last seen works.
      const p = await loggedIn(b, "uid-c", t1);

      // Meanwhile the office removes the binding (through A).
      const removed = await a.ctl<{ removed: number }>("/unbind", { uid: "uid-c", room: ROOM });
      assertEquals(removed.removed, 1);
      await new Promise((r) => setTimeout(r, T(1000)));
      assertEquals(p.messagesIn("closed" as never).length, 0, "B cannot know yet");

      const t0 = performance.now();
      b.link.heal();
      const closed = await p.waitFor("closed", T(15_000));
      const healed = performance.now() - t0;
      assertEquals((closed as { code?: number }).code, 4004);
      report(`heal → removal made during the cut enforced on B after ${healed.toFixed(0)} ms`);
      const after = await b.ctl<{ code: number; out: string[] }>("/cli", {
        cmd: "bind",
        args: ["add", "--uid", "uid-x", "--room", ROOM],
      });
      assertEquals(after.code, 0, JSON.stringify(after));
    }),
);

type Cli = { code: number; out: string[]; err: string[] };
const callsOn = (n: GatewayNode, ...args: string[]) =>
  n.ctl<Cli>("/cli", { cmd: "calls", args: ["--limit", "50", ...args] });

/** Waits (5 s) until `n` knows the room is online on another gateway; the ms it took. */
const roomOnlineElsewhere = (n: GatewayNode, what: string) =>
  within(what, T(5000), async () => (await state(n)).remoteRooms.includes("00010108090"));

Deno.test(
  "community: records and unlocks of every gateway reach the hub; during a cut they queue, after healing they arrive exactly once",
  opts,
  () =>
    withCommunity(async ({ a, b, loggedIn }) => {
      await loggedIn(a, "uid-p", await bind(a, "uid-p"), {
        answer: "talk",
        talkAfterS: 0.2,
        unlockAfterS: 0.2,
        hangupAfterS: 0.6,
        enableVideo: "none",
      });
      await doorCall(a);
      await within("A's call seen from B", T(10_000), async () => {
        const r = await callsOn(b);
        return r.out.some((l) => JSON.parse(l).gateway === "gwA");
      });

      a.link.cut();
      await within("A sees the hub gone", T(5000), async () => !(await state(a)).hubUp);
      await doorCall(a);
      await doorCall(a);
      // The console of A says the same.
      const cookie = await loginAs(a);
      const view = await api(a.httpBase, cookie, "GET", "/api/v1/community/calls");
      assertEquals(view.body.scope, "local");
      assert(String(view.body.note).startsWith("Showing this gateway's records only"));
      assertEquals((view.body.records as unknown[]).length, 3);
      const offline = await callsOn(a);
      assert(
        offline.err.some((l) => l.startsWith("showing this gateway's records only")),
        offline.err.join("\n"),
      );
      assertEquals(offline.out.length, 3, "A's own records, local");

      const t0 = performance.now();
      a.link.heal();
      const took = await within("all of A's calls at the hub", T(20_000), async () => {
        const r = await callsOn(b);
        return r.out.filter((l) => JSON.parse(l).gateway === "gwA").length >= 3;
      });
      report(
        `heal → 2 records written during the cut at the hub after ${
          (performance.now() - t0).toFixed(0)
        } ms (poll ${took.toFixed(0)} ms)`,
      );
      await new Promise((r) => setTimeout(r, T(1500)));
      const calls = (await callsOn(b)).out.map((l) => JSON.parse(l));
      const ids = calls.map((r) => r.callId);
      assertEquals(ids.length, 3, JSON.stringify(calls));
      assertEquals(new Set(ids).size, 3, "no call twice");
      assert(calls.every((r) => r.unlocks.length === 1 && r.endedAt));
      const fromB = await api(b.httpBase, await loginAs(b), "GET", "/api/v1/community/calls");
      assertEquals([fromB.body.scope, fromB.body.gateways], ["community", ["gwA"]]);
      assertEquals((fromB.body.records as unknown[]).length, 3);
      const unlocks = (await callsOn(b, "--unlocks")).out.map((l) => JSON.parse(l));
      assertEquals(
        unlocks.filter((u) => u.result === "success").length,
        3,
        JSON.stringify(unlocks),
      );
      assertEquals(new Set(unlocks.map((u) => u.id)).size, unlocks.length);
    }),
);

Deno.test(
  "community: a door on A rings a phone on B (NS answered by A for it); the phone on B answers, talks, unlocks and hangs up; video crosses",
  opts,
  () =>
    withCommunity(async ({ a, boundPhoneOnB }) => {
      const p = await boundPhoneOnB("uid-b", {
        answer: "talk",
        talkAfterS: 0.5,
        unlockAfterS: 0.5,
        hangupAfterS: 1.5,
        enableVideo: "ws",
      });
      const took = await roomOnlineElsewhere(a, "A knows the room is online on B");
      report(`presence of a new phone on B reached A in ${took.toFixed(0)} ms`);
      await a.ctl("/door/start", { options: { room: "0809", ringTimeoutS: 10, fps: 15 } });
      const summary = await a.ctl<
        { answered: boolean; talked: boolean; locksOpened: number; reason: string }
      >("/door/wait", {});
      assert(summary.answered && summary.talked, JSON.stringify(summary));
      assertEquals(summary.locksOpened, 1);
      assert(p.counters.videoPackets > 5, `video on B: ${p.counters.videoPackets}`);
    }),
);

Deno.test(
  "community: first answer wins across gateways; two-way audio crosses; the door hangs up; loss vs a local call and the path's latency measured",
  opts,
  () =>
    withCommunity(async ({ a, b, phone }) => {
      const ta = await bind(a, "uid-a");
      const tb = await bind(a, "uid-b");
      await within("bindings on B", T(5000), async () => (await state(b)).bindings.length === 2);
      const talker = { enableVideo: "ws", sendAudio: true } as const;
      // The phone on B is quicker: its talk wins; the one on A is told "answered elsewhere".
      const pa = await phone(a, "uid-a", ta, { answer: "talk", talkAfterS: 1.5, ...talker });
      const pb = await phone(b, "uid-b", tb, { answer: "talk", talkAfterS: 0.2, ...talker });
      await pa.waitFor("login ok", T(5000));
      await pb.waitFor("login ok", T(5000));
      await roomOnlineElsewhere(a, "A knows B's phone");

      await a.ctl("/door/start", {
        options: { room: "0809", ringTimeoutS: 10, fps: 15, hangupAfterS: 4 },
      });
      const cross = await a.ctl<
        { answered: boolean; talked: boolean; reason: string; counters: Record<string, number> }
      >("/door/wait", {});
      assert(cross.answered && cross.talked, JSON.stringify(cross));
      assertEquals(cross.reason, "hangup_after");
      await pb.waitFor("over", T(3000));
      const overA = pa.messagesIn("over" as never) as unknown as { reason: string }[];
      assertEquals(overA.map((m) => m.reason), ["answered elsewhere"]);
      assertEquals(pa.messagesIn("talk begin" as never).length, 0);
      assert(pb.counters.videoPackets > 10, `video on B ${pb.counters.videoPackets}`);
      const downCross = pb.counters.audioIn / Math.max(1, cross.counters.audioSent!);
      const upCross = cross.counters.audioReceived! / Math.max(1, pb.counters.audioOut);
      assert(pb.counters.audioIn > 50 && cross.counters.audioReceived! > 50, "two-way audio");

      // The same call with the phone on A only: the baseline of this run.
      await pb.close();
      await within(
        "A forgets B's phone",
        T(5000),
        async () => !(await state(a)).remoteRooms.includes("00010108090"),
      );
      const pa2 = await phone(a, "uid-a", ta, { answer: "talk", talkAfterS: 0.2, ...talker });
      await pa.close();
      await pa2.waitFor("login ok", T(5000));
      await a.ctl("/door/start", {
        options: { room: "0809", ringTimeoutS: 10, fps: 15, hangupAfterS: 4 },
      });
      const local = await a.ctl<{ talked: boolean; counters: Record<string, number> }>(
        "/door/wait",
        {},
      );
      assert(local.talked);
      const downLocal = pa2.counters.audioIn / Math.max(1, local.counters.audioSent!);
      const upLocal = local.counters.audioReceived! / Math.max(1, pa2.counters.audioOut);
      report(
        `door→phone audio delivered: cross ${(downCross * 100).toFixed(1)} % vs local ${
          (downLocal * 100).toFixed(1)
        } %; phone→door: cross ${(upCross * 100).toFixed(1)} % vs local ${
          (upLocal * 100).toFixed(1)
        } % (video packets on B: ${pb.counters.videoPackets})`,
      );
      const ping = await a.ctl<{ p50: number; p99: number; lost: number }>("/ping", {
        to: "gwB",
        n: 300,
        size: 500,
      });
      report(
        `A→hub→B request/reply, 500 B: p50 ${ping.p50.toFixed(2)} ms, p99 ${
          ping.p99.toFixed(2)
        } ms, lost ${ping.lost}/300 (one-way ≈ half)`,
      );
      assertEquals(ping.lost, 0);
      assert(downCross > downLocal - 0.1 && upCross > upLocal - 0.1, "cross ≈ local");
    }),
);

Deno.test(
  "community: B's link cut — a door on A calling B's room gets LINEUSE within 3 s; B's own calls go on",
  opts,
  () =>
    withCommunity(async ({ a, b, boundPhoneOnB }) => {
      await boundPhoneOnB("uid-b", { answer: "talk", talkAfterS: 0.2, hangupAfterS: 0.5 });
      await roomOnlineElsewhere(a, "A knows B's phone");

      b.link.cut(); // A still believes B's phone is there (until B's presence expires)
      const t0 = performance.now();
      await a.ctl("/door/start", { options: { room: "0809", ringTimeoutS: 30 } });
      const r = await a.ctl<{ reason: string; answered: boolean }>("/door/wait", {});
      const took = performance.now() - t0;
      report(`cut link: door on A → ${r.reason} after ${took.toFixed(0)} ms`);
      assert(r.reason === "busy" || r.reason === "ns_unanswered", JSON.stringify(r));
      if (r.reason === "busy") assert(took < T(3000), `LINEUSE after ${took.toFixed(0)} ms`);

      // B alone: its own door rings its own phone as on a single box.
      await b.ctl("/door/start", { options: { room: "0809", ringTimeoutS: 10 } });
      const local = await b.ctl<{ answered: boolean; talked: boolean }>("/door/wait", {});
      assert(local.answered && local.talked, JSON.stringify(local));
    }),
);

Deno.test(
  "community: a whole-hub restart — gateways work alone meanwhile, then records and binding changes flow again",
  opts,
  () =>
    withCommunity(async ({ c, a, b, boundPhoneOnB }) => {
      await boundPhoneOnB("uid-h", {
        answer: "talk",
        talkAfterS: 0.2,
        unlockAfterS: 0.2,
        hangupAfterS: 0.5,
        enableVideo: "none",
      });

      await c.hub.stop();
      for (const n of c.nodes) {
        await within(`${n.id} sees the hub gone`, T(5000), async () => !(await state(n)).hubUp);
      }
      await doorCall(b); // B alone
      const refused = await a.ctl<{ error?: string }>("/bind", { uid: "uid-z", room: ROOM });
      assert(refused.error?.startsWith("Cannot add binding: the community hub is unreachable"));

      const t0 = performance.now();
      await c.hub.start();
      for (const n of c.nodes) {
        await within(`${n.id} sees the hub back`, T(40_000), async () => (await state(n)).hubUp);
      }
      const back = performance.now() - t0;
      const rec = await within("B's outage call at the hub", T(40_000), async () => {
        const r = await callsOn(a);
        return r.out.filter((l) => JSON.parse(l).gateway === "gwB").length === 1;
      });
      let bound: { token?: string } = {};
      const write = await within("a binding write accepted again", T(40_000), async () => {
        bound = await a.ctl<{ token?: string }>("/bind", { uid: "uid-z", room: ROOM });
        return bound.token !== undefined;
      });
      await within(
        "uid-z on B",
        T(10_000),
        async () => (await state(b)).bindings.some((x) => x.uid === "uid-z"),
      );
      report(
        `hub restart: gateways see it back after ${
          back.toFixed(0)
        } ms; B's outage record at the hub ${rec.toFixed(0)} ms later; binding writes accepted ${
          write.toFixed(0)
        } ms after that`,
      );
    }),
);

Deno.test(
  "community: a phone that logs in on B while a door on A rings the room joins the call and answers it",
  opts,
  () =>
    withCommunity(async ({ a, b, phone, loggedIn }) => {
      const ta = await bind(a, "uid-a");
      const tb = await bind(a, "uid-b");
      await within("bindings on B", T(5000), async () => (await state(b)).bindings.length === 2);
      const pa = await loggedIn(a, "uid-a", ta, { answer: "ring" });
      await a.ctl("/door/start", { options: { room: "0809", ringTimeoutS: 15, hangupAfterS: 2 } });
      await pa.waitFor("call", T(5000));
      const pb = await phone(b, "uid-b", tb, { answer: "talk", talkAfterS: 0.2 });
      await pb.waitFor("call", T(5000));
      const r = await a.ctl<{ answered: boolean; talked: boolean }>("/door/wait", {});
      assert(r.answered && r.talked, JSON.stringify(r));
      assertEquals(pb.messagesIn("talk begin" as never).length, 1);
    }),
);
