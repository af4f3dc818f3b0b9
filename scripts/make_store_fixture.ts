/**
 * Makes `tests/fixtures/store-0.1.0/`: the data store of the released 0.1.0 gateway, written by
 * that release's own code (its gateway, its `bind` CLI and its simulators), so that the upgrade
 * tests open exactly what a building's gateway holds after months on 0.1.0.
 *
 * ```sh
 * git worktree add --detach /tmp/gw010 8cd426a      # the last 0.1.0 commit
 * deno run --allow-run --allow-read --allow-write --allow-env --allow-net \
 *   scripts/make_store_fixture.ts --release /tmp/gw010 [--out tests/fixtures/store-0.1.0]
 * git worktree remove /tmp/gw010
 * ```
 *
 * In a private network namespace (nothing leaves the machine) it starts the release's gateway
 * on a new data directory, binds phones of three rooms and three uids with the release's
 * `bind add` (one token rotated, one binding removed), then runs calls with its `sim door` and
 * `sim phone`: an unlock that opens the door during talk, one while ringing, a call nobody
 * answers, and unlocks the gateway refuses (`not_in_call`, `not_bound`) sent over a bare
 * WebSocket. Two doors are learned (M00010100 at 127.0.0.2, M00010200 at 127.0.0.3). Then it
 * stops the gateway (the store is closed, its WAL checkpointed), copies `gateway.kv` to
 * `--out` and writes beside it `tokens.json` (the tokens the phones were given) and
 * `expected.json` (what the release's own CLI printed: `bind list`, `calls`,
 * `calls --unlocks`; and the doors it stored).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { PRODUCT_PERMS } from "./deno_flags.ts";
import { ensureNetns } from "./netns.ts";
import { println } from "../src/print.ts";

await ensureNetns(import.meta.url, [
  "--allow-run",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
]);

const { values } = parseArgs({
  args: Deno.args,
  options: { release: { type: "string" }, out: { type: "string" } },
  strict: true,
});
if (!values.release) throw new Error("Cannot make the fixture: --release DIR (a 0.1.0 checkout)");
const release = resolve(values.release);
const out = resolve(
  values.out ?? new URL("../tests/fixtures/store-0.1.0", import.meta.url).pathname,
);
const releaseVersion = JSON.parse(await Deno.readTextFile(join(release, "deno.json"))).version;
const HTTP_PORT = 18080;
const MEDIA_PORT = 18303;
const URL_WS = `ws://127.0.0.1:${HTTP_PORT}/phone`;
const data = await Deno.makeTempDir({ prefix: "store-fixture-" });
const decoder = new TextDecoder();

const say = (line: string) => println(`fixture: ${line}`);

/** `deno run <product permissions> main.ts ARGS` of the release, to its end. */
async function release010(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PRODUCT_PERMS, "main.ts", ...args],
    cwd: release,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, out: decoder.decode(r.stdout), err: decoder.decode(r.stderr) };
}

