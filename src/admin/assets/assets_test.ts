import { assert, assertEquals } from "../../../tests/helpers/assert.ts";
import { ASSETS, consolePage, loginPage, pickLanguage } from "./mod.ts";
import { EN, ZH } from "./i18n.ts";
import { CORE_JS } from "../../webapp/assets/core_js.ts";
import { END_REASON } from "../../call/types.ts";

Deno.test("assets: both languages have the same words; the scripts parse; no external reference", () => {
  assertEquals(Object.keys(ZH).sort(), Object.keys(EN).sort());
  for (const name of ["console.js", "login.js", "i18n.js"]) {
    // Throws a SyntaxError when the embedded script does not parse.
    new Function(ASSETS[name]!.body);
  }
  for (
    const page of [
      loginPage("en"),
      consolePage("zh"),
      ...Object.values(ASSETS).map((a) => a.body),
    ]
  ) {
    // (core.js names the provisioning link's form, https://GATEWAY/app/, in a comment.)
    assert(!/https?:\/\/(?!www\.w3\.org|GATEWAY\/)/.test(page), "no asset from the internet");
  }
  // The snapshots' H.264 decoder is the web phone's own script, served again, not a copy.
  assertEquals(ASSETS["core.js"]!.body, CORE_JS);
  assert(consolePage("en").includes('<script src="/admin/assets/core.js"></script>'));
  // Every key the console uses exists.
  const used = [...ASSETS["console.js"]!.body.matchAll(/\bt\("([a-zA-Z.]+)"/g)].map((m) => m[1]!);
  for (const key of used.filter((k) => !k.endsWith("."))) assert(key in EN, `missing word ${key}`);
});

Deno.test("assets: every way a call ends has words in both languages", () => {
  for (const reason of Object.keys(END_REASON)) {
    assert(EN[`reason.${reason}`], `no English words for ${reason}`);
    assert(ZH[`reason.${reason}`], `no Chinese words for ${reason}`);
  }
});

Deno.test("assets: the language from Accept-Language", () => {
  assertEquals(pickLanguage(null), "en");
  assertEquals(pickLanguage("zh-CN,zh;q=0.9,en;q=0.8"), "zh");
  assertEquals(pickLanguage("en-US,en;q=0.9,zh;q=0.8"), "en");
  assertEquals(pickLanguage("fr-FR, zh-TW;q=0.5"), "zh");
  assertEquals(pickLanguage("zh;q=0.2, en;q=0.7"), "en");
  assertEquals(pickLanguage("de"), "en");
  assert(loginPage("zh-CN,zh;q=0.9").includes('lang="zh-CN" data-lang-from="accept-language"'));
  assert(loginPage(null).includes('lang="en">'), "no header: the script asks navigator.language");
});
