/**
 * The CLI's plain output lines (the logger handles everything else). Kept apart from `main.ts`
 * so that modules `main.ts` loads can use them without importing it back.
 *
 * @module
 */

/** Writes a line to stdout. */
export function println(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

/** Writes a line to stderr. */
export function eprintln(line: string): void {
  // deno-lint-ignore no-console
  console.error(line);
}
