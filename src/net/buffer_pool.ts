/**
 * Receive buffers shared by every pooled UDP port, reference-counted: what keeps the media path
 * free of per-packet allocation (`receive()` without a buffer allocates 64 KiB per datagram).
 *
 * @module
 */

/** Largest datagram a port receives whole; longer ones are truncated (and fail to decode). */
export const RECEIVE_BUFFER_SIZE = 2048;

/** Free buffers kept for reuse at most; more are left to the garbage collector. */
const MAX_FREE = 1024;

/**
 * A pool of {@linkcode RECEIVE_BUFFER_SIZE}-byte buffers with a reference count each: one for
 * the receiver, one per send in flight (the runtime reads the bytes after `send` returns). A
 * buffer goes back to the pool when its count reaches zero.
 */
export class BufferPool {
  #free: Entry[] = [];
  /**
   * Every buffer the pool knows, with its count; entries stay while the buffer is free, so that
   * a lease or release allocates nothing and leaves the map unchanged (the media path runs one
   * of each per datagram, and garbage there is what sets the pace of the GC's scavenges).
   */
  #refs = new Map<ArrayBufferLike, Entry>();
  #leased = 0;

  /** A buffer with one reference (the receiver's). */
  lease(): Uint8Array {
    let e = this.#free.pop();
    if (e === undefined) {
      e = { buf: new Uint8Array(RECEIVE_BUFFER_SIZE), n: 0 };
      this.#refs.set(e.buf.buffer, e);
    }
    e.n = 1;
    this.#leased++;
    return e.buf;
  }

  /** Adds a reference if `data` lies in a leased pooled buffer; true when it does. */
  retain(data: Uint8Array): boolean {
    const e = this.#refs.get(data.buffer);
    if (e === undefined || e.n === 0) return false;
    e.n++;
    return true;
  }

  /** Drops a reference; the buffer is free again at zero. */
  release(data: Uint8Array): void {
    const e = this.#refs.get(data.buffer);
    if (e === undefined || e.n === 0 || --e.n > 0) return;
    this.#leased--;
    if (this.#free.length < MAX_FREE) this.#free.push(e);
    else this.#refs.delete(e.buf.buffer);
  }

  /** Buffers leased and not yet free (leak checks). */
  get leased(): number {
    return this.#leased;
  }
}

/** A pooled buffer and its reference count (0: free). */
interface Entry {
  readonly buf: Uint8Array;
  n: number;
}

/** The process-wide pool of receive buffers. */
export const receivePool: BufferPool = new BufferPool();
