/**
 * `/app/sw.js`: the web phone's service worker, as a string module. It caches the app shell at
 * install (one cache per version: the gateway writes the version into the script, so a new
 * gateway build installs a new worker and drops the old cache) and answers every GET under
 * `/app/` from that cache first, so the app opens without the gateway and says it is
 * unreachable. Nothing else is cached: signalling and media are live.
 *
 * @module
 */

/** The worker's text; `@VERSION@` and `@SHELL@` are filled in by the handler. */
export const SW_JS_TEMPLATE: string = String.raw`/* Web phone service worker. */
'use strict';
var CACHE = 'webphone-@VERSION@';
var SHELL = @SHELL@;

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
`;
