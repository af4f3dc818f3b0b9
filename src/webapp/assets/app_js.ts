/**
 * `/app/app.js`: the web phone's page logic, as a string module (a classic script that uses
 * `WP` from `core.js`). It speaks phone-protocol.md like a native app:
 *
 * - **Rooms**: the provisioning link's fragment (`#uid=…&room=…&token=…&community=…`) is read,
 *   stored in `localStorage` and removed from the address bar; one WebSocket per uid, one
 *   `login` per room on it. A refused login (`error unauthorized`, `ref` `login`, close 4001)
 *   or a removed binding (close 4004) marks the room removed ("this phone was removed by the
 *   building manager") and it is never logged in with again: no reconnect loop.
 * - **Presence**: heartbeats every `heartbeatInterval`; reconnect with backoff (1 s doubling to
 *   30 s) after a close, at once when the browser comes back online; the status indicator.
 * - **Calls**: `call` → `call ok` and `enable_video` (`transport: "ws"`, the codecs this
 *   browser decodes), ringtone (WebAudio), live video on a canvas (JPEG frames through
 *   createImageBitmap, H.264 through WebCodecs; MPEG-4: "video not available"); Answer →
 *   `talk`, two-way G.711 audio through AudioWorklets at 8000 Hz (the door's `audioLaw`);
 *   Open door → `unlock`; Hang up → `over`; Mute. Recent calls kept on the device.
 * - **Do not disturb**: off, 1 hour, until 7:00, nightly 22:00–7:00 → the `dnd` order.
 * - **Web Push**: with the VAPID key of `login ok`, once notifications are allowed (asked on
 *   the "Ring this phone when the app is closed" button: browsers ask only on a tap), the app
 *   subscribes through its service worker (`pushManager.subscribe`) and sends
 *   `push subscribe` for each room; the language choice is kept in the cache `wp-settings`
 *   for the worker's notification. Opened from a notification (`#wake=CALLID&action=…`, or the
 *   worker's `wake` message), the app rings that call when it arrives and answers it (Answer)
 *   or opens the door (Open door).
 *
 * `window.webphone` exposes read-only diagnostics (state, counters, the playback analyser).
 *
 * @module
 */

