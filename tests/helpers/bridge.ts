/**
 * A byte pipe between two listen/connect ends (TCP or Unix socket): how processes in different
 * network namespaces reach each other in the cluster tests (a Unix socket's path is seen from
 * every namespace, a loopback port only from its own). {@linkcode Bridge.cut} closes the listener
 * and every connection through it (a link cut); {@linkcode Bridge.heal} listens again.
 *
 * @module
 */

/** Where a bridge listens. */
export type BridgeListen =
  | { readonly transport: "tcp"; readonly hostname: string; readonly port: number }
  | { readonly transport: "unix"; readonly path: string };

/** A running bridge. */
export interface Bridge {
  /** The TCP port listened on (0 for a Unix socket). */
  readonly port: number;
  /** Closes the listener and every connection: nothing passes until {@linkcode heal}. */
  cut(): void;
  /** Listens again (same address). */
  heal(): void;
  /** True while cut. */
  readonly isCut: boolean;
  /** Cuts and waits for the pipes to end. */
  close(): Promise<void>;
}

function listen(at: BridgeListen): Deno.Listener {
  if (at.transport === "tcp") return Deno.listen({ hostname: at.hostname, port: at.port });
  try {
    Deno.removeSync(at.path);
  } catch {
    // not there
  }
  return Deno.listen({ transport: "unix", path: at.path });
}

/** Starts a bridge: every connection accepted at `at` is piped to a fresh `connect()`. */
export function startBridge(at: BridgeListen, connect: () => Promise<Deno.Conn>): Bridge {
  let listener: Deno.Listener | undefined;
  let port = 0;
  let cut = false;
  const conns = new Set<Deno.Conn>();
  const pipes = new Set<Promise<void>>();
  const close = (c: Deno.Conn) => {
    if (!conns.delete(c)) return;
    try {
      c.close();
    } catch {
      // closed already
    }
  };
  const serve = async (l: Deno.Listener) => {
    for await (const a of l) {
      if (cut) {
        a.close();
        continue;
      }
      conns.add(a);
      const p = (async () => {
        let b: Deno.Conn | undefined;
        try {
          b = await connect();
          conns.add(b);
          if (cut) return;
          await Promise.race([
            a.readable.pipeTo(b.writable, { preventClose: true }),
            b.readable.pipeTo(a.writable, { preventClose: true }),
          ]);
        } catch {
          // either side went away
        } finally {
          close(a);
          if (b) close(b);
        }
      })();
      pipes.add(p);
      p.finally(() => pipes.delete(p));
    }
  };
  let loop: Promise<void> = Promise.resolve();
  const open = () => {
    listener = listen(at);
    if (listener.addr.transport === "tcp") port = listener.addr.port;
    const l = listener;
    loop = serve(l).catch(() => {});
  };
  open();
  const doCut = () => {
    cut = true;
    try {
      listener?.close();
    } catch {
      // closed already
    }
    listener = undefined;
    for (const c of [...conns]) close(c);
  };
  return {
    get port() {
      return port;
    },
    get isCut() {
      return cut;
    },
    cut: doCut,
    heal: () => {
      if (!cut) return;
      cut = false;
      open();
    },
    close: async () => {
      doCut();
      await loop;
      await Promise.allSettled([...pipes]);
    },
  };
}
