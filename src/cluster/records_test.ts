/**
 * `ClusterRecords` against a real `nats-server` (JetStream, on the test namespace's loopback):
 * one message per call however often its record is published (a replay after a restart, a
 * retried publish), refused unlock attempts bounded, rate-limited ones kept local.
 */

import { assertEquals } from "../../tests/helpers/assert.ts";
import { inNetns } from "../../tests/helpers/netns.ts";
import { systemClock } from "../clock.ts";
import { FakeClock } from "../testing/fake_clock.ts";
import { nullLogger } from "../log.ts";
import type { CallRecord } from "../store/records.ts";
import { ClusterLink, type LinkChange } from "./link.ts";
import { ClusterRecords, MAX_REFUSED_PER_MINUTE } from "./records.ts";
import { localRecordStream } from "./subjects.ts";

const PORT = 14299;

const record = (callId: string): CallRecord => ({
  callId,
  door: "M00010100",
  doorIp: "10.0.0.5",
  roomAddress: "S00010108090",
  roomKey: "00010108090",
  ringAt: "2026-12-02T10:00:00.000Z",
  endedAt: "2026-12-02T10:00:30.000Z",
  endReason: "door hung up",
  unlocks: [],
});

Deno.test({
  name: "cluster records: a call's record is one message however often it is published",
  ignore: !inNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "nats-rec-" });
    const server = new Deno.Command("nats-server", {
      args: ["-js", "-a", "127.0.0.1", "-p", String(PORT), "-sd", dir, "-n", "gw1"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const link = new ClusterLink({
      url: `nats://127.0.0.1:${PORT}`,
      gatewayId: "gw1",
      clock: systemClock,
      logger: nullLogger,
    });
    try {
      for (let i = 0; i < 100 && !link.leafUp; i++) {
        await link.start();
        if (!link.leafUp) await new Promise((r) => setTimeout(r, 50));
      }
      const recs = new ClusterRecords({
        link,
        recordOf: (id) => Promise.resolve(record(id)),
        recent: () => Promise.resolve([record("c-1"), record("c-2")]),
        logger: nullLogger,
        clock: systemClock,
        ipOf: (uid) => uid === "u" ? "10.0.0.7" : undefined,
      });
      recs.start();
      const jsm = await link.manager();
      const info = () => jsm.streams.info(localRecordStream("gw1")).then((i) => i.state);
      for (let i = 0; i < 100; i++) {
        if ((await info().catch(() => undefined))?.messages === 2) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // The replay sent c-1 and c-2; the calls' ends publish them again, twice.
      for (const id of ["c-1", "c-2", "c-1"]) {
        await recs.onEvent({
          type: "call_ended",
          at: 0,
          callId: id,
          roomKey: "00010108090",
          reason: "door_hung_up",
        });
      }
      const base = {
        type: "unlock_attempted",
        at: 1,
        uid: "u",
        roomAddress: "Y00010108090",
        doorAddress: "M00010100",
      } as const;
      await recs.onEvent({ ...base, result: "rate_limited" });
      for (let i = 0; i < MAX_REFUSED_PER_MINUTE + 5; i++) {
        await recs.onEvent({ ...base, at: i, result: "not_in_call" });
      }
      await recs.flushed();
      const state = await info();
      assertEquals(state.num_subjects, 2 + MAX_REFUSED_PER_MINUTE);
      assertEquals(state.messages, 2 + MAX_REFUSED_PER_MINUTE);
      assertEquals(recs.dropped, 5);
      // An attempt that names no IP gets its phone's session IP, as in the local audit.
      const last = await jsm.streams.getMessage(localRecordStream("gw1"), {
        last_by_subj: "rec.gw1.unlock.>",
      });
      const unlock = last?.json<{ record: { ip?: string; result: string } }>();
      assertEquals([unlock?.record.result, unlock?.record.ip], ["not_in_call", "10.0.0.7"]);
      await recs.stop();
    } finally {
      await link.close();
      server.kill("SIGTERM");
      await server.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("cluster records: a leaf whose JetStream is not ready yet is set up again", async () => {
  const clock = new FakeClock();
  let refusals = 1;
  const published: string[] = [];
  const link = {
    gatewayId: "gw1",
    leafUp: true,
    hubUp: false,
    onChange: (_fn: (c: LinkChange) => void) => () => {},
    manager: () =>
      refusals-- > 0
        ? Promise.reject(new Error("jetstream not enabled"))
        : Promise.resolve({ streams: { info: () => Promise.resolve({}) } }),
    localJs: () => ({
      publish: (subject: string) => {
        published.push(subject);
        return Promise.resolve({});
      },
    }),
  } as unknown as ClusterLink;
  const recs = new ClusterRecords({
    link,
    recordOf: (id) => Promise.resolve(record(id)),
    logger: nullLogger,
    clock,
  });
  const settle = () => new Promise((r) => setTimeout(r, 0));
  recs.start();
  await settle();
  await recs.onEvent({
    type: "call_ended",
    at: 0,
    callId: "c-1",
    roomKey: "00010108090",
    reason: "door_hung_up",
  });
  assertEquals(published, [], "the leaf's stream is not set up yet");
  clock.advance(2000);
  await settle();
  await recs.flushed();
  assertEquals(published, ["rec.gw1.call.c-1"]);
  await recs.stop();
  assertEquals(clock.pending, 0);
});