/** The script's text. */
export const APP_JS: string = String.raw`/* Web phone page logic. Needs core.js (WP). */
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };

  function load(key, fallback) {
    try { var v = JSON.parse(localStorage.getItem(key)); return v === null ? fallback : v; }
    catch (e) { return fallback; }
  }
  function save(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* storage full or off */ }
  }

  var store = {
    rooms: load('wp.rooms', []),
    history: load('wp.history', []),
    dnd: load('wp.dnd', { mode: 'off' })
  };
  var lang = WP.pickLang(localStorage.getItem('wp.lang'), navigator.languages || [navigator.language]);
  function t(key, vars) { return WP.t(lang, key, vars); }

  var stats = {
    videoFrames: 0, videoDropped: 0, codec: null, audioIn: 0, audioOut: 0, micBlocks: 0,
    connects: 0, logins: 0
  };
  var notice = null; // {key, vars, kind}

  // ---------------------------------------------------------------- provisioning
  function takeFragment() {
    var hash = location.hash;
    if (!hash || hash.length < 2) return;
    // The secret leaves the address bar (and the history entry) at once.
    history.replaceState(null, '', location.pathname + location.search);
    var wake = WP.parseWake(hash.slice(1));
    if (wake) { wakeFor(wake); return; }
    addFromFragment(hash.slice(1));
  }
  function addFromFragment(fragment) {
    var r = WP.parseProvisioning(fragment);
    if (r.error) { $('setup-error').textContent = t('badLink'); return false; }
    store.rooms = WP.addRoom(store.rooms, r.room, Date.now());
    save('wp.rooms', store.rooms);
    $('setup-error').textContent = '';
    notice = { key: 'roomAdded', vars: { room: r.room.roomAddress }, kind: 'info' };
    syncSessions();
    render();
    return true;
  }
  function activeRooms(uid) {
    return store.rooms.filter(function (r) { return !r.removed && (uid === undefined || r.uid === uid); });
  }
  function markRemoved(uid, roomAddress) {
    var changed = false;
    store.rooms.forEach(function (r) {
      if (r.uid === uid && r.roomAddress === roomAddress && !r.removed) { r.removed = true; changed = true; }
    });
    if (!changed) return;
    save('wp.rooms', store.rooms);
    notice = activeRooms().length === 0
      ? { key: 'removed', kind: 'bad' }
      : { key: 'removedRoom', vars: { room: roomAddress }, kind: 'bad' };
    if (call && call.uid === uid && call.roomAddress === roomAddress) endCall('elsewhere', 'removed');
    render();
  }
  function forgetRoom(uid, roomAddress) {
    store.rooms = store.rooms.filter(function (r) { return !(r.uid === uid && r.roomAddress === roomAddress); });
    save('wp.rooms', store.rooms);
    syncSessions();
    render();
  }

  // ---------------------------------------------------------------- sessions (one per uid)
  var sessions = new Map();
  function wsUrl() { return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/phone'; }

  function Session(uid) {
    this.uid = uid;
    this.ws = null;
    this.state = 'connecting';
    this.attempt = 0;
    this.timer = 0;
    this.hb = 0;
    this.interval = 2;
    this.pending = [];
    this.rooms = new Map(); // roomAddress -> room, logged in
    this.dndSent = new Map();
    this.lastHeard = 0;
    this.connect();
  }
  Session.prototype.connect = function () {
    var self = this;
    clearTimeout(this.timer);
    this.timer = 0;
    var rooms = activeRooms(this.uid);
    if (!rooms.length) return;
    if (this.ws) { var old = this.ws; this.ws = null; try { old.close(1000); } catch (e) { /* gone */ } }
    var ws;
    try { ws = new WebSocket(wsUrl()); } catch (e) { this.lost(0); return; }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.rooms = new Map();
    this.pending = [];
    this.dndSent = new Map();
    stats.connects++;
    ws.onopen = function () {
      if (ws !== self.ws) return;
      self.lastHeard = Date.now();
      activeRooms(self.uid).forEach(function (r) {
        self.pending.push(r);
        self.send({ order: 'login', uid: r.uid, roomAddress: r.roomAddress, community: r.community, token: r.token });
      });
    };
    ws.onmessage = function (ev) {
      if (ws !== self.ws) return;
      self.lastHeard = Date.now();
      if (typeof ev.data === 'string') {
        var m;
        try { m = JSON.parse(ev.data); } catch (e) { return; }
        if (m && typeof m.order === 'string') self.onMessage(m);
      } else if (ev.data instanceof ArrayBuffer) {
        onMedia(self, new Uint8Array(ev.data));
      }
    };
    ws.onclose = function (ev) { if (ws === self.ws) self.lost(ev.code); };
  };
  Session.prototype.send = function (obj) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  };
  Session.prototype.sendBinary = function (bytes) {
    if (!this.ws || this.ws.readyState !== 1 || this.ws.bufferedAmount > 65536) return false;
    this.ws.send(bytes);
    return true;
  };
  Session.prototype.onMessage = function (m) {
    var self = this;
    switch (m.order) {
      case 'login ok': {
        var r = this.pending.shift();
        if (!r) return;
        this.rooms.set(r.roomAddress, r);
        this.state = 'online';
        this.attempt = 0;
        stats.logins++;
        if (typeof m.heartbeatInterval === 'number' && m.heartbeatInterval > 0) this.interval = m.heartbeatInterval;
        if (!this.hb) this.hb = setInterval(function () { self.beat(); }, this.interval * 1000);
        this.syncDnd(true);
        if (m.vapidPublicKey) { push.key = m.vapidPublicKey; push.sync(this, r); }
        // A phone that reconnects keeps its call: ask for its media on the new connection.
        if (call && call.uid === this.uid && call.roomAddress === r.roomAddress && call.state !== 'ended') {
          call.session = this;
          callOrder('enable_video', { transport: 'ws', codecs: decodableCodecs() });
        }
        render();
        return;
      }
      case 'error':
        if (m.ref === 'login') {
          var room = m.roomAddress ? null : this.pending.shift();
          var address = m.roomAddress || (room && room.roomAddress);
          if (m.code === 'unauthorized' && address) markRemoved(this.uid, address);
          else if (m.code === 'rate_limited') this.retryLater();
          return;
        }
        onCallError(this, m);
        return;
      case 'heartbeat ok':
        return;
      case 'dnd ok':
        return;
      case 'push ok':
        if (m.subscribed) { push.state = 'on'; render(); }
        return;
      case 'call':
        onCall(this, m);
        return;
      default:
        onCallMessage(this, m);
    }
  };
  Session.prototype.beat = function () {
    if (!this.ws || this.ws.readyState !== 1) return;
    // Nothing heard for three heartbeats: the network changed under us; start again.
    if (Date.now() - this.lastHeard > this.interval * 3000 + 2000) { this.ws.close(4000); this.lost(0); return; }
    this.send({ order: 'heartbeat', uid: this.uid });
    this.syncDnd(false);
  };
  Session.prototype.syncDnd = function (fresh) {
    var self = this;
    var until = WP.dndUntil(store.dnd, Date.now());
    this.rooms.forEach(function (r) {
      // After a login always: a new connection may have taken over an older one's setting.
      if (!fresh && self.dndSent.get(r.roomAddress) === until) return;
      self.dndSent.set(r.roomAddress, until);
      self.send({ order: 'dnd', uid: r.uid, roomAddress: r.roomAddress, community: r.community, until: until });
    });
  };
  Session.prototype.lost = function (code) {
    var self = this;
    var ws = this.ws;
    this.ws = null;
    if (ws) { ws.onclose = null; ws.onmessage = null; }
    clearInterval(this.hb);
    this.hb = 0;
    this.rooms = new Map();
    if (code === 4002) {
      // Another window of this phone took over: do not fight it.
      this.state = 'replaced';
      notice = { key: 'replaced', kind: 'info', action: 'useHere' };
      render();
      return;
    }
    if (!activeRooms(this.uid).length) { this.state = 'removed'; render(); return; }
    this.state = 'offline';
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.connect(); }, WP.backoff(this.attempt++, Math.random()));
    render();
  };
  Session.prototype.retryLater = function () {
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.connect(); }, 30000);
  };
  Session.prototype.reconnectNow = function () {
    if (this.state === 'online' || this.state === 'removed') return;
    this.attempt = 0;
    this.connect();
  };
  Session.prototype.close = function () {
    clearTimeout(this.timer);
    clearInterval(this.hb);
    var ws = this.ws;
    this.ws = null;
    if (ws) { ws.onclose = null; try { ws.close(1000); } catch (e) { /* gone */ } }
  };

  function syncSessions() {
    var uids = new Set(activeRooms().map(function (r) { return r.uid; }));
    sessions.forEach(function (s, uid) {
      if (!uids.has(uid)) { s.close(); sessions.delete(uid); }
    });
    uids.forEach(function (uid) {
      var s = sessions.get(uid);
      if (!s) sessions.set(uid, new Session(uid));
      else {
        // A room added to a connected uid: log in for it on the same connection.
        activeRooms(uid).forEach(function (r) {
          if (s.state === 'online' && !s.rooms.has(r.roomAddress) &&
              !s.pending.some(function (p) { return p.roomAddress === r.roomAddress; })) {
            s.pending.push(r);
            s.send({ order: 'login', uid: r.uid, roomAddress: r.roomAddress, community: r.community, token: r.token });
          }
        });
      }
    });
  }
  function overall() {
    if (!sessions.size) return 'idle';
    var states = [];
    sessions.forEach(function (s) { states.push(s.state); });
    if (states.indexOf('offline') >= 0) return 'offline';
    if (states.indexOf('connecting') >= 0) return 'connecting';
    if (states.indexOf('online') >= 0) return 'online';
    return 'idle';
  }
  window.addEventListener('online', function () { sessions.forEach(function (s) { s.reconnectNow(); }); });
  window.addEventListener('offline', function () { render(); });
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) sessions.forEach(function (s) { s.reconnectNow(); });
  });

  // ---------------------------------------------------------------- calls
  var call = null;
  var endTimer = 0;

  function decodableCodecs() {
    var list = ['jpeg'];
    if (typeof VideoDecoder === 'function') list.push('h264');
    return list;
  }
  function callOrder(order, extra) {
    if (!call || !call.session) return false;
    var m = { order: order, doorAddress: call.doorAddress, roomAddress: call.roomAddress, uid: call.uid,
      community: call.community, callId: call.callId };
    if (extra) for (var k in extra) m[k] = extra[k];
    return call.session.send(m);
  }
  function onCall(session, m) {
    if (call && call.state !== 'ended') {
      if (call.callId === m.callId) return;
      // One call at a time on this device: another room's door is not answered here.
      addHistory({ at: Date.now(), roomAddress: m.roomAddress, doorAddress: m.doorAddress, outcome: 'missed' });
      return;
    }
    clearTimeout(endTimer);
    call = {
      session: session, uid: m.uid || session.uid, roomAddress: m.roomAddress, community: m.community || '',
      doorAddress: m.doorAddress, callId: m.callId, law: m.audioLaw === 'alaw' ? 'alaw' : 'ulaw',
      state: 'ringing', startedAt: Date.now(), talkAt: 0, unlocked: false, muted: false,
      outcomeKey: '', outcomeKind: '', hangingUp: false
    };
    callOrder('call ok');
    callOrder('enable_video', { transport: 'ws', codecs: decodableCodecs() });
    video.reset();
    ring.start();
    if (navigator.vibrate) { try { navigator.vibrate([400, 200, 400]); } catch (e) { /* none */ } }
    render();
    applyWake();
  }

  // ---------------------------------------------------------------- opened from a notification
  var wakeWish = null; // {callId, action, until}
  function wakeFor(w) {
    wakeWish = { callId: w.callId, action: w.action, until: Date.now() + 60000 };
    sessions.forEach(function (s) { s.reconnectNow(); });
    applyWake();
  }
  function applyWake() {
    var w = wakeWish;
    if (!w || !call || call.callId !== w.callId || call.state !== 'ringing') return;
    wakeWish = null;
    if (Date.now() > w.until) return;
    if (w.action === 'answer') answerCall();
    else if (w.action === 'open') { callOrder('unlock'); say('opening', ''); }
  }
  function say(key, kind) { if (call) { call.outcomeKey = key; call.outcomeKind = kind || ''; } render(); }

  function onCallMessage(session, m) {
    if (!call || m.callId !== call.callId) {
      if (m.order === 'over') session.send({ order: 'over success', doorAddress: m.doorAddress,
        roomAddress: m.roomAddress, uid: m.uid, community: m.community, callId: m.callId });
      return;
    }
    switch (m.order) {
      case 'talk begin':
        if (m.audioLaw === 'alaw' || m.audioLaw === 'ulaw') call.law = m.audioLaw;
        call.state = 'talking';
        call.talkAt = Date.now();
        ring.stop();
        say('', '');
        startAudio();
        return;
      case 'unlock success':
        call.unlocked = true;
        say('doorOpened', 'ok');
        return;
      case 'unlock fail':
        say(m.reason === 'call ended' ? 'unlockEnded' : 'doorNoAnswer', 'bad');
        return;
      case 'over':
        callOrder('over success');
        endCall(outcomeOf(m.reason), textOf(m.reason));
        return;
      case 'over success':
        endCall(call.talkAt ? 'answered' : 'declined', call.talkAt ? 'outAnswered' : 'outDeclined');
        return;
      default:
        return;
    }
  }
  function outcomeOf(reason) {
    if (reason === 'answered elsewhere') return call.talkAt ? 'answered' : 'elsewhere';
    return call.talkAt ? 'answered' : 'missed';
  }
  function textOf(reason) {
    switch (reason) {
      case 'answered elsewhere': return call.talkAt ? 'outAnswered' : 'outElsewhere';
      case 'door hung up': return call.talkAt ? 'outAnswered' : 'outDoorHungUp';
      case 'ring timeout': return 'outMissed';
      case 'talk timeout': return 'outTimeout';
      case 'door lost': return 'outLost';
      default: return 'outAnswered';
    }
  }
  function onCallError(session, m) {
    if (!call) return;
    if (m.ref === 'talk') {
      if (m.code === 'busy') { say('outElsewhere', 'bad'); return; }
      if (m.code === 'door_timeout') {
        call.state = 'ringing';
        ring.start();
        say('doorNoAnswer', 'bad');
        return;
      }
    }
    if (m.ref === 'unlock') { say(m.code === 'not_in_call' ? 'unlockEnded' : 'doorNoAnswer', 'bad'); return; }
    if (m.ref === 'over' && m.code === 'not_in_call') { endCall(call.talkAt ? 'answered' : 'missed', 'outAnswered'); return; }
    if (m.ref === 'call ok' && m.code === 'not_in_call' && call.state === 'ringing') endCall('missed', 'outMissed');
  }
  function endCall(outcome, key) {
    if (!call || call.state === 'ended') return;
    ring.stop();
    stopAudio();
    video.stop();
    addHistory({ at: call.startedAt, roomAddress: call.roomAddress, doorAddress: call.doorAddress,
      outcome: outcome, unlocked: call.unlocked,
      talkS: call.talkAt ? Math.round((Date.now() - call.talkAt) / 1000) : 0 });
    call.state = 'ended';
    call.outcomeKey = key;
    call.outcomeKind = outcome === 'missed' || outcome === 'elsewhere' ? 'bad' : '';
    render();
    clearTimeout(endTimer);
    endTimer = setTimeout(function () { call = null; render(); }, 2500);
  }
  function addHistory(entry) {
    store.history.unshift(entry);
    store.history = store.history.slice(0, 50);
    save('wp.history', store.history);
  }

  $('btn-answer').addEventListener('click', answerCall);
  function answerCall() {
    if (!call || call.state !== 'ringing') return;
    ensureAudio();
    call.state = 'connecting';
    ring.stop();
    callOrder('talk');
    say('connectingCall', '');
  }
  $('btn-unlock').addEventListener('click', function () {
    if (!call || call.state === 'ended') return;
    callOrder('unlock');
    say('opening', '');
  });
  $('btn-hangup').addEventListener('click', function () {
    if (!call || call.state === 'ended') return;
    call.hangingUp = true;
    if (!callOrder('over')) endCall(call.talkAt ? 'answered' : 'declined', 'outAnswered');
  });
  $('btn-mute').addEventListener('click', function () {
    if (!call) return;
    call.muted = !call.muted;
    if (audio.stream) audio.stream.getAudioTracks().forEach(function (tr) { tr.enabled = !call.muted; });
    render();
  });

  // ---------------------------------------------------------------- web push
  var push = {
    key: null,
    /** on, ask (permission not asked yet), denied, unsupported, failed, or '' (no key yet). */
    state: '',
    sub: null,
    supported: function () {
      return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
    },
    /** The browser's subscription for the gateway's key (made once, reused). */
    subscription: function () {
      var self = this;
      if (this.sub) return this.sub;
      this.sub = navigator.serviceWorker.ready.then(function (reg) {
        return reg.pushManager.getSubscription().then(function (old) {
          var k = old && old.options && old.options.applicationServerKey;
          if (old && k && WP.b64u(k) !== self.key) return old.unsubscribe().then(function () { return null; });
          return old;
        }).then(function (old) {
          return old || reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: self.key });
        });
      });
      this.sub.catch(function () { self.sub = null; });
      return this.sub;
    },
    /** Registers this browser's subscription for room r on session s (when allowed). */
    sync: function (s, r) {
      var self = this;
      if (!this.supported()) { this.state = 'unsupported'; render(); return; }
      if (Notification.permission === 'denied') { this.state = 'denied'; render(); return; }
      if (Notification.permission !== 'granted') { this.state = 'ask'; render(); return; }
      this.subscription().then(function (sub) {
        var j = sub.toJSON();
        s.send({ order: 'push subscribe', uid: s.uid, roomAddress: r.roomAddress, community: r.community || '',
          endpoint: j.endpoint, p256dh: j.keys.p256dh, auth: j.keys.auth });
      }, function () { self.state = 'failed'; render(); });
    },
    syncAll: function () {
      var self = this;
      sessions.forEach(function (s) { s.rooms.forEach(function (r) { self.sync(s, r); }); });
    }
  };
  $('btn-push').addEventListener('click', function () {
    if (!push.supported()) return;
    Notification.requestPermission().then(function () { push.syncAll(); render(); });
  });
  function keepLangForWorker() {
    if (!('caches' in window)) return;
    caches.open('wp-settings').then(function (c) { return c.put('/app/__lang', new Response(lang)); })
      .catch(function () { /* no cache: the worker uses the browser's language */ });
  }
  if (navigator.serviceWorker) {
    navigator.serviceWorker.addEventListener('message', function (ev) {
      var d = ev.data || {};
      if (d.type === 'wake' && typeof d.callId === 'string') wakeFor({ callId: d.callId, action: d.action });
    });
  }

  // ---------------------------------------------------------------- video
  var canvas = $('video');
  var g = canvas.getContext('2d');
  var video = {
    reasm: new WP.Reassembler(), codec: null, decoder: null, busy: false, next: null,
    shown: 0, unavailable: false,
    reset: function () {
      this.stop();
      this.reasm = new WP.Reassembler();
      this.codec = null;
      this.shown = 0;
      this.unavailable = false;
      g.fillStyle = '#0b1220';
      g.fillRect(0, 0, canvas.width, canvas.height);
    },
    stop: function () {
      if (this.decoder) this.decoder.close();
      this.decoder = null;
      this.next = null;
    }
  };
  function onMedia(session, bytes) {
    if (!call || session.uid !== call.uid || call.state === 'ended') return;
    var p = WP.parseMedia(bytes);
    if (!p || p.op !== WP.OP.CALLUP) return;
    if (p.dataType === WP.DATA_TYPE.AUDIO) { onDoorAudio(p.payload); return; }
    var dropped = video.reasm.dropped;
    var f = video.reasm.push(p);
    if (video.reasm.dropped !== dropped) { stats.videoDropped = video.reasm.dropped; if (video.decoder) video.decoder.resync(); }
    if (f) onFrame(f);
  }
  function onFrame(f) {
    if (!video.codec) {
      var c = WP.sniffCodec(f.data);
      if (c === 'unknown') return;
      video.codec = c;
      stats.codec = c;
    }
    if (video.codec === 'jpeg') return drawJpeg(f.data);
    if (video.codec === 'h264') return decodeH264(f);
    if (!video.unavailable) { video.unavailable = true; render(); }
  }
  function shown(w, h) {
    if (w && h && (canvas.width !== w || canvas.height !== h)) { canvas.width = w; canvas.height = h; }
    stats.videoFrames++;
    if (video.shown++ === 0) render();
  }
  function drawJpeg(data) {
    // One decode at a time; a frame that arrives meanwhile replaces the waiting one.
    if (video.busy) { video.next = data; return; }
    video.busy = true;
    createImageBitmap(new Blob([data], { type: 'image/jpeg' })).then(function (bmp) {
      if (call && call.state !== 'ended') {
        if (canvas.width !== bmp.width || canvas.height !== bmp.height) { canvas.width = bmp.width; canvas.height = bmp.height; }
        g.drawImage(bmp, 0, 0);
        shown(bmp.width, bmp.height);
      }
      bmp.close();
    }, function () { stats.videoDropped++; }).then(function () {
      video.busy = false;
      var n = video.next;
      video.next = null;
      if (n) drawJpeg(n);
    });
  }
  function decodeH264(f) {
    if (!video.decoder) {
      video.decoder = new WP.H264Decoder(function (frame) {
        if (call && call.state !== 'ended') {
          var w = frame.displayWidth, h = frame.displayHeight;
          if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
          g.drawImage(frame, 0, 0);
          shown(w, h);
        }
        frame.close();
      });
    }
    if (video.decoder.decode(f.data, f.timestamp * 1000) === 'unsupported' && !video.unavailable) {
      video.unavailable = true;
      render();
    }
  }

  // ---------------------------------------------------------------- audio
  var audio = { ctx: null, ready: null, player: null, analyser: null, capture: null, source: null,
    stream: null, ts: 0, seq: 0, on: false };

  function ensureAudio() {
    if (!audio.ctx) {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      try { audio.ctx = new Ctx({ sampleRate: 8000, latencyHint: 'interactive' }); }
      catch (e) { return null; }
      audio.ready = audio.ctx.audioWorklet ? audio.ctx.audioWorklet.addModule('/app/worklet.js') : Promise.reject(new Error('no worklet'));
      audio.ready.catch(function () { /* reported when used */ });
    }
    if (audio.ctx.state === 'suspended') audio.ctx.resume().catch(function () { /* needs a gesture */ });
    return audio.ctx;
  }
  document.addEventListener('pointerdown', function () { if (audio.ctx) ensureAudio(); }, true);

  function startAudio() {
    var ctx = ensureAudio();
    if (!ctx || audio.on) return;
    audio.on = true;
    audio.ts = 0;
    audio.seq = 0;
    var forCall = call;
    audio.ready.then(function () {
      if (call !== forCall || !call || call.state !== 'talking') return;
      audio.player = new AudioWorkletNode(ctx, 'wp-player', { numberOfInputs: 0, outputChannelCount: [1] });
      audio.analyser = ctx.createAnalyser();
      audio.analyser.fftSize = 2048;
      audio.player.connect(ctx.destination);
      audio.player.connect(audio.analyser);
      audio.player.port.onmessage = function (e) { if (e.data && e.data.stats) stats.player = e.data.stats; };
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { say('micDenied', 'bad'); return; }
      return navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 }
      }).then(function (stream) {
        if (call !== forCall || !audio.on) { stream.getTracks().forEach(function (tr) { tr.stop(); }); return; }
        audio.stream = stream;
        stream.getAudioTracks().forEach(function (tr) { tr.enabled = !call.muted; });
        audio.source = ctx.createMediaStreamSource(stream);
        audio.capture = new AudioWorkletNode(ctx, 'wp-capture', { numberOfOutputs: 0 });
        audio.source.connect(audio.capture);
        audio.capture.port.onmessage = function (e) { onMicBlock(e.data); };
      }, function () { say('micDenied', 'bad'); });
    }).catch(function () { say('micDenied', 'bad'); });
  }
  function stopAudio() {
    audio.on = false;
    if (audio.stream) audio.stream.getTracks().forEach(function (tr) { tr.stop(); });
    [audio.source, audio.capture, audio.player, audio.analyser].forEach(function (n) {
      if (n) { try { n.disconnect(); } catch (e) { /* disconnected */ } }
    });
    if (audio.capture) audio.capture.port.onmessage = null;
    audio.stream = audio.source = audio.capture = audio.player = null;
  }
  function onDoorAudio(payload) {
    if (!call || call.state !== 'talking' || !audio.player) return;
    stats.audioIn++;
    var samples = WP.decodeG711(call.law, payload);
    audio.player.port.postMessage(samples, [samples.buffer]);
  }
  function onMicBlock(d) {
    if (!d || !d.samples || !call || call.state !== 'talking' || call.muted) return;
    stats.micBlocks++;
    var payload = WP.encodeG711(call.law, d.samples);
    audio.ts = (audio.ts + 8) >>> 0;
    audio.seq = audio.seq >= 65535 ? 1 : audio.seq + 1;
    var roomKey = call.roomAddress.slice(1);
    var pkt = WP.audioPacket(payload, { timestamp: audio.ts, frameNo: audio.seq, caller: call.doorAddress, callee: 'S' + roomKey });
    if (call.session.sendBinary(pkt)) stats.audioOut++;
    if (typeof api.onMicPacket === 'function') {
      // Level, and the wall time at which the block's first sample entered the audio graph.
      var sum = 0;
      for (var i = 0; i < d.samples.length; i++) sum += d.samples[i] * d.samples[i];
      var age = Math.max(0, (audio.ctx.currentTime - d.time) * 1000);
      api.onMicPacket(Math.sqrt(sum / d.samples.length), performance.timeOrigin + performance.now() - age);
    }
  }

  // Ringtone: a two-note chime every 2 s, synthesised (no file).
  var ring = {
    timer: 0,
    start: function () {
      this.stop();
      var self = this;
      var ctx = ensureAudio();
      var chime = function () {
        if (!ctx || ctx.state !== 'running') return;
        var t0 = ctx.currentTime + 0.02;
        [[659.25, 0], [523.25, 0.45]].forEach(function (n) {
          var o = ctx.createOscillator(), v = ctx.createGain();
          o.type = 'sine';
          o.frequency.value = n[0];
          v.gain.setValueAtTime(0.0001, t0 + n[1]);
          v.gain.exponentialRampToValueAtTime(0.35, t0 + n[1] + 0.02);
          v.gain.exponentialRampToValueAtTime(0.0001, t0 + n[1] + 0.8);
          o.connect(v).connect(ctx.destination);
          o.start(t0 + n[1]);
          o.stop(t0 + n[1] + 0.85);
        });
        stats.rings = (stats.rings || 0) + 1;
      };
      chime();
      this.timer = setInterval(chime, 2000);
    },
    stop: function () { clearInterval(this.timer); this.timer = 0; }
  };

  // ---------------------------------------------------------------- do not disturb
  function setDnd(choice) {
    var now = Date.now();
    if (choice === 'hour') store.dnd = { mode: 'until', until: now + 3600 * 1000, choice: choice };
    else if (choice === 'morning') store.dnd = { mode: 'until', until: WP.nextLocal(now, 7 * 60), choice: choice };
    else if (choice === 'nightly') store.dnd = { mode: 'nightly', from: '22:00', to: '07:00', choice: choice };
    else store.dnd = { mode: 'off', choice: 'off' };
    save('wp.dnd', store.dnd);
    sessions.forEach(function (s) { s.syncDnd(false); });
    render();
  }
  Array.prototype.forEach.call(document.querySelectorAll('[data-dnd]'), function (b) {
    b.addEventListener('click', function () { setDnd(b.getAttribute('data-dnd')); });
  });
  setInterval(function () {
    if (store.dnd.mode === 'until' && store.dnd.until <= Date.now()) setDnd('off');
    sessions.forEach(function (s) { s.syncDnd(false); });
  }, 30000);

  // ---------------------------------------------------------------- rendering
  function timeText(ms) {
    var d = new Date(ms);
    var sameDay = new Date().toDateString() === d.toDateString();
    var hm = d.toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour: '2-digit', minute: '2-digit' });
    return sameDay ? hm : d.toLocaleDateString(lang === 'zh' ? 'zh-CN' : 'en-GB', { month: 'short', day: 'numeric' }) + ' ' + hm;
  }
  function roomText(address) {
    var r = WP.describeRoom(address);
    return r ? t('roomLine', { b: r.building, u: r.unit, r: r.room + (r.extension === '0' ? '' : '-' + r.extension) }) : address;
  }
  function doorText(address) {
    var d = WP.describeDoor(address);
    return d ? t('doorLine', { b: d.building, u: d.unit, d: d.door }) + ' (' + address + ')' : address;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function applyTexts() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    Array.prototype.forEach.call(document.querySelectorAll('[data-i18n]'), function (e) {
      e.textContent = t(e.getAttribute('data-i18n'));
    });
    var lb = $('lang');
    lb.textContent = t('language');
    lb.setAttribute('aria-label', t('languageName'));
    lb.setAttribute('lang', lang === 'zh' ? 'en' : 'zh');
    document.title = t('title');
  }
  function render() {
    var state = overall();
    var status = $('status');
    status.hidden = state === 'idle';
    status.setAttribute('data-state', state);
    $('status-text').textContent = state === 'idle' ? '' : t(state);
    $('unreachable').hidden = state !== 'offline';

    var n = $('notice');
    if (notice && notice.kind === 'info' && !notice.action && !notice.timer) {
      var shownNotice = notice;
      notice.timer = setTimeout(function () { if (notice === shownNotice) { notice = null; render(); } }, 6000);
    }
    n.hidden = !notice;
    n.className = 'notice' + (notice && notice.kind === 'info' ? ' info' : '');
    n.textContent = notice ? t(notice.key, notice.vars) : '';
    if (notice && notice.action === 'useHere') {
      var b = el('button', '', t('useHere'));
      b.type = 'button';
      b.addEventListener('click', function () { notice = null; sessions.forEach(function (s) { s.attempt = 0; s.connect(); }); render(); });
      n.appendChild(b);
    }

    var inCall = !!call;
    $('screen-call').hidden = !inCall;
    $('screen-setup').hidden = inCall || store.rooms.length > 0;
    $('screen-home').hidden = inCall || store.rooms.length === 0;
    if (inCall) renderCall(); else renderHome();
  }
  function renderHome() {
    var ul = $('rooms');
    ul.textContent = '';
    store.rooms.forEach(function (r) {
      var li = el('li');
      var name = el('div', 'name');
      name.appendChild(el('div', '', roomText(r.roomAddress)));
      name.appendChild(el('div', 'addr', (r.community ? r.community + ' · ' : '') + r.roomAddress));
      li.appendChild(name);
      if (r.removed) {
        li.appendChild(el('span', 'removed', t('removedShort')));
        var f = el('button', 'forget', t('forget'));
        f.type = 'button';
        f.addEventListener('click', function () { forgetRoom(r.uid, r.roomAddress); });
        li.appendChild(f);
      } else {
        var s = sessions.get(r.uid);
        var on = s && s.rooms.has(r.roomAddress);
        li.appendChild(el('span', 'state ' + (on ? 'on' : 'off'), on ? '● ' + t('online') : '○ ' + t(s && s.state === 'connecting' ? 'connecting' : 'roomOffline')));
      }
      ul.appendChild(li);
    });
    var choice = store.dnd.choice || store.dnd.mode;
    Array.prototype.forEach.call(document.querySelectorAll('[data-dnd]'), function (b) {
      b.setAttribute('aria-pressed', b.getAttribute('data-dnd') === choice ? 'true' : 'false');
    });
    var until = WP.dndUntil(store.dnd, Date.now());
    $('dnd-state').textContent = store.dnd.mode === 'nightly'
      ? (until ? t('dndStateNightlyOn', { time: timeText(until) }) : t('dndStateNightly'))
      : until ? t('dndStateUntil', { time: timeText(until) }) : t('dndStateOff');
    $('push-section').hidden = !push.state;
    $('btn-push').hidden = push.state !== 'ask';
    $('push-state').textContent = push.state ? t({ on: 'pushOn', ask: 'pushOff', denied: 'pushDenied',
      unsupported: 'pushUnsupported', failed: 'pushFailed' }[push.state]) : '';
    var ol = $('history');
    ol.textContent = '';
    if (!store.history.length) ol.appendChild(el('li', 'empty', t('noCalls')));
    store.history.slice(0, 20).forEach(function (h) {
      var key = { answered: 'outAnswered', missed: 'outMissed', declined: 'outDeclined', elsewhere: 'outElsewhere' }[h.outcome] || 'outAnswered';
      var li = el('li', 'outcome-' + h.outcome);
      var what = el('div', 'what');
      what.appendChild(el('div', '', t(key) + (h.unlocked ? ' · ' + t('opened') : '')));
      what.appendChild(el('div', 'when', doorText(h.doorAddress) + ' → ' + h.roomAddress));
      li.appendChild(what);
      li.appendChild(el('span', 'when', timeText(h.at)));
      ol.appendChild(li);
    });
  }
  function renderCall() {
    var c = call;
    var titleKey = c.state === 'talking' ? 'talking' : c.state === 'connecting' ? 'connectingCall' : c.state === 'ended' ? (c.outcomeKey || 'outAnswered') : 'incoming';
    $('call-title').textContent = t(titleKey);
    $('call-door').textContent = doorText(c.doorAddress) + ' → ' + roomText(c.roomAddress);
    var o = $('call-outcome');
    o.textContent = c.state === 'ended' ? '' : c.outcomeKey ? t(c.outcomeKey) : '';
    o.className = 'call-outcome' + (c.outcomeKind ? ' ' + c.outcomeKind : '');
    var note = $('video-note');
    note.hidden = video.shown > 0 && !video.unavailable;
    note.textContent = video.unavailable ? t('videoUnavailable') : t('videoWaiting');
    var live = c.state !== 'ended';
    $('btn-answer').hidden = c.state !== 'ringing';
    $('btn-mute').hidden = c.state !== 'talking';
    $('btn-mute').setAttribute('aria-pressed', c.muted ? 'true' : 'false');
    $('btn-unlock').hidden = !live;
    $('btn-hangup').hidden = !live;
  }

  $('lang').addEventListener('click', function () {
    lang = lang === 'zh' ? 'en' : 'zh';
    try { localStorage.setItem('wp.lang', lang); } catch (e) { /* storage off */ }
    keepLangForWorker();
    applyTexts();
    render();
  });
  $('link-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var v = $('link-input').value.trim();
    var at = v.indexOf('#');
    if (addFromFragment(at >= 0 ? v.slice(at + 1) : v)) $('link-input').value = '';
  });
  window.addEventListener('hashchange', takeFragment);

  var api = {
    stats: stats,
    onMicPacket: null,
    state: function () {
      return {
        status: overall(),
        screen: call ? 'call' : store.rooms.length ? 'home' : 'setup',
        call: call && { state: call.state, callId: call.callId, doorAddress: call.doorAddress,
          law: call.law, muted: call.muted, unlocked: call.unlocked, outcome: call.outcomeKey },
        rooms: store.rooms.map(function (r) { return { uid: r.uid, roomAddress: r.roomAddress, removed: !!r.removed }; }),
        sessions: Array.from(sessions.values()).map(function (s) { return { uid: s.uid, state: s.state, rooms: Array.from(s.rooms.keys()) }; }),
        dnd: store.dnd, lang: lang, push: push.state, video: { codec: video.codec, shown: video.shown, unavailable: video.unavailable }
      };
    },
    analyser: function () { return audio.analyser; },
    audioContext: function () { return audio.ctx; }
  };
  window.webphone = api;

  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).catch(function () { /* no offline shell */ });
  }
  takeFragment();
  // Every room of this phone was removed (seen before this page was opened): say so again.
  if (!notice && store.rooms.length && !activeRooms().length) notice = { key: 'removed', kind: 'bad' };
  applyTexts();
  keepLangForWorker();
  syncSessions();
  render();
})();
`;
