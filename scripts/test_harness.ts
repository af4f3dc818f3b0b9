/**
 * A minimal `Deno.test` runner for the aarch64 run under qemu-user: every test file in one isolate
 * of `deno run`, in `deno test`'s order, with `deno test`'s closing line.
 *
 * Why not `deno test` there: the `deno test` runtime of Deno 2.9.6 keeps a 10-million-slot holey
 * array alive (its bench module's measurement buffer). Native V8 marks it in ~20 ms; under
 * qemu-user each full GC then stalls the event loop 4–17 s, which freezes the real-time
 * end-to-end tests mid-call (a door "lost" after 6 s of silence). Under `deno run` a full GC
 * takes ~0.2 s there. The x86_64 run keeps `deno test`, sanitizers and per-file isolation.
 *
 * Supported: `Deno.test(name, fn)`, `(name, options, fn)`, `(options)`, `(options, fn)`, `(fn)`;
 * `ignore`; `t.step`. Sanitizer and `permissions` options are ignored (the x86_64 run has them).
 *
 * Usage: `deno run <permissions> scripts/test_harness.ts [--filter TEXT]… [FILE|DIR…]`
 * (default `src tests`). With several `--filter`s a test runs when its name contains any of them
 * (CI runs the tests that failed under emulation once more by their names). Exits 1 when a test
 * failed.
 *
 * @module
 */

import { parseArgs } from "node:util";

type TestFn = (t: Context) => void | Promise<void>;
interface Definition {
  name: string;
  fn: TestFn;
  ignore?: boolean;
}
interface Registered extends Definition {
  origin: string;
}
interface Context {
  readonly name: string;
  readonly origin: string;
  step(nameOrDef: string | Definition | TestFn, fn?: TestFn): Promise<boolean>;
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { filter: { type: "string", multiple: true } },
  allowPositionals: true,
});

/** Every `*_test.ts` under `roots`, sorted like `deno test` sorts them. */
async function findTests(roots: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory && !e.name.startsWith(".") && e.name !== "node_modules") await walk(path);
      else if (e.isFile && e.name.endsWith("_test.ts")) out.push(path);
    }
  };
  for (const root of roots) {
    if (root.endsWith(".ts")) out.push(root);
    else await walk(root.replace(/\/$/, ""));
  }
  return out.map((p) => (p.startsWith("./") || p.startsWith("/") ? p : `./${p}`)).sort();
}

function definition(a: unknown, b: unknown, c: unknown): Definition {
  if (typeof a === "function") return { name: a.name, fn: a as TestFn };
  if (typeof a === "string") {
    return typeof b === "function"
      ? { name: a, fn: b as TestFn }
      : { ...(b as Partial<Definition>), name: a, fn: c as TestFn };
  }
  const def = a as Definition;
  return typeof b === "function" ? { ...def, fn: b as TestFn } : def;
}

const registered: Registered[] = [];
let loading = "";
Object.defineProperty(Deno, "test", {
  configurable: true,
  writable: true,
  value: (a: unknown, b?: unknown, c?: unknown) => {
    registered.push({ ...definition(a, b, c), origin: loading });
  },
});

function duration(ms: number): string {
  return ms < 1000
    ? `${Math.round(ms)}ms`
    : ms < 60_000
    ? `${Math.round(ms / 1000)}s`
    : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

function context(name: string, origin: string, failures: string[]): Context {
  return {
    name,
    origin,
    async step(nameOrDef, fn) {
      const def = definition(nameOrDef, fn, undefined);
      if (def.ignore) return true;
      try {
        await def.fn(context(def.name, origin, failures));
        return true;
      } catch (e) {
        failures.push(`step "${def.name}": ${e instanceof Error ? e.stack : String(e)}`);
        return false;
      }
    },
  };
}

// An error nobody caught fails the test that is running, as under `deno test`.
let uncaught: unknown[] = [];
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  uncaught.push(e.reason);
});
globalThis.addEventListener("error", (e) => {
  e.preventDefault();
  uncaught.push(e.error);
});

const started = performance.now();
const files = await findTests(positionals.length ? positionals : ["src", "tests"]);
for (const file of files) {
  loading = file;
  await import(new URL(file, `file://${Deno.cwd()}/`).href);
}

/** One test's bound (`INTERCOM_TEST_TIMEOUT_S`, default 300 s): the slowest emulated one takes ~40 s. */
const TEST_TIMEOUT_MS = (Number(envOr("INTERCOM_TEST_TIMEOUT_S")) || 300) * 1000;

function envOr(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // run without --allow-env
  }
}

let passed = 0;
let failed = 0;
let ignored = 0;
let filtered = 0;
const filters = values.filter ?? [];
const errors: string[] = [];
const print = (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s));
for (const file of files) {
  const tests = registered.filter((t) => t.origin === file);
  const run = tests.filter((t) => !filters.length || filters.some((f) => t.name.includes(f)));
  filtered += tests.length - run.length;
  if (!run.length) continue;
  print(`running ${run.length} test${run.length === 1 ? "" : "s"} from ${file}\n`);
  for (const t of run) {
    if (t.ignore) {
      ignored++;
      print(`${t.name} ... ignored (0ms)\n`);
      continue;
    }
    print(`${t.name} ...`);
    const failures: string[] = [];
    uncaught = [];
    const t0 = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      // A test that hangs fails after TEST_TIMEOUT_MS instead of holding the run (and CI) up.
      await Promise.race([
        t.fn(context(t.name, file, failures)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(`Cannot finish the test: still running after ${TEST_TIMEOUT_MS} ms`),
              ),
            TEST_TIMEOUT_MS,
          );
        }),
      ]);
    } catch (e) {
      failures.push(e instanceof Error ? e.stack ?? String(e) : String(e));
    } finally {
      clearTimeout(timer);
    }
    // Let a rejection from the test's last turn surface before judging it.
    await new Promise((r) => setTimeout(r, 0));
    for (const u of uncaught) {
      failures.push(`uncaught: ${u instanceof Error ? u.stack ?? String(u) : String(u)}`);
    }
    const took = duration(performance.now() - t0);
    if (failures.length) {
      failed++;
      errors.push(`${t.name} => ${file}\nerror: ${failures.join("\n")}`);
      print(` FAILED (${took})\n`);
    } else {
      passed++;
      print(` ok (${took})\n`);
    }
  }
}

if (errors.length) print(`\n ERRORS \n\n${errors.join("\n\n")}\n`);
const tail = [
  `${passed} passed`,
  `${failed} failed`,
  ...(ignored ? [`${ignored} ignored`] : []),
  ...(filtered ? [`${filtered} filtered out`] : []),
];
print(
  `\n${failed ? "FAILED" : "ok"} | ${tail.join(" | ")} (${
    duration(performance.now() - started)
  })\n`,
);
Deno.exit(failed ? 1 : 0);
