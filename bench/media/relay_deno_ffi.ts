/**
 * relay_deno_ffi.ts - relay core that calls libc directly through `Deno.dlopen`
 * (no custom shared object): poll() as a non-blocking FFI call (runs on a
 * runtime helper thread, returns a Promise), then recvmmsg()/sendmmsg() as
 * synchronous FFI calls that move up to BATCH datagrams per syscall.  Routing
 * stays in JavaScript.  Linux only; struct layouts are the LP64 ones shared by
 * x86_64 and aarch64 glibc.  Needs `--allow-ffi`.
 *
 * @module
 */

const BATCH = 64;
const BUF = 2048;
const MMSG = 64; // sizeof(struct mmsghdr) on LP64
const AF_INET = 2;
const SOCK_DGRAM = 2;
const MSG_DONTWAIT = 0x40;
const POLLIN = 1;

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
});

const ptr = (b: Uint8Array): bigint => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));

function sockaddr(port: number): Uint8Array {
  const sa = new Uint8Array(16);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_INET, true);
  dv.setUint16(2, port, false);
  sa.set([127, 0, 0, 1], 4);
  return sa;
}

function bindUdp(port: number): number {
  const fd = libc.symbols.socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || libc.symbols.bind(fd, sockaddr(port), 16) !== 0) {
    throw new Error(`bind ${port} failed`);
  }
  return fd;
}

/** One direction's batch state: BATCH receive slots and a send vector over them. */
class Batch {
  data = new Uint8Array(BATCH * BUF);
  names = new Uint8Array(BATCH * 16); // source sockaddr_in per slot
  dsts = new Uint8Array(BATCH * 16); // destination sockaddr_in per send
  iov = new Uint8Array(BATCH * 16);
  outIov = new Uint8Array(BATCH * 16);
  rx = new Uint8Array(BATCH * MMSG);
  tx = new Uint8Array(BATCH * MMSG);
  rxv = new DataView(this.rx.buffer);
  txv = new DataView(this.tx.buffer);
  outIovV = new DataView(this.outIov.buffer);
  slotPtr: bigint[] = [];
  constructor() {
    const iovV = new DataView(this.iov.buffer);
    const d = ptr(this.data), n = ptr(this.names), io = ptr(this.iov);
    const ds = ptr(this.dsts), oio = ptr(this.outIov);
    for (let k = 0; k < BATCH; k++) {
      this.slotPtr.push(d + BigInt(k * BUF));
      iovV.setBigUint64(k * 16, d + BigInt(k * BUF), true);
      iovV.setBigUint64(k * 16 + 8, BigInt(BUF), true);
      this.outIovV.setBigUint64(k * 16, d + BigInt(k * BUF), true);
      const m = k * MMSG;
      this.rxv.setBigUint64(m, n + BigInt(k * 16), true); // msg_name
      this.rxv.setBigUint64(m + 16, io + BigInt(k * 16), true); // msg_iov
      this.rxv.setBigUint64(m + 24, 1n, true); // msg_iovlen
      this.txv.setBigUint64(m + 16, oio + BigInt(k * 16), true);
      this.txv.setBigUint64(m + 24, 1n, true);
      this.txv.setUint32(m + 8, 16, true); // msg_namelen (set per send below)
    }
    // tx msg_name pointers are filled per send slot
    for (let k = 0; k < BATCH; k++) this.txv.setBigUint64(k * MMSG, ds + BigInt(k * 16), true);
  }
}

/**
 * Relays until the process exits. `route` tables map source port to destination
 * port, exactly like the other relays in this directory.
 */
export function ffiRelay(
  pa: number,
  pb: number,
  doorBase: number,
  phoneBase: number,
  calls: number,
): void {
  const fa = bindUdp(pa);
  const fb = bindUdp(pb);
  const aToB = new Map<number, Uint8Array>();
  const bToA = new Map<number, Uint8Array>();
  for (let i = 0; i < calls; i++) {
    aToB.set(doorBase + i, sockaddr(phoneBase + i));
    bToA.set(phoneBase + i, sockaddr(doorBase + i));
  }
  const pfd = new Uint8Array(16);
  const pv = new DataView(pfd.buffer);
  pv.setInt32(0, fa, true);
  pv.setInt16(4, POLLIN, true);
  pv.setInt32(8, fb, true);
  pv.setInt16(12, POLLIN, true);
  const ba = new Batch(), bb = new Batch();

  const drain = (inFd: number, outFd: number, b: Batch, table: Map<number, Uint8Array>) => {
    for (;;) {
      for (let k = 0; k < BATCH; k++) b.rxv.setUint32(k * MMSG + 8, 16, true); // msg_namelen
      const n = libc.symbols.recvmmsg(inFd, b.rx, BATCH, MSG_DONTWAIT, null);
      if (n <= 0) return;
      let out = 0;
      for (let k = 0; k < n; k++) {
        const port = (b.names[k * 16 + 2]! << 8) | b.names[k * 16 + 3]!;
        const dst = table.get(port);
        if (dst === undefined) continue;
        b.dsts.set(dst, out * 16);
        const len = b.rxv.getUint32(k * MMSG + 56, true); // msg_len
        b.outIovV.setBigUint64(out * 16, b.slotPtr[k]!, true);
        b.outIovV.setUint32(out * 16 + 8, len, true); // iov_len (high word stays 0)
        out++;
      }
      let sent = 0;
      while (sent < out) {
        const r = libc.symbols.sendmmsg(outFd, b.tx.subarray(sent * MMSG), out - sent, 0);
        if (r <= 0) break; // drop the rest of the batch on error
        sent += r;
      }
      if (n < BATCH) return;
    }
  };

  (async () => {
    for (;;) {
      await libc.symbols.poll(pfd, 2n, 1000);
      if (pv.getInt16(6, true) & POLLIN) drain(fa, fb, ba, aToB);
      if (pv.getInt16(14, true) & POLLIN) drain(fb, fa, bb, bToA);
    }
  })();
}
