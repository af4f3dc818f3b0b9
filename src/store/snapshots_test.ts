import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { SNAPSHOT_MAX_BYTES, SnapshotStore, videoKind } from "./snapshots.ts";
import { CodedVideoSource } from "../sim/media_source.ts";

Deno.test("snapshots: the codec from the first bytes", () => {
  assertEquals(videoKind(Uint8Array.of(0xff, 0xd8, 0xff, 0xe0)), "jpeg");
  assertEquals(videoKind(Uint8Array.of(0, 0, 0, 1, 0x67, 0x42)), "h264");
  assertEquals(videoKind(Uint8Array.of(0, 0, 1, 0x65)), "h264");
  assertEquals(videoKind(Uint8Array.of(0, 0, 1, 0xb0, 1)), "mpeg4");
  assertEquals(videoKind(Uint8Array.of(0, 0, 1, 0xb6)), "mpeg4");
  assertEquals(videoKind(Uint8Array.of(1, 2, 3, 4)), "unknown");
  // A door's H.264 key frame begins with an access unit delimiter (00 00 01 09), not MPEG-4.
  assertEquals(videoKind(Uint8Array.of(0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x42)), "h264");
});

Deno.test("snapshots: the codec of the fixtures' first frames (what the relay's tap keeps)", async () => {
  const fixtures = new URL("../../tests/fixtures/video/", import.meta.url);
  const h264 = new CodedVideoSource(await Deno.readFile(new URL("card.h264", fixtures)), "h264");
  const m4v = new CodedVideoSource(await Deno.readFile(new URL("card.m4v", fixtures)), "mpeg4");
  assertEquals([videoKind(h264.frame(1)), videoKind(m4v.frame(1))], ["h264", "mpeg4"]);
});

Deno.test("snapshots: one per call, bounded in size and count (newest kept)", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new SnapshotStore(kv, { keep: 5 });
    const jpeg = Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0xff, 0xd9);
    assert(await store.put("c0", jpeg, 2, 1000));
    assert(!(await store.put("c0", Uint8Array.of(9), 2, 1001)), "the first frame stays");
    assert(!(await store.put("big", new Uint8Array(SNAPSHOT_MAX_BYTES + 1), 2, 1002)));
    assertEquals((await store.get("c0"))?.bytes, jpeg);
    assertEquals((await store.get("c0"))?.kind, "jpeg");
    for (let i = 1; i < 10; i++) await store.put(`c${i}`, jpeg, 2, 1000 + i * 10);
    assertEquals(await store.prune(), 5);
    assertEquals(await store.get("c0"), undefined);
    assertEquals([...(await store.kinds(["c4", "c5", "c9", "nope"])).keys()], ["c5", "c9"]);
  } finally {
    kv.close();
  }
});
