/**
 * Assertions for tests: `node:assert/strict` re-exported under the names our tests use
 * (`@std/assert` cannot be fetched here).
 *
 * @module
 */

import assertModule from "node:assert/strict";

/** Asserts a truthy value. */
export function assert(value: unknown, message?: string): asserts value {
  assertModule.ok(value, message);
}

/** Deep strict equality. */
export function assertEquals<T>(
  actual: unknown,
  expected: T,
  message?: string,
): asserts actual is T {
  assertModule.deepStrictEqual(actual, expected, message);
}

/** Asserts that `fn` throws (optionally an instance of `type`). */
export function assertThrows(fn: () => unknown, type?: new (...args: never[]) => Error): void {
  if (type) assertModule.throws(fn, type);
  else assertModule.throws(fn);
}

/** Asserts that a promise rejects. */
export async function assertRejects(fn: () => Promise<unknown>): Promise<void> {
  await assertModule.rejects(fn);
}
