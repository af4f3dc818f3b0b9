import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../testing/mod.ts";
import { ABSOLUTE_MS, IDLE_MS, SessionStore } from "./sessions.ts";
import { LoginLimiter, PER_IP, PER_NAME_IP, WINDOW_MS } from "./login_limiter.ts";

const account = { name: "manager", createdAt: "", passwordSetAt: "t0", mustChange: false };

Deno.test("sessions: idle expiry restarts with each request; absolute expiry does not", () => {
  const clock = new FakeClock();
  const store = new SessionStore({ clock });
  const s = store.create(account, "10.0.0.9");
  assert(/^[A-Za-z0-9_-]{43}$/.test(s.id), "256 random bits, base64url");
  clock.advance(IDLE_MS - 1);
  assert(store.touch(s.id));
  clock.advance(IDLE_MS - 1);
  assert(store.touch(s.id), "still alive: it was used");
  clock.advance(IDLE_MS);
  assertEquals(store.touch(s.id), undefined, "idle too long");

  const t = store.create(account, "10.0.0.9");
  for (let at = 0; at < ABSOLUTE_MS - IDLE_MS; at += IDLE_MS / 2) {
    clock.advance(IDLE_MS / 2);
    assert(store.touch(t.id));
  }
  clock.advance(IDLE_MS);
  assertEquals(store.touch(t.id), undefined, "12 h after login whatever happens");
  assertEquals(store.touch(undefined), undefined);
});

Deno.test("sessions: bounded; ending one or all of an account's", () => {
  const clock = new FakeClock();
  const store = new SessionStore({ clock, max: 3 });
  const ids = [1, 2, 3, 4].map(() => store.create(account, "ip").id);
  assertEquals(store.size, 3);
  assertEquals(store.peek(ids[0]), undefined, "the oldest was dropped");
  store.endFor("manager", ids[3]);
  assertEquals([store.size, store.peek(ids[3])?.id], [1, ids[3]]);
  store.end(ids[3]!);
  assertEquals(store.size, 0);
});

Deno.test("login limiter: 5 failures of a name from an IP lock it for the window; 20 from an IP lock the IP", () => {
  const clock = new FakeClock();
  const l = new LoginLimiter(clock);
  for (let i = 0; i < PER_NAME_IP; i++) {
    assertEquals(l.retryAfterS("manager", "10.0.0.9"), 0);
    l.failed("manager", "10.0.0.9");
  }
  assertEquals(l.retryAfterS("manager", "10.0.0.9"), WINDOW_MS / 1000);
  assertEquals(l.retryAfterS("manager", "10.0.0.8"), 0, "another IP may try");
  assertEquals(l.retryAfterS("other", "10.0.0.9"), 0, "another name may be tried");
  clock.advance(WINDOW_MS);
  assertEquals(l.retryAfterS("manager", "10.0.0.9"), 0, "the window slid past");
  for (let i = 0; i < PER_IP; i++) l.failed(`name${i}`, "10.0.0.7");
  assert(l.retryAfterS("fresh", "10.0.0.7") > 0, "too many names from one IP");
  l.failed("x", "10.0.0.6");
  l.succeeded("x", "10.0.0.6");
  assertEquals(l.retryAfterS("x", "10.0.0.6"), 0);
});
