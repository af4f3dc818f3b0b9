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
  #free: Uint8Array[] = [];
  #refs = new Map<ArrayBufferLike, { buf: Uint8Array; n: number }>();

  /** A buffer with one reference (the receiver's). */
  lease(): Uint8Array {
    const buf = this.#free.pop() ?? new Uint8Array(RECEIVE_BUFFER_SIZE);
    this.#refs.set(buf.buffer, { buf, n: 1 });
    return buf;
  }

  /** Adds a reference if `data` lies in a pooled buffer; true when it does. */
  retain(data: Uint8Array): boolean {
    const r = this.#refs.get(data.buffer);
    if (!r) return false;
    r.n++;
    return true;
  }

  /** Drops a reference; the buffer is free again at zero. */
  release(data: Uint8Array): void {
    const r = this.#refs.get(data.buffer);
    if (!r || --r.n > 0) return;
    this.#refs.delete(data.buffer);
    if (this.#free.length < MAX_FREE) this.#free.push(r.buf);
  }

  /** Buffers leased and not yet free (leak checks). */
  get leased(): number {
    return this.#refs.size;
  }
}

/** The process-wide pool of receive buffers. */
export const receivePool: BufferPool = new BufferPool();
