/**
 * The login page's script: posts the name and password as JSON with the CSRF header, shows why
 * a login failed, then goes to the console. Plain ES2017, no build step.
 *
 * @module
 */

/** `login.js`. */
export const LOGIN_JS: string = String.raw`
(function () {
  "use strict";
  var I18N = window.INTERCOM_I18N;
  function pick() {
    var saved = null;
    try { saved = localStorage.getItem("intercom.lang"); } catch (e) { /* private mode */ }
    if (saved === "zh" || saved === "en") return saved;
    // The server chose from Accept-Language (the browser's whole list); else navigator.language.
    var html = document.documentElement;
    if (html.getAttribute("data-lang-from")) return html.lang.indexOf("zh") === 0 ? "zh" : "en";
    var nav = (navigator.language || "").toLowerCase();
    return nav.indexOf("zh") === 0 ? "zh" : "en";
  }
  var lang = pick();
  function t(k, a) {
    var s = (I18N[lang] && I18N[lang][k]) || I18N.en[k] || k;
    return s.replace(/\{(\d)\}/g, function (_, i) { return a && a[i] !== undefined ? String(a[i]) : ""; });
  }
  function apply() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("login.title") + " · " + t("title");
    var nodes = document.querySelectorAll("[data-t]");
    for (var i = 0; i < nodes.length; i++) nodes[i].textContent = t(nodes[i].getAttribute("data-t"));
    var sw = document.getElementById("lang");
    sw.textContent = t("lang.other");
    sw.setAttribute("aria-label", t("lang.label"));
  }
  document.getElementById("lang").addEventListener("click", function () {
    lang = lang === "zh" ? "en" : "zh";
    try { localStorage.setItem("intercom.lang", lang); } catch (e) { /* private mode */ }
    apply();
  });
  var form = document.getElementById("login");
  var status = document.getElementById("status");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    status.textContent = "";
    var body = JSON.stringify({ name: form.elements.name.value, password: form.elements.password.value });
    fetch("/api/v1/session", {
      method: "POST",
      headers: { "content-type": "application/json", "x-requested-with": "intercom-console" },
      body: body,
      credentials: "same-origin"
    }).then(function (res) {
      if (res.ok) { location.href = "/admin"; return; }
      return res.json().then(function (j) {
        var code = j && j.error && j.error.code;
        if (code === "rate_limited") status.textContent = t("login.wait", [res.headers.get("retry-after") || "?"]);
        else if (code === "unauthorized") status.textContent = t("login.wrong");
        else status.textContent = t("error", [(j && j.error && j.error.message) || res.status]);
        form.elements.password.select();
      });
    }).catch(function (e) { status.textContent = t("error", [e.message]); });
  });
  apply();
  form.elements.name.focus();
})();
`;