/** A long-running command of the release, its stdout collected. */
function spawn(
  args: string[],
): { child: Deno.ChildProcess; text: () => string; done: Promise<number> } {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PRODUCT_PERMS, "main.ts", ...args],
    cwd: release,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const read = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) text += decoder.decode(chunk, { stream: true });
  };
  const reading = Promise.all([read(child.stdout), read(child.stderr)]);
  const done = (async () => {
    const { code } = await child.status;
    await reading;
    return code;
  })();
  return { child, text: () => text, done };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Cannot make the fixture: ${what} did not happen within ${ms} ms`);
}

interface Phone {
  uid: string;
  roomAddress: string;
  community: string;
  token: string;
}

async function bind(uid: string, roomAddress: string, community: string): Promise<Phone> {
  const r = await release010([
    "bind",
    "add",
    "--uid",
    uid,
    "--room",
    roomAddress,
    "--community",
    community,
    "--data",
    data,
  ]);
  if (r.code !== 0) throw new Error(`Cannot bind ${uid} to ${roomAddress}: ${r.err}`);
  const line = JSON.parse(r.out.trim());
  return { uid, roomAddress, community, token: line.token };
}

/** Starts the release's `sim phone` for one call and waits for its `login ok`. */
async function phone(p: Phone, script: string[]) {
  const sim = spawn([
    "sim",
    "phone",
    "--url",
    URL_WS,
    "--uid",
    p.uid,
    "--token",
    p.token,
    "--room",
    p.roomAddress,
    "--community",
    p.community,
    "--calls",
    "1",
    "--timeout",
    "40",
    "--video",
    "none",
    "--json",
    ...script,
  ]);
  await until(`login of ${p.uid}`, () => /"order":"login ok"/.test(sim.text()));
  return sim;
}

/** One call: the phones are online, the door calls, everyone finishes. */
async function call(
  door: string[],
  phones: { child: Deno.ChildProcess; text: () => string; done: Promise<number> }[],
) {
  const sim = spawn(["sim", "door", "--json", ...door]);
  const code = await sim.done;
  say(`door ${door.join(" ")} exited ${code}`);
  for (const p of phones) {
    const c = await Promise.race([
      p.done,
      new Promise<string>((r) => setTimeout(r, 15_000, "timeout")),
    ]);
    if (c === "timeout") {
      p.child.kill("SIGTERM");
      await p.done;
    }
  }
}

/** Logs in over a bare WebSocket and sends `unlock` orders outside any call. */
async function refusedUnlocks(p: Phone, orders: Record<string, string>[]): Promise<string[]> {
  const ws = new WebSocket(URL_WS);
  const got: string[] = [];
  ws.onmessage = (e) => got.push(String(e.data));
  await new Promise((r, j) => {
    ws.onopen = r;
    ws.onerror = j;
  });
  const identity = { roomAddress: p.roomAddress, uid: p.uid, community: p.community };
  ws.send(JSON.stringify({ order: "login", ...identity, token: p.token }));
  await until("bare login", () => got.some((m) => m.includes('"login ok"')));
  for (const o of orders) {
    const before = got.length;
    ws.send(JSON.stringify({ order: "unlock", ...identity, ...o }));
    await until(
      "unlock answer",
      () => got.length > before && got.slice(before).some((m) => m.includes('"error"')),
    );
  }
  ws.close();
  await new Promise((r) => (ws.onclose = r));
  return got;
}

// ---- the gateway ----
const gateway = spawn([
  "serve",
  "--data",
  data,
  "--http-host",
  "127.0.0.1",
  "--http-port",
  String(HTTP_PORT),
  "--media-port",
  String(MEDIA_PORT),
  "--lan-ip",
  "127.0.0.1",
  "--ring-timeout",
  "4",
  "--log-format",
  "text",
]);
await until("the gateway's /healthz", async () => {
  try {
    const res = await fetch(`http://127.0.0.1:${HTTP_PORT}/healthz`);
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
});
say(`gateway ${releaseVersion} up on ${data}`);

// ---- bindings: 3 rooms, 3 uids (one in two rooms), a rotated token, a removed binding ----
const R1 = "Y00010108090"; // door M00010100, room 0809
const R2 = "Y00010108100"; // door M00010100, room 0810
const R3 = "Y00010208050"; // door M00010200, room 0805
const revokedAnna = await bind("p-anna", R1, "花苑");
const wang = await bind("359608060142756", R1, "花苑");
const wang2 = await bind("359608060142756", R2, "花苑");
const anna = await bind("p-anna", R1, "花苑"); // rotates: revokedAnna's token stops working
const ben = await bind("p-ben", R3, "Garden Court");
await bind("p-gone", R2, "花苑");
const removed = await release010(["bind", "remove", "--uid", "p-gone", "--data", data]);
if (removed.code !== 0) throw new Error(`Cannot remove p-gone: ${removed.err}`);
const phones = [wang, wang2, anna, ben];

