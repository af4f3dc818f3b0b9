/**
 * The console's embedded assets and pages: strings in TypeScript modules, so that `deno bundle`
 * and `deno compile` carry them and the gateway serves them without files or internet.
 *
 * @module
 */

import { CONSOLE_CSS } from "./console_css.ts";
import { CONSOLE_JS } from "./console_js.ts";
import { LOGIN_JS } from "./login_js.ts";
import { EN, I18N_JS, ZH } from "./i18n.ts";
import { CORE_JS } from "../../webapp/assets/core_js.ts";

/** One asset under `/admin/assets/`. */
export interface Asset {
  readonly type: string;
  readonly body: string;
  /** Served without a session (the login page needs it). */
  readonly public: boolean;
}

/** Assets by file name. */
export const ASSETS: Readonly<Record<string, Asset>> = {
  "console.css": { type: "text/css; charset=utf-8", body: CONSOLE_CSS, public: true },
  "i18n.js": { type: "text/javascript; charset=utf-8", body: I18N_JS, public: true },
  "login.js": { type: "text/javascript; charset=utf-8", body: LOGIN_JS, public: true },
  "console.js": { type: "text/javascript; charset=utf-8", body: CONSOLE_JS, public: false },
  /** The web phone's core (`/app/core.js`), for its H.264 decoder: the visitor snapshots. */
  "core.js": { type: "text/javascript; charset=utf-8", body: CORE_JS, public: false },
};

/** A console language. */
export type Lang = "en" | "zh";

/** The language an `Accept-Language` header prefers among ours (English when none). */
export function pickLanguage(header: string | null | undefined): Lang {
  if (!header) return "en";
  const prefs = header.split(",").map((part, i) => {
    const [tag = "", ...params] = part.trim().split(";");
    const q = params.map((p) => /^\s*q=([\d.]+)/.exec(p)?.[1]).find((v) => v !== undefined);
    return { tag: tag.trim().toLowerCase(), q: q === undefined ? 1 : Number(q), i };
  }).filter((p) => p.tag && p.q > 0).sort((a, b) => b.q - a.q || a.i - b.i);
  for (const p of prefs) {
    if (p.tag === "zh" || p.tag.startsWith("zh-")) return "zh";
    if (p.tag === "en" || p.tag.startsWith("en-")) return "en";
  }
  return "en";
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(
  lang: Lang,
  fromHeader: boolean,
  title: string,
  body: string,
  scripts: readonly string[],
): string {
  return `<!doctype html>
<html lang="${lang === "zh" ? "zh-CN" : "en"}"${
    fromHeader ? ' data-lang-from="accept-language"' : ""
  }>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>${escape(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/admin/assets/console.css">
</head>
<body>
${body}
<script src="/admin/assets/i18n.js"></script>
${scripts.map((s) => `<script src="/admin/assets/${s}"></script>`).join("\n")}
</body>
</html>
`;
}

/**
 * The login page (its script fills in the words of the chosen language): the language the
 * browser's `Accept-Language` prefers, else English; the page's script may pick another
 * (the user's switch, or `navigator.language` when the browser sent no header).
 */
export function loginPage(acceptLanguage: string | null | undefined): string {
  const lang = pickLanguage(acceptLanguage);
  const s = lang === "zh" ? ZH : EN;
  return page(
    lang,
    !!acceptLanguage,
    `${s["login.title"]} · ${s.title}`,
    `<main class="login">
<button type="button" id="lang" class="secondary lang" aria-label="${escape(s["lang.label"]!)}">${
      escape(s["lang.other"]!)
    }</button>
<h1 data-t="login.title">${escape(s["login.title"]!)}</h1>
<form id="login" class="stack" autocomplete="on">
<label><span data-t="login.name">${escape(s["login.name"]!)}</span>
<input name="name" id="name" autocomplete="username" required maxlength="32"></label>
<label><span data-t="login.password">${escape(s["login.password"]!)}</span>
<input name="password" id="password" type="password" autocomplete="current-password" required maxlength="256"></label>
<button type="submit" id="submit" data-t="login.submit">${escape(s["login.submit"]!)}</button>
</form>
<p id="status" class="status bad" role="alert" aria-live="assertive"></p>
</main>`,
    ["login.js"],
  );
}

/** The console's shell (its script builds the sections); the language as for the login page. */
export function consolePage(acceptLanguage: string | null | undefined): string {
  const lang = pickLanguage(acceptLanguage);
  const s = lang === "zh" ? ZH : EN;
  return page(
    lang,
    !!acceptLanguage,
    `${s.console} · ${s.title}`,
    `<noscript>${escape(s.console!)}: JavaScript</noscript><p>${escape(s.loading!)}</p>`,
    ["core.js", "console.js"],
  );
}
