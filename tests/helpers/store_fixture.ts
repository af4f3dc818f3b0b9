/**
 * The 0.1.0 store fixture (`tests/fixtures/store-0.1.0/`) for the upgrade and rollback tests: a
 * fresh copy of it to run on, what the 0.1.0 CLI printed for it, the tokens its phones hold, a
 * clock at the fixture's time (the gateway prunes records older than 90 days at start), and the
 * 0.1.0 source itself (from git) to run the released code on a restored store.
 *
 * @module
 */

import { join } from "node:path";
import { type Clock, systemClock } from "../../src/clock.ts";
import { denoCommand } from "../../scripts/deno_flags.ts";
import { RUN_FLAGS } from "./process.ts";

/** The fixture directory. */
export const FIXTURE_DIR: string = new URL("../fixtures/store-0.1.0/", import.meta.url).pathname;
/** The repository root. */
const REPO_ROOT = new URL("../../", import.meta.url).pathname;
/** The last commit of the released 0.1.0. */
export const RELEASE_010_COMMIT = "8cd426a";

/** A phone of the fixture, as bound by 0.1.0. */
export interface FixturePhone {
  readonly uid: string;
  readonly roomAddress: string;
  readonly community: string;
  readonly token: string;
}

/** `tokens.json`. */
export interface FixtureTokens {
  readonly phones: readonly FixturePhone[];
  readonly revoked: readonly FixturePhone[];
  readonly removed: readonly { uid: string; roomAddress: string }[];
}

/** `expected.json`: what the 0.1.0 CLI printed, and the doors it stored. */
export interface FixtureExpected {
  readonly release: string;
  readonly entries: Readonly<Record<string, number>>;
  readonly doors: readonly { address: string; ip: string }[];
  readonly bindings: readonly Record<string, unknown>[];
  readonly calls: readonly Record<string, unknown>[];
  readonly unlocks: readonly Record<string, unknown>[];
}

/** The fixture's tokens. */
export const tokens: FixtureTokens = JSON.parse(
  Deno.readTextFileSync(join(FIXTURE_DIR, "tokens.json")),
);
/** What the fixture holds. */
export const expected: FixtureExpected = JSON.parse(
  Deno.readTextFileSync(join(FIXTURE_DIR, "expected.json")),
);

/** A new data directory holding a copy of the fixture's `gateway.kv`. */
export async function copyFixture(): Promise<string> {
  const data = await Deno.makeTempDir({ prefix: "gw-store010-" });
  await Deno.copyFile(join(FIXTURE_DIR, "gateway.kv"), join(data, "gateway.kv"));
  return data;
}

/** The newest time in the fixture's records (epoch ms). */
export function fixtureTime(): number {
  const times = [
    ...expected.calls.map((c) => c.endedAt ?? c.ringAt),
    ...expected.unlocks.map((u) => u.at),
  ]
    .map((t) => Date.parse(String(t)));
  return Math.max(...times);
}

/**
 * The system clock, with wall time moved back to a day after the fixture was made when it is
 * older than that: the gateway keeps records 90 days, and the fixture ages.
 */
export function fixtureClock(): Clock {
  const offset = Math.max(0, Date.now() - (fixtureTime() + 86_400_000));
  return { ...systemClock, wallNow: () => Date.now() - offset };
}

/** True when git and the 0.1.0 commit are there (not in a shallow clone). */
export const hasRelease010: boolean = (() => {
  try {
    return new Deno.Command("git", {
      args: ["-C", REPO_ROOT, "cat-file", "-e", `${RELEASE_010_COMMIT}^{commit}`],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
})();

/** The 0.1.0 source tree, extracted from git into a new directory (the caller removes it). */
export async function extractRelease010(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "gw010-" });
  const tar = join(dir, "src.tar");
  const archive = await new Deno.Command("git", {
    args: ["-C", REPO_ROOT, "archive", "--format=tar", "-o", tar, RELEASE_010_COMMIT],
    stderr: "piped",
  }).output();
  if (!archive.success) {
    throw new Error(`Cannot extract 0.1.0: ${new TextDecoder().decode(archive.stderr)}`);
  }
  const untar = await new Deno.Command("tar", { args: ["-xf", tar, "-C", dir], stderr: "piped" })
    .output();
  if (!untar.success) {
    throw new Error(`Cannot extract 0.1.0: ${new TextDecoder().decode(untar.stderr)}`);
  }
  await Deno.remove(tar);
  return dir;
}

/** Runs the 0.1.0 `main.ts ARGS` from its tree to its end, with the product's permissions. */
export async function run010(
  tree: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const [cmd, ...pre] = denoCommand();
  const r = await new Deno.Command(cmd!, {
    args: [...pre, "run", ...RUN_FLAGS, "main.ts", ...args],
    cwd: tree,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

/** Asserts-free check: every field of `want` is in `got` with an equal value (JSON). */
export function includes(got: Record<string, unknown>, want: Record<string, unknown>): boolean {
  return Object.entries(want).every(([k, v]) => JSON.stringify(got[k]) === JSON.stringify(v));
}

/** JSON lines → objects. */
export function jsonLines(text: string | readonly string[]): Record<string, unknown>[] {
  const lines = typeof text === "string" ? text.split("\n") : text;
  return lines.filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}
