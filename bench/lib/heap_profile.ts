/**
 * Where a process allocates: V8's sampling heap profiler over the inspector protocol, garbage
 * included (objects a scavenge or a mark-compact collected before the profile ended are counted
 * too), summed by allocating function. For benches that start the process with
 * `--inspect=HOST:PORT`.
 *
 * @module
 */

/** Bytes sampled at one function (its own allocations, not its callees'). */
export interface AllocationSite {
  readonly site: string;
  readonly bytes: number;
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** A sampling session on one inspector target. */
export class HeapSampler {
  #ws: WebSocket;
  #next = 1;
  #waiting = new Map<number, (result: unknown) => void>();
  #chunks: string[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data)) as {
        id?: number;
        result?: unknown;
        error?: unknown;
        method?: string;
        params?: { chunk?: string };
      };
      if (m.method === "HeapProfiler.addHeapSnapshotChunk") this.#chunks.push(m.params!.chunk!);
      if (m.id === undefined) return;
      this.#waiting.get(m.id)?.(m.error ? { error: m.error } : m.result);
      this.#waiting.delete(m.id);
    };
  }

  /** Connects to the first target of the inspector at `hostPort` (e.g. `127.0.0.1:9229`). */
  static async connect(hostPort: string, timeoutMs = 10_000): Promise<HeapSampler> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const list = await (await fetch(`http://${hostPort}/json/list`)).json() as {
          webSocketDebuggerUrl: string;
        }[];
        const url = list[0]?.webSocketDebuggerUrl;
        if (!url) throw new Error("no target");
        const ws = new WebSocket(url);
        await new Promise((ok, fail) => {
          ws.onopen = ok;
          ws.onerror = () => fail(new Error(`Cannot open the inspector at ${url}`));
        });
        return new HeapSampler(ws);
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`Cannot reach the inspector: ${e}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  #call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#next++;
    const p = new Promise<unknown>((r) => this.#waiting.set(id, r));
    this.#ws.send(JSON.stringify({ id, method, params }));
    return p;
  }

  /** Starts sampling every `intervalBytes` allocated (on average). */
  async start(intervalBytes = 1024): Promise<void> {
    await this.#call("HeapProfiler.enable");
    await this.#call("HeapProfiler.startSampling", {
      samplingInterval: intervalBytes,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }

  /** Stops sampling: the bytes sampled per allocating function, largest first. */
  async stop(): Promise<{ total: number; sites: AllocationSite[] }> {
    const r = await this.#call("HeapProfiler.stopSampling") as { profile?: { head: ProfileNode } };
    if (!r.profile) throw new Error(`Cannot stop the heap profiler: ${JSON.stringify(r)}`);
    const bySite = new Map<string, number>();
    let total = 0;
    const walk = (n: ProfileNode, caller: string) => {
      const f = n.callFrame;
      const file = f.url.replace(/^.*\/(src|bench|ext):?/, "$1/").replace(/^file:\/\/\//, "");
      const here = `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
      if (n.selfSize) {
        // Runtime-internal frames say little alone: name their caller too.
        const site = f.url ? here : `${here} ← ${caller}`;
        bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize);
        total += n.selfSize;
      }
      for (const c of n.children) walk(c, f.url ? here : caller);
    };
    walk(r.profile.head, "");
    const sites = [...bySite].map(([site, bytes]) => ({ site, bytes })).sort((a, b) =>
      b.bytes - a.bytes
    );
    return { total, sites };
  }

  /** A full garbage collection in the gateway. */
  async collectGarbage(): Promise<void> {
    await this.#call("HeapProfiler.collectGarbage");
  }

  /** The gateway's JS heap: bytes used and the heap's size. */
  async heapUsage(): Promise<{ used: number; total: number }> {
    const r = await this.#call("Runtime.getHeapUsage") as { usedSize: number; totalSize: number };
    return { used: r.usedSize, total: r.totalSize };
  }

  /**
   * A heap snapshot summed by object kind: `type:name` (constructor, or the kind of string, array,
   * closure, code) → count and self bytes.
   */
  async snapshotSummary(): Promise<Map<string, { count: number; bytes: number }>> {
    this.#chunks = [];
    await this.#call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    const snap = JSON.parse(this.#chunks.join("")) as {
      snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
      nodes: number[];
      strings: string[];
    };
    this.#chunks = [];
    const f = snap.snapshot.meta.node_fields;
    const width = f.length;
    const [ti, ni, si] = ["type", "name", "self_size"].map((k) => f.indexOf(k)) as [
      number,
      number,
      number,
    ];
    const types = snap.snapshot.meta.node_types[0];
    const out = new Map<string, { count: number; bytes: number }>();
    for (let i = 0; i < snap.nodes.length; i += width) {
      const type = types[snap.nodes[i + ti]!]!;
      const rawName = snap.strings[snap.nodes[i + ni]!]!;
      // Strings and numbers by kind, not by value; objects by constructor.
      const name =
        type === "string" || type === "concatenated string" || type === "sliced string" ||
          type === "number"
          ? ""
          : rawName.length > 60
          ? rawName.slice(0, 60)
          : rawName;
      const key = `${type}:${name}`;
      const e = out.get(key) ?? { count: 0, bytes: 0 };
      e.count++;
      e.bytes += snap.nodes[i + si]!;
      out.set(key, e);
    }
    return out;
  }

  /** Closes the inspector connection. */
  close(): void {
    this.#ws.close();
  }
}
