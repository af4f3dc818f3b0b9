/**
 * `/app/` (index.html) and `/app/app.css` of the web phone, as string modules. Every text is
 * set by `app.js` from the `WP.STRINGS` table (`data-i18n` names the key); the English in the
 * markup is what a browser without scripts would show.
 *
 * @module
 */

/** The page. */
export const INDEX_HTML: string = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="theme-color" content="#0f766e">
<meta name="referrer" content="no-referrer">
<link rel="manifest" href="/app/manifest.webmanifest">
<link rel="icon" href="/app/icon.svg" type="image/svg+xml">
<link rel="apple-touch-icon" href="/app/icon-192.png">
<link rel="stylesheet" href="/app/app.css">
<title>Intercom</title>
</head>
<body>
<header class="bar">
  <h1 data-i18n="title">Intercom</h1>
  <span id="status" class="status" role="status" data-state="connecting"><span class="dot" aria-hidden="true"></span><span id="status-text">Connecting…</span></span>
  <button id="lang" class="lang" type="button" lang="zh" aria-label="Switch to Chinese">中文</button>
</header>
<main>
  <div id="notice" class="notice" role="alert" hidden></div>
  <p id="unreachable" class="unreachable" hidden data-i18n="unreachable">The gateway is unreachable.</p>

  <section id="screen-setup" class="screen" hidden>
    <h2 data-i18n="setupTitle">Set up this phone</h2>
    <p data-i18n="setupText">Scan the QR code from your building manager, or paste the link here.</p>
    <form id="link-form" class="link-form">
      <label for="link-input" data-i18n="pasteLink">Provisioning link</label>
      <input id="link-input" type="url" inputmode="url" autocomplete="off" spellcheck="false" required>
      <button type="submit" class="primary" data-i18n="addRoom">Add room</button>
    </form>
    <p id="setup-error" class="error" role="alert"></p>
  </section>

  <section id="screen-home" class="screen" hidden>
    <h2 data-i18n="rooms">Rooms</h2>
    <ul id="rooms" class="rooms"></ul>
    <h2 data-i18n="dnd">Do not disturb</h2>
    <div id="dnd" class="dnd" role="group" aria-labelledby="dnd-title">
      <span id="dnd-title" class="visually-hidden" data-i18n="dnd">Do not disturb</span>
      <button type="button" data-dnd="off" data-i18n="dndOff">Off</button>
      <button type="button" data-dnd="hour" data-i18n="dndHour">1 hour</button>
      <button type="button" data-dnd="morning" data-i18n="dndMorning">Until 7:00</button>
      <button type="button" data-dnd="nightly" data-i18n="dndNightly">Every night 22:00–7:00</button>
    </div>
    <p id="dnd-state" class="dnd-state" role="status"></p>
    <div id="push-section" hidden>
      <h2 data-i18n="push">When the app is closed</h2>
      <button type="button" id="btn-push" class="push-btn" data-i18n="pushEnable" hidden>Ring this phone when the app is closed</button>
      <p id="push-state" class="dnd-state" role="status"></p>
    </div>
    <h2 data-i18n="recent">Recent calls</h2>
    <ol id="history" class="history"></ol>
  </section>

  <section id="screen-call" class="screen call" hidden>
    <p id="call-title" class="call-title" data-i18n="incoming">Door calling</p>
    <p id="call-door" class="call-door"></p>
    <div class="video">
      <canvas id="video" width="352" height="288" role="img" aria-label="Door video"></canvas>
      <p id="video-note" class="video-note" data-i18n="videoWaiting">Waiting for video…</p>
    </div>
    <p id="call-outcome" class="call-outcome" role="status"></p>
    <div class="actions">
      <button id="btn-answer" type="button" class="round answer" data-i18n="answer">Answer</button>
      <button id="btn-unlock" type="button" class="round unlock" data-i18n="unlock">Open door</button>
      <button id="btn-mute" type="button" class="round mute" aria-pressed="false" data-i18n="mute" hidden>Mute</button>
      <button id="btn-hangup" type="button" class="round hangup" data-i18n="hangup">Hang up</button>
    </div>
  </section>
</main>
<script src="/app/core.js"></script>
<script src="/app/app.js"></script>
</body>
</html>
`;

/** The style sheet: one column, phone first, large touch targets. */
export const APP_CSS: string = String.raw`:root {
  --teal: #0f766e; --teal-dark: #115e59; --red: #dc2626; --green: #16a34a; --amber: #b45309;
  --bg: #f8fafc; --fg: #0f172a; --muted: #475569; --card: #ffffff; --line: #e2e8f0;
  color-scheme: light;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font-size: 17px; line-height: 1.4; }