// ---- calls ----
// 1. Room 0809 from door M00010100: wang talks and opens the door, anna's phone only rings.
await call(["--address", "M00010100", "--ip", "127.0.0.2", "--room", "0809"], [
  await phone(wang, [
    "--answer",
    "talk",
    "--talk-after",
    "0.3",
    "--unlock-after",
    "0.3",
    "--hangup-after",
    "1",
  ]),
  await phone(anna, ["--answer", "ring"]),
]);
// 2. Room 0805 from door M00010200: ben opens while it rings; the door hangs up.
await call(
  ["--address", "M00010200", "--ip", "127.0.0.3", "--room", "0805", "--hangup-after", "2"],
  [
    await phone(ben, ["--answer", "callok", "--unlock-after", "0.5"]),
  ],
);
// 3. Room 0810 from door M00010100: nobody answers (LINEUSE after 3 s).
await call(["--address", "M00010100", "--ip", "127.0.0.2", "--room", "0810"], [
  await phone(wang2, ["--answer", "ring"]),
]);
// 4. Refused unlocks: no call (not_in_call), a room ben is not bound to (not_bound).
await refusedUnlocks(ben, [
  { doorAddress: "M00010200" },
  { doorAddress: "M00010100", roomAddress: R1 },
]);
await new Promise((r) => setTimeout(r, 500)); // audit writes are not awaited by the gateway

gateway.child.kill("SIGTERM");
const gwCode = await gateway.done;
if (gwCode !== 0) {
  throw new Error(`Cannot make the fixture: gateway exited ${gwCode}\n${gateway.text()}`);
}

// ---- what the release itself says it holds ----
const lines = (s: string) => s.split("\n").filter(Boolean).map((l) => JSON.parse(l));
const bindings = lines((await release010(["bind", "list", "--data", data])).out);
const calls = lines((await release010(["calls", "--limit", "100", "--data", data])).out);
const unlocks = lines(
  (await release010(["calls", "--unlocks", "--limit", "100", "--data", data])).out,
);
const kv = await Deno.openKv(join(data, "gateway.kv"));
const doors: { address: string; ip: string }[] = [];
const keys: string[] = [];
for await (const e of kv.list<unknown>({ prefix: [] })) {
  keys.push(String(e.key[0]));
  if (e.key[0] === "door") doors.push({ address: String(e.key[1]), ip: String(e.value) });
}
kv.close();

// ---- the fixture ----
const leftovers = [...Deno.readDirSync(data)].map((e) => e.name).filter((n) => n !== "gateway.kv");
if (leftovers.length) {
  throw new Error(`Cannot make the fixture: ${leftovers.join(", ")} beside gateway.kv`);
}
await Deno.remove(out, { recursive: true }).catch(() => {});
await Deno.mkdir(out, { recursive: true });
await Deno.copyFile(join(data, "gateway.kv"), join(out, "gateway.kv"));
const commit = decoder.decode(
  (await new Deno.Command("git", {
    args: ["-C", release, "rev-parse", "HEAD"],
    stdout: "piped",
    stderr: "null",
  }).output()).stdout,
).trim();
await Deno.writeTextFile(
  join(out, "tokens.json"),
  JSON.stringify(
    {
      note: "Tokens issued by the 0.1.0 CLI (bind add) when this store was made; test data only.",
      phones,
      revoked: [revokedAnna],
      removed: [{ uid: "p-gone", roomAddress: R2 }],
    },
    null,
    2,
  ) + "\n",
);
const counts: Record<string, number> = {};
for (const k of keys) counts[k] = (counts[k] ?? 0) + 1;
await Deno.writeTextFile(
  join(out, "expected.json"),
  JSON.stringify(
    {
      release: releaseVersion,
      commit,
      deno: Deno.version.deno,
      madeBy: "scripts/make_store_fixture.ts",
      entries: counts,
      doors,
      bindings,
      calls,
      unlocks,
    },
    null,
    2,
  ) + "\n",
);
await Deno.remove(data, { recursive: true });
const size = (await Deno.stat(join(out, "gateway.kv"))).size;
say(
  `wrote ${out}: gateway.kv ${size} bytes; ${bindings.length} bindings, ${calls.length} calls, ` +
    `${unlocks.length} unlock attempts, ${doors.length} doors (${JSON.stringify(counts)})`,
);
