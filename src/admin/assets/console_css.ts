/**
 * The console's style sheet: plain, high contrast, one column on a phone, tables that scroll
 * sideways rather than squeeze.
 *
 * @module
 */

/** `console.css`. */
export const CONSOLE_CSS: string = String.raw`
:root {
  --fg: #1b1f23; --muted: #57606a; --bg: #f6f8fa; --card: #ffffff; --line: #d0d7de;
  --accent: #0b5cad; --ok: #1a7f37; --bad: #b3261e; --warn: #9a6700;
  font-family: system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei",
    "WenQuanYi Micro Hei", sans-serif;
  font-size: 16px; color: var(--fg); background: var(--bg);
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; line-height: 1.45; }
a { color: var(--accent); }
header.top {
  display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem;
  padding: .6rem 1rem; background: #0d2a4a; color: #fff;
}
header.top h1 { font-size: 1.1rem; margin: 0; }
header.top .spacer { flex: 1; }
header.top .who { font-size: .85rem; opacity: .85; }
header.top button { background: transparent; color: #fff; border-color: #7aa7d6; }
nav.sections { display: flex; flex-wrap: wrap; gap: .25rem; padding: .5rem 1rem;
  background: #fff; border-bottom: 1px solid var(--line); }
nav.sections a { padding: .35rem .7rem; border-radius: 6px; text-decoration: none; color: var(--fg); }
nav.sections a[aria-current="page"] { background: var(--accent); color: #fff; }
main { padding: 1rem; max-width: 1200px; margin: 0 auto; }
h2 { font-size: 1.2rem; margin: 1.2rem 0 .6rem; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .75rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .75rem; }
.card .n { font-size: 1.8rem; font-weight: 600; }
.card .label { color: var(--muted); font-size: .85rem; }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: .75rem; margin-bottom: 1rem; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; background: var(--card); font-size: .92rem; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f4; font-weight: 600; white-space: nowrap; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.mono, code { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: .88em; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); }
.muted { color: var(--muted); }
.alarm { background: #fff4f2; border: 1px solid #f2b8b5; color: var(--bad); border-radius: 8px;
  padding: .6rem .8rem; margin-bottom: .75rem; }
button, .button {
  font: inherit; font-size: .92rem; padding: .35rem .75rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--accent); background: var(--accent); color: #fff; min-height: 2.2rem;
}
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--bad); border-color: var(--bad); }
button:focus-visible, a:focus-visible, input:focus-visible, select:focus-visible {
  outline: 3px solid #f0b429; outline-offset: 2px;
}
form.inline { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: flex-end; }
form.inline label, form.stack label { display: flex; flex-direction: column; font-size: .85rem;
  color: var(--muted); gap: .2rem; }
form.stack { display: flex; flex-direction: column; gap: .75rem; max-width: 24rem; }
input, select { font: inherit; padding: .35rem .5rem; border: 1px solid var(--line);
  border-radius: 6px; min-height: 2.2rem; background: #fff; color: var(--fg); }
.status { margin: .5rem 0; }
.status:empty { display: none; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.live-dot { display: inline-block; width: .6rem; height: .6rem; border-radius: 50%;
  background: var(--bad); margin-right: .3rem; }
.live-dot.on { background: #3fb950; }
pre.trace { background: #0d1117; color: #e6edf3; padding: .75rem; border-radius: 8px;
  height: 60vh; overflow: auto; font-size: .8rem; line-height: 1.35; margin: 0; white-space: pre; }
pre.trace .in { color: #7ee787; } pre.trace .out { color: #79c0ff; }
img.snap, canvas.snap { max-width: 160px; width: auto; height: auto; max-height: 120px; border-radius: 4px; border: 1px solid var(--line);
  display: block; }
.placeholder { display: inline-block; max-width: 160px; padding: .4rem; border: 1px dashed var(--line);
  color: var(--muted); font-size: .8rem; border-radius: 4px; }
dialog { border: 1px solid var(--line); border-radius: 10px; max-width: min(34rem, 94vw);
  padding: 1rem 1.2rem; }
dialog::backdrop { background: rgba(0,0,0,.35); }
.qr { width: 260px; max-width: 100%; background: #fff; }
.qr svg { width: 100%; height: auto; display: block; }
.token { overflow-wrap: anywhere; background: #eef1f4; padding: .3rem .5rem; border-radius: 4px; }
.chart { width: 100%; height: auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
.chart text { font-size: 11px; fill: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: .3rem 1rem; font-size: .85rem; }
.legend span::before { content: ""; display: inline-block; width: .8rem; height: .25rem;
  margin-right: .3rem; vertical-align: middle; background: var(--c); }
.login { max-width: 24rem; margin: 8vh auto; background: #fff; border: 1px solid var(--line);
  border-radius: 10px; padding: 1.5rem; }
.login h1 { font-size: 1.25rem; margin-top: 0; }
.login .lang { float: right; }
@media (max-width: 640px) {
  main { padding: .6rem; }
  header.top { gap: .35rem .5rem; padding: .5rem .6rem; }
  header.top h1 { font-size: 1rem; }
  header.top button { padding: .2rem .45rem; font-size: .8rem; }
  header.top .who { font-size: .8rem; }
  nav.sections { padding: .35rem .6rem; gap: .15rem; }
  nav.sections a { padding: .3rem .5rem; }
  /* Tables become one labelled block per row. */
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.stack tr { display: block; border-bottom: 2px solid var(--line); padding: .3rem 0; }
  table.stack td { display: flex; gap: .75rem; border: 0; padding: .2rem .5rem; }
  table.stack td[data-label]::before { content: attr(data-label); flex: 0 0 7.5rem;
    color: var(--muted); font-size: .85rem; font-family: system-ui, sans-serif; }
  table.stack td.num { white-space: normal; }
}
`;