[hidden] { display: none !important; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.bar { display: flex; align-items: center; gap: 10px; padding: 12px 16px; padding-top: max(12px, env(safe-area-inset-top)); background: var(--teal); color: #fff; }
.bar h1 { font-size: 20px; margin: 0; flex: 1; }
.status { display: inline-flex; align-items: center; gap: 6px; font-size: 15px; }
.status .dot { width: 10px; height: 10px; border-radius: 50%; background: #94a3b8; }
.status[data-state="online"] .dot { background: #4ade80; box-shadow: 0 0 0 3px rgba(74, 222, 128, .3); }
.status[data-state="offline"] .dot { background: #f87171; }
.status[data-state="connecting"] .dot { background: #fbbf24; }
.lang { background: transparent; color: #fff; border: 1px solid rgba(255,255,255,.6); border-radius: 8px; padding: 6px 10px; font-size: 15px; min-height: 36px; }
main { max-width: 560px; margin: 0 auto; padding: 12px 16px 32px; }
h2 { font-size: 16px; color: var(--muted); margin: 20px 0 8px; font-weight: 600; }
.notice { background: #fef2f2; color: #991b1b; border: 1px solid #fecaca; border-radius: 10px; padding: 12px; margin: 8px 0; }
.notice.info { background: #f0fdfa; color: var(--teal-dark); border-color: #99f6e4; }
.notice button { margin-left: 8px; }
.unreachable { background: #fffbeb; color: #78350f; border: 1px solid #fde68a; border-radius: 10px; padding: 12px; margin: 8px 0; }
.error { color: var(--red); min-height: 1.4em; }
.link-form { display: flex; flex-direction: column; gap: 8px; }
.link-form input { font-size: 16px; padding: 12px; border: 1px solid var(--line); border-radius: 10px; }
button { font: inherit; cursor: pointer; }
button.primary { background: var(--teal); color: #fff; border: 0; border-radius: 10px; padding: 12px; min-height: 48px; }
.rooms, .history { list-style: none; margin: 0; padding: 0; background: var(--card); border: 1px solid var(--line); border-radius: 12px; }
.rooms li, .history li { padding: 12px 14px; border-top: 1px solid var(--line); display: flex; gap: 8px; align-items: center; }
.rooms li:first-child, .history li:first-child { border-top: 0; }
.rooms .name { flex: 1; }
.rooms .addr, .history .when { color: var(--muted); font-size: 14px; }
.rooms .removed { color: var(--red); font-size: 14px; white-space: nowrap; }
.rooms .forget { background: var(--card); color: var(--red); border: 1px solid var(--red); border-radius: 8px; padding: 6px 10px; min-height: 36px; }
.rooms .state { font-size: 14px; white-space: nowrap; }
.rooms .state.on { color: var(--green); }
.rooms .state.off { color: var(--muted); }
.history .what { flex: 1; }
.history .outcome-missed .what { color: var(--red); }
.history .empty { color: var(--muted); }
.dnd { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
.dnd button { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 10px; min-height: 48px; color: var(--fg); }
.dnd button[aria-pressed="true"] { background: var(--teal); border-color: var(--teal); color: #fff; }
.dnd-state { color: var(--muted); font-size: 15px; }
.push-btn { width: 100%; background: var(--teal); border: 0; border-radius: 10px; padding: 12px; min-height: 48px; color: #fff; font-size: 16px; }
.call { text-align: center; }
.call-title { font-size: 22px; font-weight: 700; margin: 8px 0 0; }
.call-door { color: var(--muted); margin: 4px 0 12px; }
.video { position: relative; background: #0b1220; border-radius: 14px; overflow: hidden; aspect-ratio: 352 / 288; }
.video canvas { width: 100%; height: 100%; display: block; object-fit: contain; }
.video-note { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center; margin: 0; color: #cbd5e1; padding: 16px; }
.call-outcome { min-height: 1.6em; font-weight: 600; margin: 12px 0; }
.call-outcome.ok { color: var(--green); }
.call-outcome.bad { color: var(--red); }
.actions { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; margin-top: 8px; }
.round { border: 0; border-radius: 16px; min-height: 72px; padding: 10px 6px; color: #fff; font-weight: 600; font-size: 17px; }
.round.answer { background: var(--green); }
.round.unlock { background: var(--teal); }
.round.hangup { background: var(--red); }
.round.mute { background: #334155; }
.round.mute[aria-pressed="true"] { background: var(--amber); }
.round:focus-visible, .push-btn:focus-visible, .dnd button:focus-visible, .lang:focus-visible { outline: 3px solid #fbbf24; outline-offset: 2px; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0b1220; --fg: #e2e8f0; --muted: #94a3b8; --card: #111827; --line: #1f2937; color-scheme: dark; }
  .notice { background: #450a0a; color: #fecaca; border-color: #7f1d1d; }
  .notice.info { background: #042f2e; color: #99f6e4; border-color: #115e59; }
  .unreachable { background: #451a03; color: #fde68a; border-color: #78350f; }
}
`;
