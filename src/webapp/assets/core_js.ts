/**
 * `/app/core.js`: the web phone's pure part, as a string module (no build step; the gateway
 * serves these bytes). A classic script that defines one global, `WP`: the media header of
 * door-protocol.md §5 (read, and CALLDOWN audio packets written), the reassembly of video
 * frames from their 1200-byte chunks, the codec of a frame (JPEG, H.264, MPEG-4 Part 2) and the
 * WebCodecs codec string of an H.264 SPS, an H.264 decoder over WebCodecs (given the browser's
 * VideoDecoder; the console's snapshots use it too), G.711 μ-law and A-law, the provisioning link, the
 * device's room list, do-not-disturb times, reconnect backoff and the texts in English and
 * Chinese. No DOM, no timers, no sockets: `tests/webapp_core_test.ts` runs it in Deno.
 *
 * Written without template literals so that it can live in `String.raw`.
 *
 * @module
 */

/** The script's text. */
export const CORE_JS: string = String.raw`/* Web phone core: pure functions (no DOM). */
var WP = (function () {
  'use strict';

  // ---- Media packets (door-protocol.md section 5), little-endian ----
  var MEDIA = {
    SHORT: 77, LONG: 86, TIMESTAMP: 57, DATA_TYPE: 61, FRAME_NO: 63, FRAME_LEN: 65,
    TOTAL: 69, INDEX: 71, DATA_LEN: 73, PACK_LEN: 75, CHUNK: 1200, COMMAND: 150
  };
  var DATA_TYPE = { AUDIO: 1, CIF_I: 2, CIF_P: 3, D1_I: 4, D1_P: 5 };
  var OP = { CALLUP: 7, CALLDOWN: 8 };
  var MAGIC = [0x58, 0x58, 0x58, 0x43, 0x49, 0x44]; // XXXCID

  function u16(b, o) { return b[o] | (b[o + 1] << 8); }
  function u32(b, o) { return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0; }
  function w16(b, o, v) { b[o] = v & 0xff; b[o + 1] = (v >>> 8) & 0xff; }
  function w32(b, o, v) { w16(b, o, v & 0xffff); w16(b, o + 2, (v >>> 16) & 0xffff); }

  /** A media datagram's fields, or null when it is none (payload at length - Datalen: 77 or 86). */
  function parseMedia(bytes) {
    if (!bytes || bytes.length < MEDIA.SHORT || bytes[6] !== MEDIA.COMMAND) return null;
    var at = bytes.length - u16(bytes, MEDIA.DATA_LEN);
    if (at !== MEDIA.SHORT && at !== MEDIA.LONG) return null;
    return {
      op: bytes[8],
      timestamp: u32(bytes, MEDIA.TIMESTAMP),
      dataType: u16(bytes, MEDIA.DATA_TYPE),
      frameNo: u16(bytes, MEDIA.FRAME_NO),
      frameLen: u32(bytes, MEDIA.FRAME_LEN),
      total: u16(bytes, MEDIA.TOTAL),
      index: u16(bytes, MEDIA.INDEX),
      payload: bytes.subarray(at)
    };
  }

  function writeAddress(out, at, address) {
    for (var i = 0; i < 20; i++) {
      out[at + i] = i < address.length ? address.charCodeAt(i) & 0x7f : 0x30;
    }
  }

  /**
   * A CALLDOWN audio packet (op 8, data type 1, payload at 77) as src/protocol/media.ts
   * encodeMedia writes it. The gateway rewrites addresses, timestamp and frame number.
   */
  function audioPacket(payload, o) {
    var out = new Uint8Array(MEDIA.SHORT + payload.length);
    out.set(MAGIC, 0);
    out[6] = MEDIA.COMMAND;
    out[7] = 1;
    out[8] = OP.CALLDOWN;
    writeAddress(out, 9, o.caller || '');
    writeAddress(out, 33, o.callee || '');
    w32(out, MEDIA.TIMESTAMP, o.timestamp >>> 0);
    w16(out, MEDIA.DATA_TYPE, DATA_TYPE.AUDIO);
    w16(out, MEDIA.FRAME_NO, o.frameNo);
    w32(out, MEDIA.FRAME_LEN, payload.length);
    w16(out, MEDIA.TOTAL, 1);
    w16(out, MEDIA.INDEX, 1);
    w16(out, MEDIA.DATA_LEN, payload.length);
    w16(out, MEDIA.PACK_LEN, MEDIA.CHUNK);
    out.set(payload, MEDIA.SHORT);
    return out;
  }

  /** True when 16-bit frame number a comes before b (serial arithmetic, numbers wrap). */
  function before(a, b) {
    var d = (b - a) & 0xffff;
    return d !== 0 && d < 0x8000;
  }

  /**
   * Reassembles video frames from their chunks (by frame number and 1-based packet index).
   * push(packet) returns the whole frame once its last chunk is in, else null. A frame that
   * is still missing a chunk when a later frame completes is dropped (counted in .dropped):
   * a lost chunk costs that frame, not the stream. At most 4 frames are pending.
   */
  function Reassembler() {
    this.pending = new Map();
    this.last = -1;
    this.dropped = 0;
    this.frames = 0;
  }
  Reassembler.prototype.push = function (p) {
    if (p.total < 1 || p.index < 1 || p.index > p.total || p.total > 4096) return null;
    if (this.last >= 0 && (p.frameNo === this.last || before(p.frameNo, this.last))) return null;
    var f = this.pending.get(p.frameNo);
    if (!f) {
      if (this.pending.size >= 4) {
        var oldest = this.pending.keys().next().value;
        this.pending.delete(oldest);
        this.dropped++;
      }
      f = { parts: new Array(p.total), got: 0, total: p.total, frameLen: p.frameLen,
        dataType: p.dataType, timestamp: p.timestamp };
      this.pending.set(p.frameNo, f);
    }
    if (f.total !== p.total || f.parts[p.index - 1]) return null;
    f.parts[p.index - 1] = p.payload;
    f.got++;
    if (f.got < f.total) return null;
    this.pending.delete(p.frameNo);
    var self = this;
    this.pending.forEach(function (_, n) {
      if (before(n, p.frameNo)) { self.pending.delete(n); self.dropped++; }
    });
    this.last = p.frameNo;
    var len = 0;
    for (var i = 0; i < f.parts.length; i++) len += f.parts[i].length;
    if (len !== f.frameLen) { this.dropped++; return null; }
    var data = new Uint8Array(len);
    var at = 0;
    for (var j = 0; j < f.parts.length; j++) { data.set(f.parts[j], at); at += f.parts[j].length; }
    this.frames++;
    return { frameNo: p.frameNo, dataType: f.dataType, timestamp: f.timestamp, data: data,
      key: f.dataType === DATA_TYPE.CIF_I || f.dataType === DATA_TYPE.D1_I };
  };

  /**
   * The codec of a video frame, from its first bytes (the data type does not name it): 'jpeg'
   * (FF D8), 'mpeg4' (a start code followed by a byte >= 0x80: VOP B6, VOS B0, GOV B3, which
   * H.264's forbidden zero bit excludes), 'h264' (start codes, none of those), or 'unknown'.
   */
  function sniffCodec(b) {
    if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
    var starts = 0;
    var n = Math.min(b.length, 4096);
    for (var i = 0; i + 3 < n; i++) {
      if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1) {
        if (b[i + 3] & 0x80) return 'mpeg4';
        starts++;
        i += 2;
      }
    }
    return starts ? 'h264' : 'unknown';
  }

  function hex2(v) { return (v < 16 ? '0' : '') + v.toString(16).toUpperCase(); }

  /**
   * NAL units of an H.264 access unit (Annex B): whether it holds an IDR slice (key), and the
   * WebCodecs codec string from its SPS bytes 1-3 (profile, constraints, level), e.g.
   * 'avc1.42C01E'.
   */
  function h264Info(b) {
    var info = { key: false, codec: null, types: [] };
    for (var i = 0; i + 3 < b.length; i++) {
      if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1) {
        var at = i + 3;
        var type = b[at] & 0x1f;
        info.types.push(type);
        if (type === 5) info.key = true;
        if (type === 7 && at + 3 < b.length && !info.codec) {
          info.codec = 'avc1.' + hex2(b[at + 1]) + hex2(b[at + 2]) + hex2(b[at + 3]);
        }
        i = at;
      }
    }
    return info;
  }

  /**
   * H.264 access units (Annex B, one per call of decode) through WebCodecs: the web phone's live
   * video and the console's visitor snapshots share it. The decoder is made at the first key
   * frame (its codec string from the SPS); after a loss (resync()) or a full queue it waits for
   * the next key frame. output(frame) gets each VideoFrame and must close it. env: {Decoder,
   * Chunk} in place of the globals VideoDecoder and EncodedVideoChunk (for tests).
   * decode returns 'ok', 'wait' (needs a key frame) or 'unsupported' (no WebCodecs, or the
   * codec was refused).
   */
  function H264Decoder(output, env) {
    var g = typeof globalThis !== 'undefined' ? globalThis : {};
    this.Decoder = (env && env.Decoder) || (typeof g.VideoDecoder === 'function' ? g.VideoDecoder : null);
    this.Chunk = (env && env.Chunk) || (typeof g.EncodedVideoChunk === 'function' ? g.EncodedVideoChunk : null);
    this.output = output;
    this.decoder = null;
    this.needKey = true;
    this.unsupported = !this.Decoder || !this.Chunk;
  }
  H264Decoder.prototype.decode = function (data, timestampUs) {
    if (this.unsupported) return 'unsupported';
    var info = h264Info(data);
    if (!this.decoder) {
      if (!info.key || !info.codec) return 'wait';
      var self = this;
      try {
        var d = new this.Decoder({
          output: this.output,
          error: function () { if (self.decoder === d) self.decoder = null; self.needKey = true; }
        });
        d.configure({ codec: info.codec, optimizeForLatency: true });
        this.decoder = d;
      } catch (e) {
        this.decoder = null;
        this.unsupported = true;
        return 'unsupported';
      }
    }
    if (this.needKey && !info.key) return 'wait';
    if (this.decoder.decodeQueueSize > 3 && !info.key) { this.needKey = true; return 'wait'; }
    this.needKey = false;
    try {
      this.decoder.decode(new this.Chunk({ type: info.key ? 'key' : 'delta', timestamp: timestampUs || 0, data: data }));
    } catch (e) {
      this.needKey = true;
      return 'wait';
    }
    return 'ok';
  };
  /** After a lost frame: decode nothing until the next key frame. */
  H264Decoder.prototype.resync = function () { this.needKey = true; };
  /** Resolves when every frame given so far was output (or the decoder failed). */
  H264Decoder.prototype.flush = function () {
    return this.decoder ? this.decoder.flush().catch(function () { /* reported by error */ }) : Promise.resolve();
  };
  H264Decoder.prototype.close = function () {
    if (this.decoder) { try { this.decoder.close(); } catch (e) { /* closed */ } }
    this.decoder = null;
    this.needKey = true;
  };

  /**
   * Decodes one H.264 key frame (a visitor snapshot: SPS, PPS and IDR) into a VideoFrame.
   * Resolves to the frame (the caller closes it), or null when it cannot be decoded here.
   */
  function decodeH264Still(data, env) {
    var got = null;
    var dec = new H264Decoder(function (frame) { if (got) frame.close(); else got = frame; }, env);
    if (dec.decode(data, 0) !== 'ok') { dec.close(); return Promise.resolve(null); }
    return dec.flush().then(function () { dec.close(); return got; });
  }

  // ---- G.711 (the reference algorithms, as src/sim/g711.ts) ----
  var ULAW_SEG = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
  var ALAW_SEG = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

  function clamp16(s) {
    s = Math.round(s);
    return s > 32767 ? 32767 : s < -32768 ? -32768 : s;
  }
  function linearToUlaw(sample) {
    var pcm = clamp16(sample) >> 2;
    var mask = 0xff;
    if (pcm < 0) { pcm = -pcm; mask = 0x7f; }
    if (pcm > 8159) pcm = 8159;
    pcm += 0x84 >> 2;
    var seg = 0;
    while (seg < 8 && pcm > ULAW_SEG[seg]) seg++;
    if (seg >= 8) return 0x7f ^ mask;
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0f)) ^ mask;
  }
  function ulawToLinear(code) {
    var u = ~code & 0xff;
    var exponent = (u >> 4) & 0x07;
    var magnitude = ((((u & 0x0f) << 3) + 0x84) << exponent) - 0x84;
    return u & 0x80 ? -magnitude : magnitude;
  }
  function linearToAlaw(sample) {
    var pcm = clamp16(sample) >> 3;
    var mask = 0xd5;
    if (pcm < 0) { mask = 0x55; pcm = -pcm - 1; }
    var seg = 0;
    while (seg < 8 && pcm > ALAW_SEG[seg]) seg++;
    if (seg >= 8) return 0x7f ^ mask;
    var mantissa = seg < 2 ? (pcm >> 1) & 0x0f : (pcm >> seg) & 0x0f;
    return ((seg << 4) | mantissa) ^ mask;
  }
  function alawToLinear(code) {
    var a = (code & 0xff) ^ 0x55;
    var t = (a & 0x0f) << 4;
    var seg = (a & 0x70) >> 4;
    if (seg === 0) t += 8;
    else if (seg === 1) t += 0x108;
    else t = (t + 0x108) << (seg - 1);
    return a & 0x80 ? t : -t;
  }
  var DECODE = { ulaw: new Float32Array(256), alaw: new Float32Array(256) };
  for (var c = 0; c < 256; c++) {
    DECODE.ulaw[c] = ulawToLinear(c) / 32768;
    DECODE.alaw[c] = alawToLinear(c) / 32768;
  }
  var ENCODE = { ulaw: null, alaw: null };
  function encodeTable(law) {
    if (ENCODE[law]) return ENCODE[law];
    var t = new Uint8Array(65536);
    var enc = law === 'alaw' ? linearToAlaw : linearToUlaw;
    for (var s = -32768; s < 32768; s++) t[s + 32768] = enc(s);
    return (ENCODE[law] = t);
  }
  /** Float samples (-1..1) to G.711 codes ('ulaw' or 'alaw'). */
  function encodeG711(law, samples, out) {
    var t = encodeTable(law === 'alaw' ? 'alaw' : 'ulaw');
    out = out || new Uint8Array(samples.length);
    for (var i = 0; i < samples.length; i++) {
      var s = Math.round(samples[i] * 32768);
      out[i] = t[(s > 32767 ? 32767 : s < -32768 ? -32768 : s) + 32768];
    }
    return out;
  }
  /** G.711 codes to float samples (-1..1). */
  function decodeG711(law, codes, out) {
    var t = DECODE[law === 'alaw' ? 'alaw' : 'ulaw'];
    out = out || new Float32Array(codes.length);
    for (var i = 0; i < codes.length; i++) out[i] = t[codes[i]];
    return out;
  }

  // ---- Provisioning: https://GATEWAY/app/#uid=...&room=...&token=...&community=... ----
  var ROOM_RE = /^[A-Za-z][0-9]{11}$/;

  /**
   * Reads a provisioning fragment (without '#', form-encoded as URLSearchParams writes it).
   * Returns {room: {uid, roomAddress, token, community}} or {error: 'field'}.
   */
  function parseProvisioning(fragment) {
    var q;
    try { q = new URLSearchParams(fragment.charAt(0) === '#' ? fragment.slice(1) : fragment); }
    catch (e) { return { error: 'format' }; }
    var uid = q.get('uid') || '';
    var room = q.get('room') || '';
    var token = q.get('token') || '';
    var community = q.get('community') || '';
    if (uid.length < 1 || uid.length > 64) return { error: 'uid' };
    if (!ROOM_RE.test(room)) return { error: 'room' };
    if (token.length < 1 || token.length > 256) return { error: 'token' };
    if (community.length > 64) return { error: 'community' };
    return { room: { uid: uid, roomAddress: room, token: token, community: community } };
  }

  /** The fragment of a provisioning link (the inverse of parseProvisioning). */
  function provisioningFragment(r) {
    var q = new URLSearchParams();
    q.set('uid', r.uid);
    q.set('room', r.roomAddress);
    q.set('token', r.token);
    q.set('community', r.community || '');
    return q.toString();
  }

  /** The room list with r added; the same uid and room again replaces it (a new token). */
  function addRoom(list, r, now) {
    var out = list.filter(function (x) { return !(x.uid === r.uid && x.roomAddress === r.roomAddress); });
    out.push({ uid: r.uid, roomAddress: r.roomAddress, token: r.token, community: r.community,
      addedAt: now || 0, removed: false });
    return out.slice(-16);
  }

  /** Building, unit and room of Y00010108090 (room key digits), for display. */
  function describeRoom(address) {
    if (!ROOM_RE.test(address)) return null;
    return { building: String(Number(address.slice(1, 5))), unit: String(Number(address.slice(5, 7))),
      room: address.slice(7, 11), extension: address.slice(11, 12) };
  }

  /** Building, unit and door number of M00010100, for display. */
  function describeDoor(address) {
    var m = /^[A-Za-z]([0-9]{4})([0-9]{2})([0-9])/.exec(address || '');
    if (!m) return null;
    return { building: String(Number(m[1])), unit: String(Number(m[2])), door: String(Number(m[3]) + 1) };
  }

  // ---- Do not disturb ----
  function minutesOf(hhmm) {
    var m = /^([01]?[0-9]|2[0-3]):([0-5][0-9])$/.exec(hhmm || '');
    return m ? Number(m[1]) * 60 + Number(m[2]) : null;
  }
  /** Epoch ms of the next local time hh:mm after now (today or tomorrow). */
  function nextLocal(now, minutes) {
    var d = new Date(now);
    var t = new Date(d.getFullYear(), d.getMonth(), d.getDate(), Math.floor(minutes / 60), minutes % 60, 0, 0);
    if (t.getTime() <= now) t = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1, Math.floor(minutes / 60), minutes % 60, 0, 0);
    return t.getTime();
  }
  /**
   * The 'until' to send in the 'dnd' order for a setting at time now (epoch ms), 0 = off:
   * {mode: 'off'}, {mode: 'until', until: ms}, {mode: 'nightly', from: '22:00', to: '07:00'}
   * (local time; the window may cross midnight; outside it, 0).
   */
  function dndUntil(s, now) {
    if (!s || s.mode === 'off') return 0;
    if (s.mode === 'until') return s.until > now ? s.until : 0;
    if (s.mode === 'nightly') {
      var from = minutesOf(s.from), to = minutesOf(s.to);
      if (from === null || to === null || from === to) return 0;
      var d = new Date(now);
      var m = d.getHours() * 60 + d.getMinutes();
      var inside = from < to ? m >= from && m < to : m >= from || m < to;
      return inside ? nextLocal(now, to) : 0;
    }
    return 0;
  }

  /** Reconnect delay after 'attempt' failures: 1 s doubling to 30 s, jittered by rnd (0..1). */
  function backoff(attempt, rnd) {
    var base = Math.min(30000, 1000 * Math.pow(2, Math.max(0, attempt)));
    return Math.round(base * (0.5 + 0.5 * (rnd === undefined ? 1 : rnd)));
  }

  // ---- Texts ----
  var STRINGS = {
    en: {
      title: 'Intercom',
      online: 'Online', connecting: 'Connecting…', offline: 'Gateway unreachable',
      unreachable: 'The gateway is unreachable. Check that this phone is on the building\u2019s network; it keeps trying.',
      setupTitle: 'Set up this phone',
      setupText: 'Scan the QR code from your building manager with this phone\u2019s camera, or paste the link here.',
      pasteLink: 'Provisioning link', addRoom: 'Add room',
      badLink: 'This is not a valid provisioning link.',
      roomAdded: 'Room {room} added.',
      rooms: 'Rooms', roomLine: 'Building {b} · Unit {u} · Room {r}',
      removed: 'This phone was removed by the building manager.',
      removedRoom: 'Room {room}: this phone was removed by the building manager.',
      removedShort: 'Removed', roomOffline: 'Offline',
      forget: 'Remove', replaced: 'This phone is open in another window.', useHere: 'Use here',
      dnd: 'Do not disturb', dndOff: 'Off', dndHour: '1 hour', dndMorning: 'Until 7:00',
      dndNightly: 'Every night 22:00–7:00',
      dndStateOff: 'Calls ring this phone.',
      dndStateUntil: 'Do not disturb until {time}: calls do not ring this phone.',
      dndStateNightly: 'Do not disturb every night 22:00–7:00.',
      dndStateNightlyOn: 'Do not disturb until {time} (nightly): calls do not ring this phone.',
      recent: 'Recent calls', noCalls: 'No calls yet.',
      incoming: 'Door calling', connectingCall: 'Connecting…', talking: 'Talking',
      doorLine: 'Building {b}, unit {u}, door {d}',
      answer: 'Answer', unlock: 'Open door', hangup: 'Hang up', mute: 'Mute',
      opening: 'Opening the door…', doorOpened: 'Door opened',
      doorNoAnswer: 'The door did not answer', unlockEnded: 'The call ended before the door opened',
      videoWaiting: 'Waiting for video…', videoUnavailable: 'Video not available for this door',
      outAnswered: 'Call ended', outMissed: 'Missed call', outDeclined: 'Declined',
      outElsewhere: 'Answered elsewhere', outDoorHungUp: 'The visitor hung up',
      outLost: 'Connection to the door lost', outTimeout: 'Call time limit reached',
      opened: 'door opened', language: '中文', languageName: 'Switch to Chinese',
      micDenied: 'No microphone: the door cannot hear you.',
      push: 'When the app is closed', pushEnable: 'Ring this phone when the app is closed',
      pushOn: 'Calls ring this phone even when the app is closed.',
      pushDenied: 'Notifications are blocked for this site: calls ring only while the app is open.',
      pushUnsupported: 'This browser cannot ring while the app is closed.',
      pushFailed: 'Cannot turn on notifications in this browser.',
      pushOff: 'Calls ring only while the app is open.',
      notifTitle: 'Door calling', notifBody: '{door} is calling {room}',
      notifMissedTitle: 'Missed call', notifMissedBody: '{door} called {room}'
    },
    zh: {
      title: '对讲',
      online: '在线', connecting: '正在连接…', offline: '无法连接网关',
      unreachable: '无法连接网关。请确认本机已连接小区网络；正在自动重试。',
      setupTitle: '设置本机',
      setupText: '请用本机相机扫描物业提供的二维码，或在此粘贴链接。',
      pasteLink: '配置链接', addRoom: '添加房间',
      badLink: '此链接不是有效的配置链接。',
      roomAdded: '已添加房间 {room}。',
      rooms: '房间', roomLine: '{b}栋 {u}单元 {r}室',
      removed: '此手机已被物业管理员移除。',
      removedRoom: '房间 {room}：此手机已被物业管理员移除。',
      removedShort: '已移除', roomOffline: '离线',
      forget: '删除', replaced: '本机已在另一个窗口打开。', useHere: '在此使用',
      dnd: '免打扰', dndOff: '关闭', dndHour: '1小时', dndMorning: '直到7:00',
      dndNightly: '每晚22:00–7:00',
      dndStateOff: '来电会响铃。',
      dndStateUntil: '免打扰至{time}：来电不响铃。',
      dndStateNightly: '每晚22:00–7:00免打扰。',
      dndStateNightlyOn: '免打扰至{time}（每晚）：来电不响铃。',
      recent: '最近来电', noCalls: '暂无来电。',
      incoming: '门口机来电', connectingCall: '正在接通…', talking: '通话中',
      doorLine: '{b}栋 {u}单元 {d}号门口机',
      answer: '接听', unlock: '开锁', hangup: '挂断', mute: '静音',
      opening: '正在开锁…', doorOpened: '门已打开',
      doorNoAnswer: '门口机无响应', unlockEnded: '开锁前通话已结束',
      videoWaiting: '正在等待视频…', videoUnavailable: '此门口机的视频无法显示',
      outAnswered: '通话结束', outMissed: '未接来电', outDeclined: '已拒接',
      outElsewhere: '已在其他手机接听', outDoorHungUp: '访客已挂断',
      outLost: '与门口机的连接已断开', outTimeout: '已达通话时长上限',
      opened: '已开锁', language: 'EN', languageName: '切换到英文',
      micDenied: '无法使用麦克风：门口听不到您的声音。',
      push: '应用关闭时', pushEnable: '应用关闭时也响铃',
      pushOn: '应用关闭时来电也会响铃。',
      pushDenied: '本网站的通知已被禁止：仅在应用打开时响铃。',
      pushUnsupported: '此浏览器在应用关闭时无法响铃。',
      pushFailed: '无法在此浏览器开启通知。',
      pushOff: '仅在应用打开时响铃。',
      notifTitle: '门口机来电', notifBody: '{door} 呼叫 {room}',
      notifMissedTitle: '未接来电', notifMissedBody: '{door} 呼叫过 {room}'
    }
  };

  /** 'zh' or 'en': the saved choice, else the first preferred language that is Chinese. */
  function pickLang(saved, preferred) {
    if (saved === 'zh' || saved === 'en') return saved;
    var list = preferred || [];
    for (var i = 0; i < list.length; i++) {
      var l = String(list[i] || '').toLowerCase();
      if (l.indexOf('zh') === 0) return 'zh';
      if (l.indexOf('en') === 0) return 'en';
    }
    return 'en';
  }

  /** The text of key in lang, with {name} replaced from vars. */
  function t(lang, key, vars) {
    var s = (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;
    return s.replace(/\{(\w+)\}/g, function (_, k) { return vars && k in vars ? String(vars[k]) : ''; });
  }

  /** base64url (no padding) of an ArrayBuffer or byte array (a push key). */
  function b64u(bytes) {
    var b = new Uint8Array(bytes && bytes.buffer ? bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) : bytes);
    var s = '';
    for (var i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  /** What the service worker shows for a ring push: title, body, tag, action titles. */
  function ringNotification(lang, push, now) {
    var d = describeDoor(String(push.door || ''));
    var r = describeRoom(String(push.room || ''));
    var vars = {
      door: d ? t(lang, 'doorLine', { b: d.building, u: d.unit, d: d.door }) : String(push.door || ''),
      room: r ? t(lang, 'roomLine', { b: r.building, u: r.unit, r: r.room + (r.extension === '0' ? '' : '-' + r.extension) }) : String(push.room || '')
    };
    var live = !(push.expiresAt < now);
    return {
      title: t(lang, live ? 'notifTitle' : 'notifMissedTitle'),
      body: t(lang, live ? 'notifBody' : 'notifMissedBody', vars),
      tag: 'call-' + String(push.callId || ''),
      actions: live ? [{ action: 'answer', title: t(lang, 'answer') }, { action: 'open', title: t(lang, 'unlock') }] : []
    };
  }

  /**
   * What the service worker shows for a ring-ended push, under the ring's tag (it replaces the
   * ringing notification): "Missed call" when nobody talked, else "Call ended" (the worker
   * closes that one a few seconds later). No actions.
   */
  function endedNotification(lang, push) {
    var n = ringNotification(lang, { door: push.door, room: push.room, callId: push.callId, expiresAt: 0 }, 1);
    var missed = push.missed !== false;
    return {
      title: missed ? n.title : t(lang, 'outAnswered'),
      body: n.body,
      tag: n.tag,
      missed: missed
    };
  }

  /** The app's wake fragment (#wake=CALLID&action=answer|open|show), or null. */
  function parseWake(fragment) {
    var q = new URLSearchParams(String(fragment || '').replace(/^#/, ''));
    var callId = q.get('wake');
    if (!callId || callId.length > 64) return null;
    var action = q.get('action');
    return { callId: callId, action: action === 'answer' || action === 'open' ? action : 'show' };
  }

  return {
    b64u: b64u, ringNotification: ringNotification, endedNotification: endedNotification,
    parseWake: parseWake,
    MEDIA: MEDIA, DATA_TYPE: DATA_TYPE, OP: OP,
    parseMedia: parseMedia, audioPacket: audioPacket, Reassembler: Reassembler,
    sniffCodec: sniffCodec, h264Info: h264Info,
    H264Decoder: H264Decoder, decodeH264Still: decodeH264Still,
    linearToUlaw: linearToUlaw, ulawToLinear: ulawToLinear,
    linearToAlaw: linearToAlaw, alawToLinear: alawToLinear,
    encodeG711: encodeG711, decodeG711: decodeG711,
    parseProvisioning: parseProvisioning, provisioningFragment: provisioningFragment,
    addRoom: addRoom, describeRoom: describeRoom, describeDoor: describeDoor,
    dndUntil: dndUntil, nextLocal: nextLocal, minutesOf: minutesOf, backoff: backoff,
    STRINGS: STRINGS, pickLang: pickLang, t: t
  };
})();
`;
