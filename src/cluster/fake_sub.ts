/**
 * A NATS subscription for the cluster's unit tests: messages are delivered by the test, and a
 * `respond` resolves the promise `deliver` returned.
 *
 * @module
 */

/** A subscription whose messages the test delivers. */
export class FakeSub {
  #queue: unknown[] = [];
  #wake: (() => void) | undefined;
  #done = false;
  /** Queues a message with `value` as its JSON; resolves with what the handler responds. */
  deliver(value: unknown): Promise<unknown> {
    return new Promise((resolve) => {
      this.#queue.push({ json: () => value, respond: (r: string) => resolve(JSON.parse(r)) });
      this.#wake?.();
    });
  }
  /** Ends the iteration. */
  unsubscribe(): void {
    this.#done = true;
    this.#wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<unknown> {
    while (!this.#done) {
      const m = this.#queue.shift();
      if (m !== undefined) yield m;
      else await new Promise<void>((r) => (this.#wake = r));
    }
  }
}
