/**
 * The console's script (served only with a session): a small hash-routed page per section, live
 * through server-sent events, charts drawn as inline SVG of our own. Plain ES2017 without a
 * build step or library; every control has an accessible name.
 *
 * @module
 */

/** `console.js`. */
export const CONSOLE_JS: string = String.raw`
(function () {
  "use strict";
  var I18N = window.INTERCOM_I18N;
  var SVG = "http://www.w3.org/2000/svg";

  // ---- language ----
  function pickLang() {
    var saved = null;
    try { saved = localStorage.getItem("intercom.lang"); } catch (e) { /* private mode */ }
    if (saved === "zh" || saved === "en") return saved;
    // The server chose from Accept-Language (the browser's whole list); else navigator.language.
    var html = document.documentElement;
    if (html.getAttribute("data-lang-from")) return html.lang.indexOf("zh") === 0 ? "zh" : "en";
    var nav = (navigator.language || "").toLowerCase();
    return nav.indexOf("zh") === 0 ? "zh" : "en";
  }
  var lang = pickLang();
  function t(k, a) {
    var s = (I18N[lang] && I18N[lang][k]) || I18N.en[k] || k;
    return s.replace(/\{(\d)\}/g, function (_, i) { return a && a[i] !== undefined && a[i] !== null ? String(a[i]) : ""; });
  }

  // ---- DOM ----
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) continue;
        if (k === "text") el.textContent = String(v);
        else if (k === "class") el.className = v;
        else if (k.indexOf("on") === 0) el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el) {
    for (var a = 1; a < arguments.length; a++) {
      var c = arguments[a];
      if (c === undefined || c === null || c === false) continue;
      if (Array.isArray(c)) { for (var i = 0; i < c.length; i++) add(el, c[i]); continue; }
      el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  function pad(n, w) { var s = String(n); while (s.length < (w || 2)) s = "0" + s; return s; }
  function fmtTime(v) {
    if (v === undefined || v === null || v === "") return t("unknown");
    var d = new Date(v);
    if (isNaN(d.getTime())) return t("unknown");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function fmtBytes(n) {
    if (n === null || n === undefined) return t("unknown");
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    if (n < 1073741824) return (n / 1048576).toFixed(1) + " MiB";
    return (n / 1073741824).toFixed(1) + " GiB";
  }
  function table(caption, heads, rows, id) {
    // Each cell carries its column's name: on a phone the rows stack as labelled lines.
    (Array.isArray(rows) ? rows : [rows]).forEach(function (tr) {
      var cells = tr.children;
      if (cells.length !== heads.length) return;
      for (var i = 0; i < cells.length; i++) cells[i].setAttribute("data-label", heads[i]);
    });
    var t0 = h("table", { id: id, class: "stack" },
      h("caption", { class: "sr-only", text: caption }),
      h("thead", null, h("tr", null, heads.map(function (x) { return h("th", { scope: "col", text: x }); }))),
      h("tbody", null, rows));
    return h("div", { class: "scroll" }, t0);
  }
  function empty(cols) { return h("tr", null, h("td", { colspan: cols, class: "muted", text: t("none") })); }

  // ---- API ----
  function api(method, path, body) {
    var init = { method: method, credentials: "same-origin", headers: { "x-requested-with": "intercom-console" } };
    if (body !== undefined) { init.headers["content-type"] = "application/json"; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (j) {
        if (res.status === 401 && path !== "/api/v1/session/password") { location.href = "/admin/login"; throw new Error("login"); }
        if (j && j.error && j.error.code === "password_change_required") { location.hash = "#/password"; }
        if (!res.ok) throw new Error((j && j.error && j.error.message) || String(res.status));
        return j;
      });
    });
  }
  var statusEl = null;
  function say(msg, bad) {
    if (!statusEl) return;
    statusEl.textContent = msg || "";
    statusEl.className = "status" + (bad ? " bad" : "");
  }
  function fail(e) { if (e && e.message !== "login") say(t("error", [e.message]), true); }

  // ---- confirm dialog ----
  function ask(message) {
    return new Promise(function (resolve) {
      var dlg = h("dialog", { id: "confirm", "aria-labelledby": "confirm-text" },
        h("p", { id: "confirm-text", text: message }),
        h("div", { class: "inline" },
          h("button", { id: "confirm-yes", type: "button", onclick: function () { done(true); }, text: t("confirm") }), " ",
          h("button", { id: "confirm-no", type: "button", class: "secondary", onclick: function () { done(false); }, text: t("cancel") })));
      function done(v) { dlg.close(); dlg.remove(); resolve(v); }
      dlg.addEventListener("cancel", function () { done(false); });
      document.body.appendChild(dlg);
      dlg.showModal();
    });
  }

  // ---- views ----
  var views = {};

  views.overview = function (root) {
    var region = h("div", { id: "overview" });
    add(root, [h("h2", { text: t("nav.overview") }), region]);
    function load() {
      return api("GET", "/api/v1/overview").then(function (o) {
        clear(region);
        var c = o.counts;
        function card(id, n, label) {
          return h("div", { class: "card", id: "card-" + id }, h("div", { class: "n", id: "count-" + id, text: n }), h("div", { class: "label", text: label }));
        }
        add(region, h("div", { class: "cards" },
          card("doors", c.doors, t("ov.doorsHeard")),
          card("phones", c.phones, t("ov.phonesOnline")),
          card("callsNow", c.callsNow, t("ov.callsNow")),
          card("callsToday", c.callsToday, t("ov.callsToday"))));
        if (o.alarms && o.alarms.length) {
          add(region, h("div", { class: "alarm", role: "alert" }, h("strong", { text: t("ov.alarms") + ": " }),
            o.alarms.slice(-3).map(function (a) { return h("div", { text: fmtTime(a.at) + " " + t("doors.conflict", [a.address || a.doorAddress, a.ip || a.newIp || a.claimedIp]) }); })));
        }
        add(region, h("h3", { text: t("ov.liveCalls") }));
        add(region, liveCallsTable(o.calls, false));
        add(region, h("h3", { text: t("ov.lastCalls") }));
        add(region, historyTable(o.lastCalls, "last-calls"));
        var hl = o.health;
        var tls = o.tls;
        add(region, h("h3", { text: t("ov.health") }));
        add(region, h("div", { class: "panel" }, h("dl", { class: "kv", id: "health" },
          h("dt", { text: t("ov.gateway") }), h("dd", null, h("span", { class: hl.ok ? "ok" : "bad", text: hl.ok ? t("ok") : t("down") })),
          h("dt", { text: t("ov.doorPort") }), h("dd", { class: "mono", text: hl.doorPort }),
          h("dt", { text: t("ov.mediaPort") }), h("dd", { class: "mono", text: hl.mediaPort }),
          h("dt", { text: t("ov.store") }), h("dd", null, h("span", { class: o.store.ok ? "ok" : "bad", text: o.store.ok ? t("ok") : t("down") })),
          h("dt", { text: t("ov.storeSize") }), h("dd", { text: fmtBytes(o.store.bytes) }),
          h("dt", { text: t("ov.disk") }), h("dd", { id: "disk" }, diskText(o.disk)),
          tls ? [h("dt", { text: t("ov.https") }), h("dd", { class: "mono", text: tls.port }),
            h("dt", { text: t("ov.fingerprint") }), h("dd", { class: "mono", id: "fingerprint", text: tls.fingerprint }),
            tls.caFingerprint ? [h("dt", { text: t("ov.caFingerprint") }), h("dd", null, h("span", { class: "mono", id: "ca-fingerprint", text: tls.caFingerprint }), " ",
              h("a", { href: "/ca.crt", text: t("ov.caDownload") }))] : null] : null,
          h("dt", { text: t("ov.version") }), h("dd", { class: "mono", text: o.version }))));
      }).catch(fail);
    }
    return { refresh: load, load: load };
  };

  function diskText(d) {
    if (!d) return t("unknown");
    if (!d.ok) return h("span", { class: "muted", text: t("ov.diskUnknown", [d.message]) });
    var pct = d.totalBytes ? Math.round((d.freeBytes / d.totalBytes) * 100) : 0;
    return h("span", { class: d.low ? "bad" : "ok", "data-free": d.freeBytes, "data-total": d.totalBytes,
      text: t("ov.diskFree", [fmtBytes(d.freeBytes), fmtBytes(d.totalBytes), pct]) + (d.low ? " · " + t("ov.diskLow") : "") });
  }
  function media(m) {
    if (!m) return t("unknown");
    return t("calls.mediaCell", [m.doorIn, m.toPhones, m.phoneIn, m.toDoor, m.dropped]);
  }
  function liveCallsTable(calls, withActions) {
    var heads = [t("calls.id"), t("calls.phase"), t("calls.door"), t("calls.room"), t("calls.phones"), t("calls.talker"), t("calls.media"), t("calls.since")];
    if (withActions) heads.push(t("doors.actions"));
    var rows = calls.length ? calls.map(function (c) {
      return h("tr", { "data-call": c.callId },
        h("td", { class: "mono", text: c.callId.slice(0, 8) }),
        h("td", { class: "phase", text: c.phase }),
        h("td", { class: "mono", text: c.doorAddress + " " + c.doorIp }),
        h("td", { class: "mono", text: c.roomKey }),
        h("td", { class: "mono", text: c.participants.join(", ") }),
        h("td", { class: "mono", text: c.talker || t("unknown") }),
        h("td", { class: "media", "data-door-in": c.media ? c.media.doorIn : 0, text: media(c.media) }),
        h("td", { class: "num", text: fmtTime(c.since) }),
        withActions ? h("td", null, h("button", { type: "button", class: "danger", "aria-label": t("calls.hangup", [c.callId]), text: t("calls.hangupShort"),
          onclick: function () {
            ask(t("calls.confirmHangup", [c.callId])).then(function (yes) {
              if (yes) api("POST", "/api/v1/calls/" + encodeURIComponent(c.callId) + "/hangup", {}).then(refresh).catch(fail);
            });
          } })) : null);
    }) : empty(heads.length);
    return table(t("calls.live"), heads, rows, "live-calls");
  }
  function reasonText(r) {
    var k = "reason." + r;
    return (I18N[lang] && I18N[lang][k]) || (I18N.en[k]) || r;
  }
  function outcomeText(o) { return o === "live" ? t("calls.inProgress") : o === "answered" ? t("calls.answered") : t("calls.missed"); }
  // ---- visitor snapshots: JPEG as an <img>; an H.264 key frame decoded here (WebCodecs, the
  // web phone's decoder from core.js) onto a canvas, one at a time, the newest 60 kept as
  // bitmaps for redraws; MPEG-4 Part 2 has no decoder in browsers: a label and the raw frame.
  var stills = new Map();
  var stillQueue = Promise.resolve();
  function snapUrl(callId) { return "/api/v1/calls/" + encodeURIComponent(callId) + "/snapshot"; }
  function snapNote(text, r) {
    return h("span", { class: "placeholder", role: "img", "aria-label": text, "data-snap": r.snapshot },
      text, " ", h("a", { href: snapUrl(r.callId), download: "", "aria-label": t("calls.download") + ": " + text, text: t("calls.download") }));
  }
  function drawStill(canvas, bmp) {
    canvas.width = bmp.width;
    canvas.height = bmp.height;
    canvas.getContext("2d").drawImage(bmp, 0, 0);
    canvas.setAttribute("data-drawn", "true");
  }
  function decodeStill(callId) {
    return fetch(snapUrl(callId), { credentials: "same-origin" }).then(function (res) {
      if (!res.ok) throw new Error(String(res.status));
      return res.arrayBuffer();
    }).then(function (buf) {
      return WP.decodeH264Still(new Uint8Array(buf));
    }).then(function (frame) {
      if (!frame) return "failed";
      return createImageBitmap(frame).then(function (bmp) { frame.close(); return bmp; },
        function () { frame.close(); return "failed"; });
    }, function () { return "failed"; });
  }
  function h264Snapshot(r, label) {
    if (typeof VideoDecoder !== "function" || !window.WP) {
      return snapNote(window.isSecureContext ? t("calls.cannotDecode") : t("calls.needsHttps"), r);
    }
    var known = stills.get(r.callId);
    if (known === "failed") return snapNote(t("calls.cannotDecode"), r);
    var canvas = h("canvas", { class: "snap", width: 160, height: 120, role: "img", "aria-label": label, "data-snap": "h264" });
    function show(v) {
      if (v === "failed") canvas.replaceWith(snapNote(t("calls.cannotDecode"), r));
      else drawStill(canvas, v);
    }
    if (known) { show(known); return canvas; }
    stillQueue = stillQueue.then(function () {
      var again = stills.get(r.callId);
      return again || decodeStill(r.callId).then(function (v) {
        stills.set(r.callId, v);
        if (stills.size > 60) {
          var oldest = stills.keys().next().value;
          var b = stills.get(oldest);
          stills.delete(oldest);
          if (b && b.close) b.close();
        }
        return v;
      });
    }).then(show, function () { /* shown as failed */ });
    return canvas;
  }
  function snapshot(r) {
    var label = t("calls.snapshotOf", [fmtTime(r.ringAt), r.callId]);
    if (r.snapshot === "jpeg") return h("img", { class: "snap", loading: "lazy", src: snapUrl(r.callId), alt: label });
    if (r.snapshot === "h264") return h264Snapshot(r, label);
    if (r.snapshot === "mpeg4") return snapNote(t("calls.noPreviewMpeg4"), r);
    if (r.snapshot) return snapNote(t("calls.notShown", [r.snapshot]), r);
    if (r.snapshot === null) return h("span", { class: "muted", text: t("calls.noPicture") });
    return h("span", { class: "muted", text: t("unknown") });
  }
  function historyTable(calls, id, withGateway) {
    var heads = [t("calls.visitor"), t("calls.rang"), t("calls.door"), t("calls.room"), t("calls.outcome"), t("calls.answeredBy"), t("calls.ended"), t("calls.reason")];
    if (withGateway) heads.splice(1, 0, t("calls.gateway"));
    var rows = calls.length ? calls.map(function (r) {
      // Another gateway's call: its snapshot stays there.
      var pic = r.snapshot === undefined && r.gateway ? h("span", { class: "muted", text: t("calls.keptOn", [r.gateway]) }) : snapshot(r);
      return h("tr", { "data-call": r.callId, "data-gateway": r.gateway || null },
        h("td", null, pic),
        withGateway ? h("td", { class: "mono gateway", text: r.gateway }) : null,
        h("td", { class: "num", text: fmtTime(r.ringAt) }),
        h("td", { class: "mono", text: r.door }),
        h("td", { class: "mono", text: r.roomAddress }),
        h("td", { class: "outcome", text: outcomeText(r.outcome) }),
        h("td", { class: "mono", text: r.answeredBy || t("unknown") }),
        h("td", { class: "num", text: fmtTime(r.endedAt) }),
        h("td", { class: "reason", "data-reason": r.endReason || "", text: r.endReason ? reasonText(r.endReason) : t("unknown") }));
    }) : empty(heads.length);
    return table(t("calls.history"), heads, rows, id);
  }

  views.doors = function (root) {
    var region = h("div", { id: "doors" });
    add(root, [h("h2", { text: t("doors.title") }), region]);
    function load() {
      return api("GET", "/api/v1/doors").then(function (d) {
        clear(region);
        if (d.alarms.length) {
          add(region, h("div", { class: "alarm", role: "alert", id: "alarms" }, d.alarms.map(function (a) {
            return h("div", { text: fmtTime(a.at) + " " + t("doors.conflict", [a.address || a.doorAddress, a.ip || a.newIp || a.claimedIp]) });
          })));
        }
        var heads = [t("doors.address"), t("doors.ip"), t("doors.mode"), t("doors.headerForm"), t("doors.law"), t("doors.needsTalk"), t("doors.firstHeard"), t("doors.lastHeard"), t("doors.callsToday"), t("doors.actions")];
        var rows = d.doors.length ? d.doors.map(function (x) {
          return h("tr", { "data-door": x.address },
            h("td", { class: "mono", text: x.address }),
            h("td", { class: "mono", text: x.ip || t("unknown") }),
            h("td", { text: x.mode === "pinned" ? t("doors.pinned") : t("doors.learned") }),
            h("td", { text: x.headerForm || t("unknown") }),
            h("td", { text: x.law || t("unknown") }),
            h("td", { text: x.needsTalkForUnlock ? t("yes") : t("no") }),
            h("td", { class: "num", text: fmtTime(x.firstHeard) }),
            h("td", { class: "num", text: fmtTime(x.lastHeard) }),
            h("td", { class: "num calls-today", text: x.callsToday === undefined ? t("unknown") : x.callsToday }),
            h("td", null,
              x.mode !== "pinned" && x.ip ? h("button", { type: "button", class: "secondary", "aria-label": t("doors.pin", [x.address]), text: t("doors.pinShort"),
                onclick: function () { ask(t("doors.confirmPin", [x.address, x.ip])).then(function (y) { if (y) api("POST", "/api/v1/doors/" + encodeURIComponent(x.address) + "/pin", {}).then(load).catch(fail); }); } }) : null, " ",
              h("button", { type: "button", class: "danger", "aria-label": t("doors.forget", [x.address]), text: t("doors.forgetShort"),
                onclick: function () { ask(t("doors.confirmForget", [x.address])).then(function (y) { if (y) api("POST", "/api/v1/doors/" + encodeURIComponent(x.address) + "/forget", {}).then(load).catch(fail); }); } })));
        }) : empty(heads.length);
        add(region, table(t("doors.title"), heads, rows, "door-table"));
      }).catch(fail);
    }
    return { refresh: load, load: load };
  };

  function showIssued(r) {
    var qr = h("div", { class: "qr", id: "qr", role: "img", "aria-label": t("rooms.qr") });
    qr.innerHTML = r.qrSvg; // drawn by the gateway (SVG without scripts)
    var dlg = h("dialog", { id: "issued", "aria-labelledby": "issued-title" },
      h("h2", { id: "issued-title", text: t("rooms.issued", [r.binding.uid, r.binding.roomAddress]) }),
      h("p", { text: t("rooms.once") }),
      qr,
      h("p", null, h("strong", { text: t("rooms.link") + ": " }), h("a", { id: "issued-link", href: r.link, class: "mono token", text: r.link })),
      h("p", null, h("strong", { text: t("rooms.token") + ": " }), h("code", { id: "issued-token", class: "token", text: r.token })),
      h("button", { type: "button", id: "issued-close", text: t("close"), onclick: function () { dlg.close(); dlg.remove(); } }));
    document.body.appendChild(dlg);
    dlg.showModal();
  }

  views.rooms = function (root) {
    var region = h("div", { id: "rooms" });
    var form = h("form", { class: "inline panel", id: "add-binding", "aria-label": t("rooms.add") },
      h("label", null, t("rooms.uid"), h("input", { name: "uid", required: true, maxlength: 64, autocomplete: "off" })),
      h("label", null, t("rooms.room"), h("input", { name: "room", required: true, pattern: "[A-Za-z][0-9]{11}", placeholder: "Y00010108090", title: t("rooms.roomHint") })),
      h("label", null, t("rooms.community"), h("input", { name: "community", maxlength: 64 })),
      h("button", { type: "submit", text: t("rooms.addSubmit") }));
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = form.elements;
      api("POST", "/api/v1/bindings", { uid: f.uid.value.trim(), room: f.room.value.trim(), community: f.community.value.trim() })
        .then(function (r) { form.reset(); showIssued(r); load(); }).catch(fail);
    });
    add(root, [h("h2", { text: t("rooms.title") }), h("h3", { text: t("rooms.add") }), form, region]);
    function load() {
      return api("GET", "/api/v1/rooms").then(function (d) {
        clear(region);
        if (!d.rooms.length) add(region, h("p", { class: "muted", text: t("rooms.empty") }));
        d.rooms.forEach(function (room) {
          var heads = [t("rooms.uid"), t("rooms.status"), t("rooms.community"), t("rooms.bound"), t("doors.actions")];
          var rows = room.phones.map(function (p) {
            return h("tr", { "data-uid": p.uid },
              h("td", { class: "mono", text: p.uid }),
              h("td", null, p.online ? h("span", { class: "ok status-online", text: t("rooms.online", [p.online.ip, p.online.transport, fmtTime(p.online.since)]) }) : h("span", { class: "muted status-offline", text: t("rooms.offline") })),
              h("td", { text: p.community || t("unknown") }),
              h("td", { class: "num", text: fmtTime(p.createdAt) }),
              h("td", null,
                h("button", { type: "button", class: "secondary", "aria-label": t("rooms.rotate", [p.uid]), text: t("rooms.rotateShort"),
                  onclick: function () { ask(t("rooms.confirmRotate", [p.uid, room.roomKey])).then(function (y) { if (y) api("POST", "/api/v1/bindings/" + room.roomKey + "/" + encodeURIComponent(p.uid) + "/rotate", {}).then(function (r) { showIssued(r); load(); }).catch(fail); }); } }), " ",
                h("button", { type: "button", class: "danger", "aria-label": t("rooms.remove", [p.uid]), text: t("rooms.removeShort"),
                  onclick: function () { ask(t("rooms.confirmRemove", [p.uid, room.roomKey])).then(function (y) { if (y) api("DELETE", "/api/v1/bindings/" + room.roomKey + "/" + encodeURIComponent(p.uid)).then(load).catch(fail); }); } })));
          });
          add(region, h("section", { class: "panel", "data-room": room.roomKey, "aria-label": t("rooms.room") + " " + room.roomAddress },
            h("h3", { text: t("rooms.room") + " " + room.roomAddress + (room.community ? " · " + room.community : "") }),
            table(t("rooms.room") + " " + room.roomKey, heads, rows)));
        });
      }).catch(fail);
    }
    return { refresh: load, load: load };
  };

  views.calls = function (root) {
    var liveRegion = h("div", { id: "calls-live" });
    var histRegion = h("div", { id: "calls-history" });
    var unlockRegion = h("div", { id: "unlocks" });
    var cursor = null;
    var shown = [];
    var form = h("form", { class: "inline panel", id: "history-filter", "aria-label": t("calls.filter") },
      h("label", null, t("calls.room"), h("input", { name: "room", placeholder: "Y00010108090", size: 14 })),
      h("label", null, t("calls.door"), h("input", { name: "door", placeholder: "M00010100", size: 12 })),
      h("label", null, t("calls.from"), h("input", { name: "from", type: "datetime-local" })),
      h("label", null, t("calls.to"), h("input", { name: "to", type: "datetime-local" })),
      h("label", null, t("calls.outcome"), h("select", { name: "outcome" },
        h("option", { value: "", text: t("calls.any") }), h("option", { value: "answered", text: t("calls.answered") }),
        h("option", { value: "missed", text: t("calls.missed") }), h("option", { value: "live", text: t("calls.inProgress") }))),
      h("button", { type: "submit", text: t("calls.filter") }));
    var older = h("button", { type: "button", class: "secondary", id: "older", text: t("calls.older"), onclick: function () { history(true); } });
    form.addEventListener("submit", function (ev) { ev.preventDefault(); history(false); });
    // Several gateways: this gateway's records (filters, paging) or the whole community's latest.
    var own = session && session.community;
    var scope = h("select", { id: "scope", name: "scope" },
      h("option", { value: "local", text: t("calls.scopeLocal", [own || ""]) }),
      h("option", { value: "community", text: t("calls.scopeCommunity") }));
    var scopeNote = h("p", { id: "scope-note", role: "status", hidden: true });
    scope.addEventListener("change", function () { load(); });
    var scopeBar = own ? h("div", { class: "inline panel" }, h("label", null, t("calls.scope"), scope), scopeNote) : null;
    function community() { return own && scope.value === "community"; }
    add(root, [h("h2", { text: t("calls.live") }), liveRegion, h("h2", { text: t("calls.history") }), scopeBar, form, histRegion, older,
      h("h2", { text: t("calls.unlocks") }), unlockRegion]);
    function showScope(d) {
      scopeNote.hidden = !community();
      if (!community()) return;
      var local = d.scope === "local";
      scopeNote.className = local ? "warn" : "muted";
      scopeNote.textContent = local ? t("calls.communityLocal") : t("calls.communityAll", [d.gateways.join(", ") || own]);
    }
    function query() {
      var f = form.elements;
      var q = [];
      if (f.room.value.trim()) q.push("room=" + encodeURIComponent(f.room.value.trim()));
      if (f.door.value.trim()) q.push("door=" + encodeURIComponent(f.door.value.trim()));
      if (f.from.value) q.push("from=" + new Date(f.from.value).getTime());
      if (f.to.value) q.push("to=" + new Date(f.to.value).getTime());
      if (f.outcome.value) q.push("outcome=" + f.outcome.value);
      return q;
    }
    function history(more) {
      form.hidden = community();
      if (community()) {
        older.hidden = true;
        return api("GET", "/api/v1/community/calls?limit=50").then(function (d) {
          showScope(d);
          clear(histRegion);
          add(histRegion, historyTable(d.records, "history", true));
        }).catch(fail);
      }
      showScope(null);
      var q = query();
      q.push("limit=20");
      if (more && cursor) q.push("cursor=" + encodeURIComponent(cursor));
      return api("GET", "/api/v1/calls?" + q.join("&")).then(function (d) {
        shown = more ? shown.concat(d.calls) : d.calls;
        cursor = d.next;
        older.hidden = !cursor;
        clear(histRegion);
        add(histRegion, historyTable(shown, "history"));
      }).catch(fail);
    }
    function live() {
      return api("GET", "/api/v1/calls/live").then(function (d) {
        clear(liveRegion);
        add(liveRegion, liveCallsTable(d.calls, true));
      }).catch(fail);
    }
    function unlocks() {
      var all = community();
      return api("GET", all ? "/api/v1/community/unlocks?limit=50" : "/api/v1/unlocks?limit=50").then(function (d) {
        clear(unlockRegion);
        var list = all ? d.records : d.unlocks;
        var heads = [t("calls.when"), t("rooms.uid"), t("calls.room"), t("calls.door"), t("calls.result"), t("audit.where"), t("audit.detail")];
        if (all) heads.splice(1, 0, t("calls.gateway"));
        var rows = list.length ? list.map(function (u) {
          return h("tr", null, h("td", { class: "num", text: fmtTime(u.at) }),
            all ? h("td", { class: "mono gateway", text: u.gateway }) : null, h("td", { class: "mono", text: u.uid }),
            h("td", { class: "mono", text: u.roomAddress }), h("td", { class: "mono", text: u.doorAddress }),
            h("td", { class: u.result === "success" ? "ok" : "warn", text: u.result }), h("td", { class: "mono", text: u.ip || t("unknown") }),
            h("td", { text: u.reason || "" }));
        }) : empty(heads.length);
        add(unlockRegion, table(t("calls.unlocks"), heads, rows, "unlock-table"));
      }).catch(fail);
    }
    function load() { return Promise.all([live(), history(false), unlocks()]); }
    return { load: load, refresh: function (e) {
      if (!e || /^call_(phase|started|answered|talk)$/.test(e.type)) return live();
      return load();
    } };
  };

  views.trace = function (root) {
    var lines = [];
    var MAX = 2000;
    var paused = false;
    var es = null;
    var pre = h("pre", { class: "trace", id: "trace", tabindex: 0, "aria-label": t("trace.title"), "aria-live": "off" });
    var count = h("span", { class: "muted", id: "trace-count", text: t("trace.lines", [0]) });
    var beats = h("input", { type: "checkbox", id: "trace-heartbeats" });
    var pauseBtn = h("button", { type: "button", class: "secondary", id: "trace-pause", text: t("trace.pause"), "aria-pressed": "false",
      onclick: function () { paused = !paused; pauseBtn.textContent = paused ? t("trace.resume") : t("trace.pause"); pauseBtn.setAttribute("aria-pressed", String(paused)); if (!paused) redraw(); } });
    var form = h("form", { class: "inline panel", id: "trace-filter", "aria-label": t("calls.filter") },
      h("label", null, t("trace.door"), h("input", { name: "door", placeholder: "M00010100", size: 12 })),
      h("label", null, t("trace.room"), h("input", { name: "room", placeholder: "Y00010108090", size: 14 })),
      h("button", { type: "submit", text: t("trace.apply") }),
      pauseBtn,
      h("button", { type: "button", class: "secondary", id: "trace-clear", text: t("trace.clear"), onclick: function () { lines = []; redraw(); } }),
      h("button", { type: "button", class: "secondary", id: "trace-download", text: t("trace.download"), onclick: download }),
      h("label", { class: "inline-check" }, h("span", null, beats, " " + t("trace.heartbeats"))),
      count);
    beats.addEventListener("change", redraw);
    form.addEventListener("submit", function (ev) { ev.preventDefault(); open(); });
    add(root, [h("h2", { text: t("trace.title") }), form, pre]);
    function text(l) {
      var d = new Date(l.at);
      var time = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3);
      var peer = l.peer; while (peer.length < 21) peer += " ";
      var kind = l.kind; while (kind.length < 5) kind += " ";
      return time + " " + (l.direction === "in" ? "\u2190" : "\u2192") + " " + kind + " " + peer + " " + l.summary + "  (" + l.length + " B)";
    }
    function visible(l) { return beats.checked || !/^heartbeat/.test(l.summary); }
    function redraw() {
      clear(pre);
      var shown = lines.filter(visible);
      shown.slice(-500).forEach(function (l) { add(pre, h("span", { class: l.direction, text: text(l) + "\n" })); });
      count.textContent = t("trace.lines", [shown.length]) + (paused ? " · " + t("trace.paused") : "");
      pre.scrollTop = pre.scrollHeight;
    }
    function download() {
      var blob = new Blob([lines.filter(visible).map(text).join("\n") + "\n"], { type: "text/plain" });
      var a = h("a", { href: URL.createObjectURL(blob), download: "intercom-trace-" + Date.now() + ".txt" });
      document.body.appendChild(a); a.click(); a.remove();
    }
    function open() {
      if (es) es.close();
      var f = form.elements;
      var q = [];
      if (f.door.value.trim()) q.push("door=" + encodeURIComponent(f.door.value.trim()));
      if (f.room.value.trim()) q.push("room=" + encodeURIComponent(f.room.value.trim()));
      es = new EventSource("/api/v1/trace" + (q.length ? "?" + q.join("&") : ""));
      es.addEventListener("trace", function (ev) {
        var l = JSON.parse(ev.data);
        lines.push(l);
        if (lines.length > MAX) lines.splice(0, lines.length - MAX);
        if (paused) { count.textContent = t("trace.lines", [lines.filter(visible).length]) + " · " + t("trace.paused"); return; }
        if (!visible(l)) return;
        add(pre, h("span", { class: l.direction, text: text(l) + "\n" }));
        while (pre.childNodes.length > 500) pre.removeChild(pre.firstChild);
        count.textContent = t("trace.lines", [lines.filter(visible).length]);
        pre.scrollTop = pre.scrollHeight;
      });
    }
    return { load: function () { open(); return Promise.resolve(); }, dispose: function () { if (es) es.close(); } };
  };

  // ---- charts (inline SVG of our own) ----
  function svg(tag, attrs) {
    var el = document.createElementNS(SVG, tag);
    for (var k in attrs) el.setAttribute(k, String(attrs[k]));
    for (var i = 2; i < arguments.length; i++) if (arguments[i]) el.appendChild(arguments[i]);
    return el;
  }
  function niceMax(v) { if (v <= 0) return 1; var p = Math.pow(10, Math.floor(Math.log10(v))); var m = v / p; return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p; }
  function axes(g, W, H, L, B, max, labels) {
    g.appendChild(svg("line", { x1: L, y1: H - B, x2: W - 5, y2: H - B, stroke: "#d0d7de" }));
    g.appendChild(svg("line", { x1: L, y1: 8, x2: L, y2: H - B, stroke: "#d0d7de" }));
    [0, 0.5, 1].forEach(function (f) {
      var y = H - B - f * (H - B - 8);
      var tx = svg("text", { x: L - 4, y: y + 4, "text-anchor": "end" }); tx.textContent = String(Math.round(max * f * 10) / 10); g.appendChild(tx);
    });
    labels.forEach(function (l) { var tx = svg("text", { x: l.x, y: H - 4, "text-anchor": "middle" }); tx.textContent = l.text; g.appendChild(tx); });
  }
  function hhmm(ms) { var d = new Date(ms); return pad(d.getHours()) + ":" + pad(d.getMinutes()); }
  function barChart(title, points) {
    var W = 720, H = 220, L = 40, B = 22;
    var max = niceMax(Math.max.apply(null, points.map(function (p) { return p.calls; }).concat([0])));
    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img", "aria-label": title });
    var labels = [];
    var bw = (W - L - 10) / Math.max(1, points.length);
    points.forEach(function (p, i) {
      var hgt = (p.calls / max) * (H - B - 8);
      var rect = svg("rect", { x: L + i * bw + 2, y: H - B - hgt, width: Math.max(1, bw - 4), height: hgt, fill: "#0b5cad" });
      var tip = svg("title", {}); tip.textContent = hhmm(p.t) + ": " + p.calls; rect.appendChild(tip);
      s.appendChild(rect);
      if (i % 4 === 0) labels.push({ x: L + i * bw + bw / 2, text: hhmm(p.t) });
    });
    axes(s, W, H, L, B, max, labels);
    return s;
  }
  function lineChart(title, points, series) {
    var W = 720, H = 220, L = 48, B = 22;
    var max = 0;
    series.forEach(function (se) { points.forEach(function (p) { max = Math.max(max, p[se.key]); }); });
    max = niceMax(max);
    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img", "aria-label": title });
    var t0 = points.length ? points[0].t : 0, t1 = points.length ? points[points.length - 1].t : 1;
    var span = Math.max(1, t1 - t0);
    function x(p) { return L + ((p.t - t0) / span) * (W - L - 10); }
    function y(v) { return H - B - (v / max) * (H - B - 8); }
    series.forEach(function (se) {
      var d = points.map(function (p, i) { return (i ? "L" : "M") + x(p).toFixed(1) + " " + y(p[se.key]).toFixed(1); }).join(" ");
      if (points.length === 1) d += " L" + (x(points[0]) + 4) + " " + y(points[0][se.key]).toFixed(1);
      s.appendChild(svg("path", { d: d, fill: "none", stroke: se.color, "stroke-width": 2 }));
    });
    var labels = [];
    for (var i = 0; i < points.length; i += Math.max(1, Math.floor(points.length / 6))) labels.push({ x: x(points[i]), text: hhmm(points[i].t) });
    axes(s, W, H, L, B, max, labels);
    return s;
  }
  function legend(series) {
    return h("div", { class: "legend" }, series.map(function (se) {
      var sp = h("span", { text: se.label }); sp.style.setProperty("--c", se.color); return sp;
    }));
  }
  views.charts = function (root) {
    var region = h("div", { id: "charts" });
    add(root, [h("h2", { text: t("nav.charts") }), region]);
    var timer = null;
    function load() {
      return api("GET", "/api/v1/charts").then(function (d) {
        clear(region);
        add(region, [h("h3", { text: t("charts.calls") }), barChart(t("charts.calls"), d.hours)]);
        var mediaSeries = [
          { key: "doorInPerS", color: "#0b5cad", label: t("charts.doorIn") },
          { key: "toPhonesPerS", color: "#1a7f37", label: t("charts.toPhones") },
          { key: "phoneInPerS", color: "#9a6700", label: t("charts.phoneIn") },
          { key: "toDoorPerS", color: "#8250df", label: t("charts.toDoor") }];
        add(region, h("h3", { text: t("charts.media") }));
        if (!d.minutes.length) add(region, h("p", { class: "muted", text: t("charts.noData") }));
        else add(region, [lineChart(t("charts.media"), d.minutes, mediaSeries), legend(mediaSeries)]);
        add(region, h("h3", { text: t("charts.drops") }));
        if (!d.minutes.length) add(region, h("p", { class: "muted", text: t("charts.noData") }));
        else add(region, lineChart(t("charts.drops"), d.minutes, [{ key: "droppedPerS", color: "#b3261e" }]));
        add(region, h("h3", { text: t("charts.phones") }));
        if (!d.minutes.length) add(region, h("p", { class: "muted", text: t("charts.noData") }));
        else add(region, lineChart(t("charts.phones"), d.minutes, [{ key: "phonesOnline", color: "#1a7f37" }]));
      }).catch(fail);
    }
    return { load: function () { timer = setInterval(load, 60000); return load(); }, dispose: function () { clearInterval(timer); } };
  };

  views.audit = function (root) {
    var region = h("div", { id: "audit" });
    var before = null;
    var shown = [];
    var older = h("button", { type: "button", class: "secondary", text: t("audit.older"), onclick: function () { load(true); } });
    add(root, [h("h2", { text: t("audit.title") }), region, older]);
    function load(more) {
      return api("GET", "/api/v1/audit?limit=50" + (more && before ? "&before=" + encodeURIComponent(before) : "")).then(function (d) {
        shown = more ? shown.concat(d.entries) : d.entries;
        before = d.next; older.hidden = !before;
        clear(region);
        var heads = [t("calls.when"), t("audit.who"), t("audit.what"), t("audit.target"), t("audit.where"), t("audit.detail")];
        var rows = shown.length ? shown.map(function (e) {
          return h("tr", null, h("td", { class: "num", text: fmtTime(e.at) }), h("td", { class: "mono", text: e.admin }),
            h("td", { text: e.action }), h("td", { class: "mono", text: e.target || "" }), h("td", { class: "mono", text: e.ip }), h("td", { text: e.detail || "" }));
        }) : empty(heads.length);
        add(region, table(t("audit.title"), heads, rows, "audit-table"));
      }).catch(fail);
    }
    return { load: function () { return load(false); }, refresh: function () { return load(false); } };
  };

  views.password = function (root) {
    var form = h("form", { class: "stack panel", id: "password-form", "aria-label": t("pw.title") },
      session && session.mustChange ? h("p", { text: t("pw.why") }) : null,
      h("label", null, t("pw.current"), h("input", { type: "password", name: "current", required: true, autocomplete: "current-password" })),
      h("label", null, t("pw.new"), h("input", { type: "password", name: "password", required: true, minlength: 10, autocomplete: "new-password" })),
      h("button", { type: "submit", text: t("pw.submit") }));
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      api("POST", "/api/v1/session/password", { current: form.elements.current.value, password: form.elements.password.value })
        .then(function () { say(t("pw.done")); if (session) session.mustChange = false; form.reset(); location.hash = "#/overview"; })
        .catch(fail);
    });
    add(root, [h("h2", { text: t("pw.title") }), form]);
    return { load: function () { return Promise.resolve(); } };
  };

  // ---- shell ----
  var NAV = ["overview", "doors", "rooms", "calls", "trace", "charts", "audit"];
  var session = null;
  var current = null;
  var main, nav, liveDot, liveText;
  var pending = null;
  var pendingEvent;
  function refresh(e) {
    if (current && current.refresh) return current.refresh(e);
  }
  function shell() {
    var body = document.body;
    clear(body);
    liveDot = h("span", { class: "live-dot", "aria-hidden": "true" });
    liveText = h("span", { id: "live-state", text: t("live.off") });
    nav = h("nav", { class: "sections", "aria-label": t("nav.label") }, NAV.map(function (n) {
      return h("a", { href: "#/" + n, "data-view": n, text: t("nav." + n) });
    }));
    main = h("main", { id: "view", tabindex: -1 });
    statusEl = h("div", { class: "status", role: "status", "aria-live": "polite", id: "status" });
    add(body, [
      h("header", { class: "top" },
        h("h1", { text: t("title") + " · " + t("console") }),
        h("span", { class: "who" }, liveDot, liveText),
        h("span", { class: "spacer" }),
        h("span", { class: "who", id: "who", text: session ? t("loggedInAs", [session.name]) : "" }),
        h("button", { type: "button", id: "lang-switch", "aria-label": t("lang.label"), text: t("lang.other"), onclick: function () {
          lang = lang === "zh" ? "en" : "zh";
          try { localStorage.setItem("intercom.lang", lang); } catch (e) { /* private mode */ }
          start();
        } }),
        h("button", { type: "button", id: "password-link", text: t("pw.change"), onclick: function () { location.hash = "#/password"; } }),
        h("button", { type: "button", id: "logout", text: t("logout"), onclick: function () {
          api("DELETE", "/api/v1/session").then(function () { location.href = "/admin/login"; }).catch(fail);
        } })),
      nav, h("div", { class: "wrap" }, statusEl), main]);
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("console") + " · " + t("title");
  }
  function route() {
    var name = (location.hash || "").replace(/^#\/?/, "") || "overview";
    if (session && session.mustChange) name = "password";
    if (!views[name]) name = "overview";
    if (current && current.dispose) current.dispose();
    clear(main);
    say("");
    var links = nav.querySelectorAll("a");
    for (var i = 0; i < links.length; i++) {
      if (links[i].getAttribute("data-view") === name) links[i].setAttribute("aria-current", "page");
      else links[i].removeAttribute("aria-current");
    }
    current = views[name](main);
    current.name = name;
    current.load().then(function () { main.setAttribute("data-loaded", name); });
  }
  var events = null;
  function live() {
    if (events) events.close();
    events = new EventSource("/api/v1/events");
    events.onopen = function () { liveDot.className = "live-dot on"; liveText.textContent = t("live.on"); };
    events.onerror = function () { liveDot.className = "live-dot"; liveText.textContent = t("live.off"); };
    events.addEventListener("change", function (ev) {
      var e = JSON.parse(ev.data);
      // One refresh per burst; a burst of only call progress passes that event (a light refresh).
      pendingEvent = pending === null ? e : (pendingEvent && pendingEvent.type === e.type ? e : undefined);
      if (pending) return;
      pending = setTimeout(function () { pending = null; refresh(pendingEvent); }, 200);
    });
  }
  function start() {
    shell();
    route();
    if (events && events.readyState === 1) events.onopen();
  }
  window.addEventListener("hashchange", route);
  api("GET", "/api/v1/session").then(function (s) {
    session = s;
    start();
    live();
  }).catch(function (e) { if (e.message !== "login") { document.body.textContent = t("error", [e.message]); } });
})();
`;
