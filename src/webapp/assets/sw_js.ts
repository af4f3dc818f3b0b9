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
 * Test hook: `self.testNotificationClick(tag, action)` (called from DevTools on the worker)
 * runs the click handler's path for a shown notification, since headless Chromium cannot click
 * a system notification; the URL it opens is kept in `self.lastOpenedUrl` (`openWindow`
 * refuses outside a real click). No page can reach it: it is not a message handler.
 * `self.pushes` counts pushes seen and notifications shown (and the last one), for DevTools.
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

self.pushes = { seen: 0, shown: 0, closed: 0, error: '' };
self.addEventListener('notificationclose', function () { self.pushes.closed++; });
self.addEventListener('push', function (event) {
  self.pushes.seen++;
  var push = {};
  try { push = event.data ? event.data.json() : {}; } catch (e) { push = {}; }
  if (push.event !== 'ring') return;
  event.waitUntil(appLang().then(function (lang) {
    var n = WP.ringNotification(lang, push, Date.now());
    return self.registration.showNotification(n.title, {
      body: n.body, tag: n.tag, renotify: true, requireInteraction: true,
      icon: '/app/icon-192.png', badge: '/app/icon-192.png', vibrate: [400, 200, 400],
      actions: n.actions, data: push
    }).then(function () {
      self.pushes.shown++;
      self.pushes.last = { title: n.title, body: n.body, tag: n.tag, actions: n.actions, data: push };
      return self.registration.getNotifications().then(function (l) { self.pushes.listed = l.length; });
    });
  }).catch(function (e) { self.pushes.error = String(e); throw e; }));
});

/** Brings the app up for a clicked notification: focus an open window, else open one. */
function openApp(notification, action) {
  var push = notification.data || {};
  notification.close();
  var wake = { type: 'wake', callId: String(push.callId || ''), action: action || 'show' };
  var url = '/app/#wake=' + encodeURIComponent(wake.callId) + '&action=' + wake.action;
  return self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (list) {
    var win = list.filter(function (c) { return new URL(c.url).pathname.indexOf('/app/') === 0; })[0];
    if (win) {
      win.postMessage(wake);
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
