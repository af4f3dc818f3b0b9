/**
 * `/app/sw.js`: the web phone's service worker, as a string module. It caches the app shell at
 * install (one cache per version: the gateway writes the version into the script, so a new
 * gateway build installs a new worker and drops the old cache) and answers every GET under
 * `/app/` from that cache first, so the app opens without the gateway and says it is
 * unreachable. Nothing else is cached: signalling and media are live.
 *
 * Web Push (phone-protocol.md "push subscribe"): a `push` event carries the gateway's ring
 * (`{event: "ring", door, room, community, callId, uid, expiresAt}`, decrypted by the browser);
 * the worker shows a notification in the app's language (the app keeps its choice in the cache
 * `wp-settings`), with the actions Answer and Open door. A click (or an action) focuses an open
 * app window and tells it `{type: "wake", callId, action}`, or opens `/app/#wake=CALLID&action=…`;
 * the app connects, gets `call` within the wake window, rings, and answers (Answer) or opens
 * the door (Open door) by itself.
 *
 * When the call ends the gateway pushes `{event: "ring ended", callId, outcome, missed, …}`: the
 * worker replaces the ringing notification (same tag, silent, no actions) with "Missed call"
 * (kept) or "Call ended" (closed after 4 s), or, when a window of the app is visible, only
 * closes it. It always shows something because Chromium shows its own "This site has been
 * updated in the background" for a push that leaves no notification (closing one does not
 * count) once the site's small allowance of silent pushes is spent.
 *
 * Test hook: `self.testNotificationClick(tag, action)` (called from DevTools on the worker)
 * runs the click handler's path for a shown notification, since headless Chromium cannot click
 * a system notification; the URL it opens is kept in `self.lastOpenedUrl` (`openWindow`
 * refuses outside a real click). No page can reach it: it is not a message handler.
 * `self.pushes` counts pushes seen and notifications shown (and the last one), and records the
 * last ring-ended pushes (`ended`: tag, notifications found under it, what replaced them), for
 * DevTools.
 *
 * @module
 */

