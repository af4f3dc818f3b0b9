/**
 * The console's API end to end (without a browser; tests/admin_browser_test.ts drives the pages):
 * nothing answers without a session, logins are limited and audited, state-changing requests
 * need the CSRF header, bindings give a token, link and QR code once, a live call can be hung up,
 * history filters, the snapshot of a call is its first JPEG frame, the trace streams door
 * packets and phone orders, `--admin-host` hides the console on other addresses, and HTTPS
 * works with the gateway's own CA.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, openPhone, sleep } from "./helpers/sims.ts";
import { addAdmin, api, collectSse, login, PASSWORD } from "./helpers/admin_console.ts";

const opts = { ignore: !inNetns, sanitizeOps: false, sanitizeResources: false };
const T = (ms: number) => ms * TIME_SCALE;
const ROOM = "00010108090";

async function until(what: string, check: () => boolean | Promise<boolean>, ms = T(5000)) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`Timed out waiting for ${what}`);
}

Deno.test(
  "console API: nothing answers without a session; the login page and its assets do",
  opts,
  async () => {
    const gw = await startTestGateway();
    try {
      const base = gw.httpBase;
      for (const path of ["/api/v1/overview", "/api/v1/calls", "/api/v1/events", "/api/v1/nope"]) {
        const r = await api(base, undefined, "GET", path);
        assertEquals(r.status, 401, path);
        assertEquals((r.body.error as { code: string }).code, "unauthorized");
        assert(typeof (r.body.error as { message: string }).message === "string");
      }
      const post = await api(base, undefined, "POST", "/api/v1/bindings", {
        uid: "u",
        room: `Y${ROOM}`,
      });
      assertEquals(post.status, 401);
      const page = await fetch(`${base}/admin`, { redirect: "manual" });
      await page.body?.cancel();
      assertEquals([page.status, page.headers.get("location")], [303, "/admin/login"]);
      const script = await fetch(`${base}/admin/assets/console.js`);
      await script.body?.cancel();
      assertEquals(script.status, 401, "the console's script needs a session");
      for (
        const path of [
          "/admin/login",
          "/admin/assets/login.js",
          "/admin/assets/i18n.js",
          "/admin/assets/console.css",
        ]
      ) {
        const res = await fetch(`${base}${path}`);
        await res.body?.cancel();
        assertEquals(res.status, 200, path);
        assert(res.headers.get("content-security-policy")?.includes("default-src 'none'"));
      }
      const zh = await fetch(`${base}/admin/login`, {
        headers: { "accept-language": "zh-CN,zh;q=0.9,en;q=0.8" },
      });
      assert((await zh.text()).includes('lang="zh-CN"'));
      // The phone side is untouched by the console.
      const health = await fetch(`${base}/healthz`);
      assertEquals((await health.json()).ok, true);
    } finally {
      await gw.close();
    }
  },
);

Deno.test(
  "console API: a wrong password is refused and audited; 5 failures lock (name, IP) out; the session cookie is HttpOnly SameSite=Strict",
  opts,
  async () => {
    const gw = await startTestGateway();
    try {
      await addAdmin(gw);
      const base = gw.httpBase;
      const attempt = (password: string, name = "manager") =>
        fetch(`${base}/api/v1/session`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-requested-with": "intercom-console" },
          body: JSON.stringify({ name, password }),
        });
      const noHeader = await fetch(`${base}/api/v1/session`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "manager", password: PASSWORD }),
      });
      assertEquals([noHeader.status, (await noHeader.json()).error.code], [403, "csrf"]);
      for (let i = 0; i < 5; i++) {
        const r = await attempt("wrong password");
        assertEquals([r.status, (await r.json()).error.code], [401, "unauthorized"]);
      }
      const locked = await attempt(PASSWORD);
      assertEquals(locked.status, 429);
      assert(Number(locked.headers.get("retry-after")) > 0);
      await locked.body?.cancel();
      // Another name from the same IP is not locked by these five.
      await gw.app.admins.add("installer", PASSWORD);
      const other = await attempt(PASSWORD, "installer");
      assertEquals(other.status, 200);
      const cookie = other.headers.get("set-cookie")!;
      await other.body?.cancel();
      assert(/HttpOnly/.test(cookie) && /SameSite=Strict/.test(cookie) && /Path=\//.test(cookie));
      assert(!/Secure/.test(cookie), "no Secure flag over plain HTTP (localhost)");
      const session = cookie.split(";")[0]!;
      const audit = await api(base, session, "GET", "/api/v1/audit?limit=10");
      const entries = audit.body.entries as { admin: string; action: string; ip: string }[];
      assertEquals(entries[0]!.action, "login");
      assertEquals(entries.filter((e) => e.action === "login_failed").length, 5);
      assertEquals(entries[1]!.ip, "127.0.0.1");
    } finally {
      await gw.close();
    }
  },
);

Deno.test(
  "console API: state changes need the CSRF header and the own origin; logout ends the session; a removed account's session ends",
  opts,
  async () => {
    const gw = await startTestGateway();
    try {
      await addAdmin(gw);
      const base = gw.httpBase;
      const cookie = await login(base);
      const bare = await fetch(`${base}/api/v1/bindings`, {
        method: "POST",
        headers: { cookie, "content-type": "application/json" },
        body: JSON.stringify({ uid: "u1", room: `Y${ROOM}` }),
      });
      assertEquals([bare.status, (await bare.json()).error.code], [403, "csrf"]);
      const foreign = await fetch(`${base}/api/v1/bindings`, {
        method: "POST",
        headers: {
          cookie,
          "content-type": "application/json",
          "x-requested-with": "intercom-console",
          origin: "http://evil.example",
        },
        body: JSON.stringify({ uid: "u1", room: `Y${ROOM}` }),
      });
      assertEquals(foreign.status, 403);
      await foreign.body?.cancel();
      assertEquals((await gw.app.bindings.list()).length, 0, "nothing was bound");
      const big = await api(base, cookie, "POST", "/api/v1/bindings", { uid: "x".repeat(70_000) });
      assertEquals([big.status, (big.body.error as { code: string }).code], [413, "too_large"]);

      assertEquals((await api(base, cookie, "DELETE", "/api/v1/session")).status, 200);
      assertEquals((await api(base, cookie, "GET", "/api/v1/overview")).status, 401);

      const again = await login(base);
      const me = await api(base, again, "GET", "/api/v1/session");
      assertEquals([me.status, me.body.name, me.body.community], [200, "manager", null]);
      // One box on its own: no community view.
      const alone = await api(base, again, "GET", "/api/v1/community/calls");
      assertEquals([alone.status, (alone.body.error as { code: string }).code], [404, "not_found"]);
      await gw.app.admins.remove("manager");
      assertEquals((await api(base, again, "GET", "/api/v1/session")).status, 401);
    } finally {
      await gw.close();
    }
  },
);

Deno.test(
  "console API: a generated password must be changed first; the change ends the account's other sessions",
  opts,
  async () => {
    const gw = await startTestGateway();
    try {
      const { password } = await gw.app.admins.add("boss");
      const base = gw.httpBase;
      const a = await login(base, "boss", password);
      const b = await login(base, "boss", password);
      const blocked = await api(base, a, "GET", "/api/v1/overview");
      assertEquals([blocked.status, (blocked.body.error as { code: string }).code], [
        403,
        "password_change_required",
      ]);
      assertEquals((await api(base, a, "GET", "/api/v1/session")).body.mustChange, true);
      const weak = await api(base, a, "POST", "/api/v1/session/password", {
        current: password,
        password: "short",
      });
      assertEquals(weak.status, 400);
      const changed = await api(base, a, "POST", "/api/v1/session/password", {
        current: password,
        password: "a brand new password",
      });
      assertEquals(changed.status, 200);
      assertEquals((await api(base, a, "GET", "/api/v1/overview")).status, 200);
      assertEquals(
        (await api(base, b, "GET", "/api/v1/overview")).status,
        401,
        "the other session ended",
      );
      assertEquals((await gw.app.admins.get("boss"))!.mustChange, false);
      assertEquals(await gw.app.admins.verify("boss", password), undefined);
    } finally {
      await gw.close();
    }
  },
);

Deno.test(
  "console API: bindings — add gives token, link and QR once; rotate; remove cuts the phone off; JSON errors",
  opts,
  async () => {
    const gw = await startTestGateway();
    try {
      await addAdmin(gw);
      const base = gw.httpBase;
      const cookie = await login(base);
      const bad = await api(base, cookie, "POST", "/api/v1/bindings", { uid: "u 1", room: "nope" });
      assertEquals(bad.status, 400);
      assertEquals((bad.body.error as { code: string }).code, "bad_request");
      assert((bad.body.error as { message: string }).message.startsWith("Cannot bind"));

      const added = await api(base, cookie, "POST", "/api/v1/bindings", {
        uid: "uid-a",
        room: `Y${ROOM}`,
        community: "花苑",
      });
      assertEquals(added.status, 201);
      const token = added.body.token as string;
      const link = added.body.link as string;
      assertEquals(
        link,
        `${base}/app/#uid=uid-a&room=Y${ROOM}&token=${token}&community=%E8%8A%B1%E8%8B%91`,
      );
      assert((added.body.qrSvg as string).startsWith("<svg"));
      const list = await api(base, cookie, "GET", "/api/v1/bindings");
      assert(!JSON.stringify(list.body).includes(token), "the token is never listed");

      const { PhoneSim } = await import("../src/sim/phone_sim.ts");
      const phone = new PhoneSim({
        url: gw.url,
        uid: "uid-a",
        token,
        roomAddress: `Y${ROOM}`,
        community: "花苑",
        heartbeatMs: 1000,
        script: { answer: "ring" },
      });
      try {
        await phone.start();
        await phone.waitFor("login ok", T(5000));
        const rooms = await api(base, cookie, "GET", "/api/v1/rooms");
        const room =
          (rooms.body.rooms as { roomKey: string; phones: { uid: string; online: unknown }[] }[])[
            0
          ]!;
        assertEquals(room.roomKey, ROOM);
        assert(room.phones[0]!.online !== null, "shown online");

        const rotated = await api(
          base,
          cookie,
          "POST",
          `/api/v1/bindings/${ROOM}/uid-a/rotate`,
          {},
        );
        assertEquals(rotated.status, 200);
        assert(rotated.body.token !== token);
        await phone.waitFor("closed", T(3000));
        const removed = await api(base, cookie, "DELETE", `/api/v1/bindings/${ROOM}/uid-a`);
        assertEquals(removed.body.removed, 1);
        const gone = await api(base, cookie, "DELETE", `/api/v1/bindings/${ROOM}/uid-a`);
        assertEquals([gone.status, (gone.body.error as { code: string }).code], [404, "not_found"]);
        const actions = ((await api(base, cookie, "GET", "/api/v1/audit")).body.entries as {
          action: string;
          target: string;
        }[])
          .map((e) => `${e.action} ${e.target ?? ""}`);
        assertEquals(actions.slice(0, 3), [
          `binding_remove uid-a@${ROOM}`,
          `binding_rotate uid-a@${ROOM}`,
          `binding_add uid-a@${ROOM}`,
        ]);
      } finally {
        await phone.close().catch(() => {});
      }
    } finally {
      await gw.close();
    }
  },
);

Deno.test(
  "console API: a live call with counters and start time, hung up from the console; history filters; the visitor snapshot is its first JPEG frame; the trace streams it",
  opts,
  async () => {
    const gw = await startTestGateway();
    await addAdmin(gw);
    const base = gw.httpBase;
    const cookie = await login(base);
    const phone = await openPhone(gw, "uid-a", { answer: "callok", enableVideo: "ws" });
    const door = await openDoor({ fps: 10, ringTimeoutS: 30 });
    try {
      let ringing: Promise<unknown> | undefined;
      const trace = await collectSse(
        `${base}/api/v1/trace?door=M00010100`,
        cookie,
        (ev) => ev.some((e) => (e.data as { summary: string }).summary.startsWith("call ok")),
        T(8000),
        () => {
          ringing = door.start();
        },
      );
      const lines = trace.map((e) =>
        e.data as { kind: string; direction: string; summary: string }
      );
      assert(
        lines.some((l) =>
          l.kind === "door" && l.direction === "in" && l.summary.startsWith("ASK CALL M00010100")
        ),
        JSON.stringify(lines),
      );
      assert(
        lines.some((l) =>
          l.kind === "phone" && l.direction === "out" && l.summary.startsWith("call ")
        ),
      );
      // Tracing stops with the last listener (the server sees the stream cancelled).
      await until("no trace listener", () => !gw.app.events.wants("phone_trace"));

      await until("door video", () => (gw.app.live.calls()[0]?.media?.doorIn ?? 0) > 10);
      const live = await api(base, cookie, "GET", "/api/v1/calls/live");
      const call = (live.body.calls as {
        callId: string;
        phase: string;
        since: number;
        media: { doorIn: number };
      }[])[0]!;
      assertEquals(call.phase, "ringing");
      assert(call.since > 0 && call.media.doorIn > 0);

      const hung = await api(base, cookie, "POST", `/api/v1/calls/${call.callId}/hangup`, {});
      assertEquals(hung.status, 200);
      await ringing;
      await until(
        "the record closed",
        async () => !!(await gw.app.records.get(call.callId))?.endedAt,
      );
      const record = await gw.app.records.get(call.callId);
      assertEquals(record?.endReason, "admin_hangup");

      const snap = await fetch(`${base}/api/v1/calls/${call.callId}/snapshot`, {
        headers: { cookie },
      });
      assertEquals(snap.headers.get("content-type"), "image/jpeg");
      const jpeg = new Uint8Array(await snap.arrayBuffer());
      assertEquals([jpeg[0], jpeg[1], jpeg.at(-2), jpeg.at(-1)], [0xff, 0xd8, 0xff, 0xd9]);

      const all = await api(base, cookie, "GET", "/api/v1/calls");
      const row = (all.body.calls as { callId: string; outcome: string; snapshot: string }[])[0]!;
      assertEquals([row.callId, row.outcome, row.snapshot], [call.callId, "missed", "jpeg"]);
      const none = await api(base, cookie, "GET", "/api/v1/calls?room=Y00010108091");
      assertEquals(none.body.calls, []);
      const byRoom = await api(
        base,
        cookie,
        "GET",
        `/api/v1/calls?room=S${ROOM}&outcome=missed&door=M00010100`,
      );
      assertEquals((byRoom.body.calls as unknown[]).length, 1);
      const answered = await api(base, cookie, "GET", "/api/v1/calls?outcome=answered");
      assertEquals(answered.body.calls, [], "nobody talked: not answered");
      const future = await api(base, cookie, "GET", `/api/v1/calls?from=${Date.now() + 60_000}`);
      assertEquals(future.body.calls, []);
      const badOutcome = await api(base, cookie, "GET", "/api/v1/calls?outcome=weird");
      assertEquals(badOutcome.status, 400);
      const audit = (await api(base, cookie, "GET", "/api/v1/audit")).body.entries as {
        action: string;
        target: string;
      }[];
      assertEquals([audit[0]!.action, audit[0]!.target], ["call_hangup", call.callId]);
    } finally {
      await phone.close().catch(() => {});
      await door.close().catch(() => {});
      await gw.close();
    }
  },
);

Deno.test(
  "console API: the live event stream reports a call; doors can be pinned and forgotten",
  opts,
  async () => {
    const gw = await startTestGateway();
    await addAdmin(gw);
    const base = gw.httpBase;
    const cookie = await login(base);
    // A door is learned from a call that completed its handshake (answered, keep-alive replied).
    const phone = await openPhone(gw, "uid-a", { answer: "callok" });
    const door = await openDoor({ fps: 10, ringTimeoutS: 30 });
    try {
      let ringing: Promise<unknown> | undefined;
      const events = await collectSse(
        `${base}/api/v1/events`,
        cookie,
        (ev) => ev.some((e) => (e.data as { type: string }).type === "call_started"),
        T(8000),
        () => {
          ringing = door.start();
        },
      );
      assert(
        events.some((e) =>
          e.event === "change" && (e.data as { type: string }).type === "call_started"
        ),
      );
      await until("door known", () => gw.app.live.doors().some((d) => d.address === "M00010100"));
      await door.hangUp();
      await ringing;
      type Door = { address: string; mode: string; ip: string; callsToday: number };
      let d: Door | undefined;
      await until("the call counted for its door", async () => {
        const doors = await api(base, cookie, "GET", "/api/v1/doors");
        d = (doors.body.doors as Door[])[0];
        return d?.callsToday === 1;
      });
      assertEquals([d!.address, d!.mode, d!.ip, d!.callsToday], [
        "M00010100",
        "learned",
        "127.0.0.2",
        1,
      ]);
      assertEquals(
        (await api(base, cookie, "POST", "/api/v1/doors/M00010100/pin", {})).status,
        200,
      );
      assertEquals(gw.app.live.doors()[0]!.mode, "pinned");
      assertEquals(
        (await api(base, cookie, "POST", "/api/v1/doors/M00010100/forget", {})).status,
        200,
      );
      assertEquals(gw.app.live.doors().length, 0);
      const unknown = await api(base, cookie, "POST", "/api/v1/doors/M00010100/forget", {});
      assertEquals(unknown.status, 404);
      const badAddr = await api(base, cookie, "POST", "/api/v1/doors/..%2F/forget", {});
      assertEquals(badAddr.status, 400);
    } finally {
      await phone.close().catch(() => {});
      await door.close().catch(() => {});
      await gw.close();
    }
  },
);

Deno.test(
  "console API: --admin-host hides /admin and /api on other local addresses (404); the phone side answers there",
  opts,
  async () => {
    const gw = await startTestGateway({ httpHost: "0.0.0.0", adminHost: "127.0.0.1" });
    try {
      await addAdmin(gw);
      const port = gw.app.addresses.http.port;
      for (const path of ["/admin/login", "/api/v1/overview", "/admin"]) {
        const other = await fetch(`http://127.0.0.3:${port}${path}`, { redirect: "manual" });
        await other.body?.cancel();
        assertEquals(other.status, 404, `${path} on another address`);
      }
      const health = await fetch(`http://127.0.0.3:${port}/healthz`);
      assertEquals(health.status, 200);
      await health.body?.cancel();
      const here = await fetch(`http://127.0.0.1:${port}/admin/login`);
      await here.body?.cancel();
      assertEquals(here.status, 200);
      const cookie = await login(`http://127.0.0.1:${port}`);
      assertEquals(
        (await api(`http://127.0.0.1:${port}`, cookie, "GET", "/api/v1/overview")).status,
        200,
      );
    } finally {
      await gw.close();
    }
  },
);

Deno.test(
  "console API: HTTPS with the gateway's own CA — trusted via /ca.crt, Secure cookie, fingerprint in /healthz; plain HTTP from the LAN is sent to HTTPS",
  opts,
  async () => {
    const gw = await startTestGateway({ httpsPort: 0 });
    try {
      await addAdmin(gw);
      const https = gw.app.addresses.https!;
      const caRes = await fetch(`${gw.httpBase}/ca.crt`);
      const caPem = await caRes.text();
      assert(caPem.startsWith("-----BEGIN CERTIFICATE-----"));
      const client = Deno.createHttpClient({ caCerts: [caPem] });
      try {
        const base = `https://localhost:${https.port}`;
        const cookieRes = await fetch(`${base}/api/v1/session`, {
          client,
          method: "POST",
          headers: { "content-type": "application/json", "x-requested-with": "intercom-console" },
          body: JSON.stringify({ name: "manager", password: PASSWORD }),
        });
        await cookieRes.body?.cancel();
        assert(/; Secure/.test(cookieRes.headers.get("set-cookie") ?? ""), "Secure over HTTPS");
        const health = await (await fetch(`${base}/healthz`, { client })).json();
        assertEquals(health.https.port, https.port);
        assertEquals(health.https.caFingerprint, gw.app.tls!.caFingerprint);
        assert(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(health.https.caFingerprint));
      } finally {
        client.close();
      }
      // A LAN client on plain HTTP: the handler sees its address (a loopback client may stay).
      const lan = { secure: false, adminHere: true, remote: "192.168.1.50" };
      const page = await gw.app.console.handle(
        new Request(`http://192.168.1.10:8080/admin/login`),
        lan,
      )!;
      assertEquals(page.status, 308);
      assertEquals(page.headers.get("location"), `https://192.168.1.10:${https.port}/admin/login`);
      const call = await gw.app.console.handle(
        new Request(`http://192.168.1.10:8080/api/v1/overview`),
        lan,
      )!;
      assertEquals([call.status, (await call.json()).error.code], [403, "https_required"]);
      // A binding made from a console on localhost links phones to the HTTPS port.
      const cookie = await login(gw.httpBase);
      const added = await api(gw.httpBase, cookie, "POST", "/api/v1/bindings", {
        uid: "u1",
        room: `Y${ROOM}`,
      });
      assert((added.body.link as string).startsWith("https://"), added.body.link as string);
      assert(
        (added.body.link as string).includes(`:${https.port}/app/#uid=u1&room=Y${ROOM}&token=`),
      );
    } finally {
      await gw.close();
    }
  },
);

Deno.test(
  "console API: the overview's health has the store's size and the data disk's free and total space",
  opts,
  async () => {
    const gw = await startTestGateway();
    try {
      await addAdmin(gw);
      const cookie = await login(gw.httpBase);
      const o = (await api(gw.httpBase, cookie, "GET", "/api/v1/overview")).body;
      const disk = o.disk as { ok: boolean; freeBytes: number; totalBytes: number; low: boolean };
      assert(disk.ok, JSON.stringify(disk));
      assert(disk.totalBytes > 0 && disk.freeBytes > 0 && disk.freeBytes <= disk.totalBytes);
      assertEquals(typeof disk.low, "boolean");
      assert((o.store as { bytes: number }).bytes > 0, "the KV file's size");
    } finally {
      await gw.close();
    }
  },
);
