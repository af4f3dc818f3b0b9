import { assert, assertEquals } from "../../tests/helpers/assert.ts";

async function assertRejects(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => Error,
  includes: string,
): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof type, `${e} is not a ${type.name}`);
    assert(e.message.includes(includes), `${JSON.stringify(e.message)} lacks ${includes}`);
    return;
  }
  throw new Error("expected a rejection");
}
import {
  AdminStore,
  hashPassword,
  newPassword,
  passwordMatches,
  passwordProblem,
  PBKDF2_ITERATIONS,
} from "./admins.ts";

async function withKv(fn: (kv: Deno.Kv) => Promise<void>): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  try {
    await fn(kv);
  } finally {
    kv.close();
  }
}

// The cost of one hash (75 ms on the x86_64 CI machine) is a figure, not a test: a timed test
// fails on a loaded or emulated machine (4 s under qemu-user).
Deno.test("admins: the real PBKDF2 cost is at least 600,000 iterations, and it is what a hash uses", async () => {
  assert(PBKDF2_ITERATIONS >= 600_000);
  const h = await hashPassword("correct horse battery");
  assert(await passwordMatches("correct horse battery", h));
  assertEquals(h.iterations, PBKDF2_ITERATIONS);
  assert(!(await passwordMatches("correct horse batterY", h)));
});

Deno.test("admins: generated passwords are long, unambiguous and distinct", () => {
  const a = newPassword();
  assert(/^[a-hjkmnp-z2-9]{5}(-[a-hjkmnp-z2-9]{5}){3}$/.test(a), a);
  assert(a !== newPassword());
  assertEquals(passwordProblem(a), undefined);
  assert(passwordProblem("short") !== undefined);
});

Deno.test("admins: add, verify, list, reset (sessions' passwordSetAt moves), remove", async () => {
  await withKv(async (kv) => {
    let t = Date.UTC(2026, 0, 1);
    const store = new AdminStore(kv, { iterations: 1000, now: () => new Date(t) });
    const added = await store.add("manager");
    assert(added.generated && added.account.mustChange);
    assert(await store.verify("manager", added.password));
    assertEquals(await store.verify("manager", "wrong password"), undefined);
    assertEquals(await store.verify("nobody", added.password), undefined);
    await assertRejects(() => store.add("manager", "another password"), TypeError, "exists");
    await assertRejects(() => store.add("bad name", "another password"), TypeError, "name");
    await assertRejects(() => store.add("x", "short"), TypeError, "shorter");
    const chosen = await store.add("installer", "a long chosen password");
    assert(!chosen.generated && !chosen.account.mustChange);
    assertEquals((await store.list()).map((a) => a.name), ["installer", "manager"]);

    t += 1000;
    const reset = await store.setPassword("manager", "my own new password");
    assertEquals(reset.account.mustChange, false);
    assert(reset.account.passwordSetAt > added.account.passwordSetAt);
    assertEquals(await store.verify("manager", added.password), undefined);
    assert(await store.verify("manager", "my own new password"));
    await assertRejects(() => store.setPassword("ghost"), TypeError, "no such admin");

    assert(await store.remove("manager"));
    assert(!(await store.remove("manager")));
    assertEquals(await store.get("manager"), undefined);
  });
});

Deno.test("admins: the audit pages newest first and keeps only the newest N", async () => {
  await withKv(async (kv) => {
    let t = Date.UTC(2026, 0, 1);
    const store = new AdminStore(kv, { iterations: 1000, now: () => new Date(t++), maxAudit: 150 });
    for (let i = 0; i < 230; i++) {
      await store.audit({
        admin: "manager",
        action: "binding_add",
        target: `u${i}`,
        ip: "10.0.0.9",
      });
    }
    // Pruned at the 100th and 200th write: at most maxAudit + AUDIT_PRUNE_EVERY remain.
    await store.pruneAudit();
    const first = await store.auditPage({ limit: 100 });
    assertEquals(first.entries.length, 100);
    assertEquals(first.entries[0]!.target, "u229");
    const second = await store.auditPage({ limit: 100, before: first.next! });
    assertEquals(second.entries.length, 50);
    assertEquals(second.entries.at(-1)!.target, "u80");
    assertEquals(second.next, undefined);
  });
});