/** The worker's text; `@VERSION@` and `@SHELL@` are filled in by the handler. */
export const SW_JS_TEMPLATE: string = String.raw`/* Web phone service worker. */
'use strict';
var CACHE = 'webphone-@VERSION@';
var SHELL = @SHELL@;
importScripts('/app/core.js');
var SETTINGS = 'wp-settings';
self.lastOpenedUrl = '';

function appLang() {
  return caches.open(SETTINGS).then(function (c) { return c.match('/app/__lang'); })
    .then(function (r) { return r ? r.text() : ''; })
    .catch(function () { return ''; })
    .then(function (saved) { return WP.pickLang(saved, [self.navigator.language]); });
}

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(SHELL); }).then(function () {
    return self.skipWaiting();
  }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf('webphone-') === 0 && k !== CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener('fetch', function (event) {
  var req = event.request;
  if (req.method !== 'GET') return;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin || url.pathname.indexOf('/app/') !== 0) return;
  var key = req.mode === 'navigate' || url.pathname === '/app/index.html' ? '/app/' : url.pathname;
  event.respondWith(caches.open(CACHE).then(function (c) {
    return c.match(key).then(function (hit) {
      return hit || fetch(req);
    });
  }));
});

self.pushes = { seen: 0, shown: 0, closed: 0, error: '', ended: [] };
self.addEventListener('notificationclose', function () { self.pushes.closed++; });

/** Shows what a push asks to show, and keeps a record of it for DevTools. */
function show(n, options, data) {
  return self.registration.showNotification(n.title, Object.assign({
    body: n.body, tag: n.tag, icon: '/app/icon-192.png', badge: '/app/icon-192.png', data: data
  }, options)).then(function () {
    self.pushes.shown++;
    self.pushes.last = { title: n.title, body: n.body, tag: n.tag, actions: n.actions || [], data: data };
    return self.registration.getNotifications().then(function (l) { self.pushes.listed = l.length; });
  });
}

function ring(push) {
  return appLang().then(function (lang) {
    var n = WP.ringNotification(lang, push, Date.now());
    return show(n, { renotify: true, requireInteraction: true, vibrate: [400, 200, 400], actions: n.actions }, push);
  });
}

/** A window of the app the resident can see now (then Chromium asks for no notification). */
function visibleApp() {
  return self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (list) {
    return list.some(function (c) {
      return c.visibilityState === 'visible' && new URL(c.url).pathname.indexOf('/app/') === 0;
    });
  });
}

/** How long "Call ended" stays before the worker closes it. */
var ENDED_SHOWN_MS = 4000;

/**
 * The call of a ring is over: its notification goes. A push must show a notification
 * (userVisibleOnly), and closing one does not count: Chromium would show its own "This site
 * has been updated in the background". So the ring is replaced under its tag, silently, by
 * "Missed call" (kept) or "Call ended" (closed a few seconds later, after the push event
 * settled), unless a window of the app is visible: then closing is enough.
 */
function ringEnded(push) {
  var tag = 'call-' + String(push.callId || '');
  return Promise.all([appLang(), self.registration.getNotifications({ tag: tag }), visibleApp()]).then(function (r) {
    var n = WP.endedNotification(r[0], push);
    var record = { tag: tag, missed: n.missed, found: r[1].length, shown: '', closedAfter: false };
    self.pushes.ended.push(record);
    if (self.pushes.ended.length > 20) self.pushes.ended.shift();
    if (r[2]) {
      r[1].forEach(function (x) { x.close(); });
      return;
    }
    return show(n, { renotify: false, silent: true, requireInteraction: false, actions: [] }, push).then(function () {
      record.shown = n.title;
      if (n.missed) return;
      setTimeout(function () {
        self.registration.getNotifications({ tag: tag }).then(function (l) {
          l.forEach(function (x) { if (x.data && x.data.event === 'ring ended') x.close(); });
          record.closedAfter = true;
        });
      }, ENDED_SHOWN_MS);
    });
  });
}

// One push after the other: a ring-ended push never overtakes its ring's showNotification.
var pushChain = Promise.resolve();
self.addEventListener('push', function (event) {
  self.pushes.seen++;
  var push = {};
  try { push = event.data ? event.data.json() : {}; } catch (e) { push = {}; }
  var handle = push.event === 'ring' ? ring : push.event === 'ring ended' ? ringEnded : null;
  if (!handle) return;
  var done = pushChain.then(function () { return handle(push); });
  pushChain = done.catch(function () {});
  event.waitUntil(done.catch(function (e) { self.pushes.error = String(e); throw e; }));
});

/** Brings the app up for a clicked notification: focus an open window, else open one. */
function openApp(notification, action) {
  var push = notification.data || {};
  notification.close();
  // A call that is over ("Missed call"): just the app, nothing to wake for.
  var over = push.event === 'ring ended';
  var wake = { type: 'wake', callId: String(push.callId || ''), action: action || 'show' };
  var url = over ? '/app/' : '/app/#wake=' + encodeURIComponent(wake.callId) + '&action=' + wake.action;
  return self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (list) {
    var win = list.filter(function (c) { return new URL(c.url).pathname.indexOf('/app/') === 0; })[0];
    if (win) {
      if (!over) win.postMessage(wake);
      return win.focus ? win.focus().catch(function () { return win; }) : win;
    }
    self.lastOpenedUrl = url;
    return self.clients.openWindow(url).catch(function () { return null; });
  });
}

self.addEventListener('notificationclick', function (event) {
  event.waitUntil(openApp(event.notification, event.action));
});

self.testNotificationClick = function (tag, action) {
  return self.registration.getNotifications({ tag: tag }).then(function (list) {
    var last = self.pushes.last;
    // Headless Chromium may list no notification it showed: the last one shown stands in.
    var n = list[0] || (last && last.tag === tag ? { data: last.data, close: function () {} } : null);
    return n ? openApp(n, action).then(function () { return self.lastOpenedUrl; }) : null;
  });
};
`;
