/**
 * The community test topology: a 3-node JetStream hub cluster (domain `hub`) on the test
 * namespace's loopback, and gateways each in its own nested private network namespace
 * (`unshare -rn`, loopback up with multicast routed on it) running `cluster_node.ts`: its own
 * leaf node (JetStream domain = gateway id), its own UDP 8302 and multicast. A leaf reaches the
 * hub through a Unix-socket bridge kept by this process ({@linkcode GatewayNode.link}: `cut()`
 * is a link cut, `heal()` heals it); the hub advertises the bridge's namespace end
 * (`leafnodes.advertise`) so that a leaf never learns a hub address it cannot reach.
 *
 * Everything started here is recorded by PID and killed in {@linkcode Community.close}, which
 * also bounds every wait.
 *
 * @module
 */

import { CACHED_ONLY_FLAGS, denoCommand, TEST_PERMS } from "../../scripts/deno_flags.ts";
import { NETNS_SETUP, shellQuote } from "../../scripts/netns.ts";
import { type PhoneScript, PhoneSim } from "../../src/sim/phone_sim.ts";
import { type Bridge, startBridge } from "./bridge.ts";
import { login, PASSWORD } from "./admin_console.ts";
import { TIME_SCALE } from "./scale.ts";

/** Hub node `i` (0-2): client, route and leaf ports on 127.0.0.1. */
export const HUB_PORTS = [0, 1, 2].map((i) => ({
  client: 14222 + i,
  route: 16222 + i,
  leaf: 17422 + i,
}));

/** The hub cluster. */
export interface Hub {
  readonly dir: string;
  /** `nats://127.0.0.1:14222,…` */
  readonly servers: string[];
  /** Stops every node (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Starts the nodes again on their stored data. */
  start(): Promise<void>;
}

/** One gateway box of the community. */
export interface GatewayNode {
  readonly id: string;
  /** The leaf's road to the hub: `cut()` = the office link is down. */
  readonly link: Bridge;
  /** `http://127.0.0.1:PORT`: the gateway's HTTP port, from the test namespace. */
  readonly httpBase: string;
  /** `ws://127.0.0.1:PORT/phone` */
  readonly url: string;
  /** Calls the node's control socket. */
  ctl<T = Record<string, unknown>>(path: string, body?: unknown): Promise<T>;
  /** The gateway's log so far. */
  log(): Promise<string>;
  /** Stops the node (gateway, leaf) and kills what is left by PID. */
  close(): Promise<void>;
}

/** The whole topology. */
export interface Community {
  readonly dir: string;
  readonly hub: Hub;
  readonly nodes: GatewayNode[];
  /** Starts one more gateway. */
  addGateway(id: string): Promise<GatewayNode>;
  close(): Promise<void>;
}

const T = (ms: number) => ms * TIME_SCALE;

async function waitUntil(what: string, ok: () => Promise<boolean>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Cannot start the community: ${what} not ready after ${ms} ms`);
}

function kill(pid: number, signal: Deno.Signal = "SIGKILL"): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // gone already
  }
}

async function startHub(dir: string): Promise<Hub> {
  let children: Deno.ChildProcess[] = [];
  const confs = HUB_PORTS.map((p, i) => {
    const routes = HUB_PORTS.filter((_, j) => j !== i)
      .map((q) => `"nats-route://127.0.0.1:${q.route}"`).join(", ");
    return `server_name: hub${i + 1}
listen: 127.0.0.1:${p.client}
jetstream { store_dir: "${dir}/hub${i + 1}", domain: hub }
cluster { name: hub, listen: 127.0.0.1:${p.route}, routes: [${routes}] }
leafnodes { listen: 127.0.0.1:${p.leaf}, advertise: "127.0.0.1:7422" }
`;
  });
  for (const [i, c] of confs.entries()) await Deno.writeTextFile(`${dir}/hub${i + 1}.conf`, c);
  const start = async () => {
    children = confs.map((_, i) =>
      new Deno.Command("nats-server", {
        args: ["-c", `${dir}/hub${i + 1}.conf`, "-l", `${dir}/hub${i + 1}.log`],
        stdout: "null",
        stderr: "null",
      }).spawn()
    );
    // Healthy = JetStream has a meta leader (every node answers /healthz with ok through its
    // monitoring port, which we do not open; an account info request through a client works).
    await waitUntil("the hub cluster", async () => {
      const { connect } = await import("@nats-io/transport-node");
      const { jetstreamManager } = await import("@nats-io/jetstream");
      const nc = await connect({ servers: `127.0.0.1:${HUB_PORTS[0]!.client}`, timeout: 1000 });
      try {
        const jsm = await jetstreamManager(nc, { timeout: 1000 });
        await jsm.getAccountInfo();
        return true;
      } finally {
        await nc.close();
      }
    }, T(30_000));
  };
  const stop = async () => {
    for (const c of children) kill(c.pid, "SIGTERM");
    const t = setTimeout(() => children.forEach((c) => kill(c.pid)), 5000);
    await Promise.all(children.map((c) => c.status));
    clearTimeout(t);
  };
  await start();
  return {
    dir,
    servers: HUB_PORTS.map((p) => `nats://127.0.0.1:${p.client}`),
    stop,
    start,
  };
}

/** The hub side of a leaf's bridge: the first hub node that accepts. */
async function connectHub(): Promise<Deno.Conn> {
  let last: unknown;
  for (const p of HUB_PORTS) {
    try {
      return await Deno.connect({ hostname: "127.0.0.1", port: p.leaf });
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

async function startNode(dir: string, id: string): Promise<GatewayNode> {
  const link = startBridge({ transport: "unix", path: `${dir}/${id}.hub.sock` }, connectHub);
  const http = startBridge(
    { transport: "tcp", hostname: "127.0.0.1", port: 0 },
    () => Deno.connect({ transport: "unix", path: `${dir}/${id}.http.sock` }),
  );
  const script = new URL("./cluster_node.ts", import.meta.url).pathname;
  const argv = [...denoCommand(), "run", ...CACHED_ONLY_FLAGS, ...TEST_PERMS, script, id, dir];
  const inner = `${NETNS_SETUP} && exec ${argv.map(shellQuote).join(" ")} 2>>${
    shellQuote(`${dir}/${id}.log`)
  } >/dev/null`;
  const child = new Deno.Command("unshare", {
    args: ["-rn", "sh", "-c", inner],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const client = Deno.createHttpClient({
    proxy: { transport: "unix", path: `${dir}/${id}.ctl.sock` },
  });
  const ctl = async <T>(path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`http://node${path}`, {
      client,
      method: body === undefined ? "GET" : "POST",
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return await res.json() as T;
  };
  const log = () => Deno.readTextFile(`${dir}/${id}.log`).catch(() => "");
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  try {
    await waitUntil(`gateway ${id}`, async () => {
      if (exited) throw new Error(`gateway ${id} exited:\n${await log()}`);
      await ctl("/state");
      return true;
    }, T(30_000));
  } catch (e) {
    kill(child.pid);
    await closeRest();
    throw new Error(`${(e as Error).message}\n${await log()}`);
  }
  async function closeRest() {
    const pids = await Deno.readTextFile(`${dir}/${id}.pids`).catch(() => "");
    for (const p of pids.split("\n").filter(Boolean)) kill(Number(p));
    await link.close();
    await http.close();
    client.close();
  }
  return {
    id,
    link,
    httpBase: `http://127.0.0.1:${http.port}`,
    url: `ws://127.0.0.1:${http.port}/phone`,
    ctl,
    log,
    close: async () => {
      if (!exited) await ctl("/stop", {}).catch(() => {});
      const t = setTimeout(() => kill(child.pid), T(8000));
      await status;
      clearTimeout(t);
      await closeRest();
    },
  };
}

/** Starts the hub and `gateways` (ids), each gateway in its own namespace. */
export async function startCommunity(gateways: readonly string[]): Promise<Community> {
  const dir = await Deno.makeTempDir({ prefix: "community-" });
  const nodes: GatewayNode[] = [];
  let hub: Hub | undefined;
  const close = async () => {
    await Promise.allSettled(nodes.map((n) => n.close()));
    await hub?.stop();
    if (!Deno.env.get("INTERCOM_TEST_KEEP")) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  };
  try {
    hub = await startHub(dir);
    for (const id of gateways) nodes.push(await startNode(dir, id));
  } catch (e) {
    await close();
    throw e;
  }
  return {
    dir,
    hub,
    nodes,
    addGateway: async (id) => {
      const n = await startNode(dir, id);
      nodes.push(n);
      return n;
    },
    close,
  };
}

/** Waits until `ok()` holds (polling every 50 ms) and resolves to the ms it took. */
export async function within(
  what: string,
  ms: number,
  ok: () => Promise<boolean>,
): Promise<number> {
  const t0 = performance.now();
  const until = t0 + ms;
  while (performance.now() < until) {
    if (await ok().catch(() => false)) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

/** The room every community scenario binds its phones to. */
export const ROOM = "Y00010108090";

/** A gateway's `/state` (control socket), as far as the scenarios read it. */
export type NodeState = {
  hubUp: boolean;
  leafUp: boolean;
  bindings: { uid: string; roomKey: string }[];
  phones: unknown[];
  remoteRooms: string[];
};

/** `n`'s state now. */
export const state = (n: GatewayNode): Promise<NodeState> => n.ctl<NodeState>("/state");

/** Binds `uid` to {@linkcode ROOM} on `n` (through its control socket); resolves to the token. */
export async function bind(n: GatewayNode, uid: string): Promise<string> {
  return (await n.ctl<{ token: string }>("/bind", { uid, room: ROOM })).token;
}

/** Adds the console account `manager` ({@linkcode PASSWORD}) on `n` and logs in: the cookie. */
export async function loginAs(n: GatewayNode): Promise<string> {
  await n.ctl("/admin", { name: "manager", password: PASSWORD });
  return await login(n.httpBase);
}

/** One door call on `n` (room 0809) answered by a phone: talk, unlock, hang up. */
export async function doorCall(n: GatewayNode): Promise<void> {
  await n.ctl("/door/start", { options: { room: "0809", ringTimeoutS: 10 } });
  const summary = await n.ctl<{ answered: boolean; locksOpened: number }>("/door/wait", {});
  if (!summary.answered || summary.locksOpened !== 1) {
    throw new Error(`Cannot complete a door call on ${n.id}: ${JSON.stringify(summary)}`);
  }
}

/**
 * One scenario's community: gateways gwA (`a`) and gwB (`b`), both seeing the hub. Phones
 * started through it are closed when the scenario ends, before the community.
 */
export interface Scenario {
  readonly c: Community;
  readonly a: GatewayNode;
  readonly b: GatewayNode;
  /** Starts a phone sim for `uid` on `n` ({@linkcode ROOM}); not waited for its login. */
  phone(n: GatewayNode, uid: string, token: string, script?: PhoneScript): Promise<PhoneSim>;
  /** {@linkcode Scenario.phone}, then waits (5 s) for its `login ok`. */
  loggedIn(n: GatewayNode, uid: string, token: string, script?: PhoneScript): Promise<PhoneSim>;
  /** Binds `uid` on A and waits (5 s) until B has the binding; resolves to the token. */
  boundOnA(uid: string): Promise<string>;
  /** {@linkcode Scenario.boundOnA}, then a phone on B with `script`, logged in. */
  boundPhoneOnB(uid: string, script: PhoneScript): Promise<PhoneSim>;
}

/**
 * Runs `fn` on a fresh community of gwA and gwB once both see the hub (10 s); closes its phones,
 * then the community, whatever happens.
 */
export async function withCommunity(fn: (s: Scenario) => Promise<void>): Promise<void> {
  const c = await startCommunity(["gwA", "gwB"]);
  const phones: PhoneSim[] = [];
  try {
    for (const n of c.nodes) {
      await within(`${n.id} sees the hub`, T(10_000), async () => (await state(n)).hubUp);
    }
    const [a, b] = c.nodes as [GatewayNode, GatewayNode];
    const phone = async (
      n: GatewayNode,
      uid: string,
      token: string,
      script: PhoneScript = { answer: "ring" },
    ) => {
      const p = new PhoneSim({
        url: n.url,
        uid,
        token,
        roomAddress: ROOM,
        community: "花苑",
        heartbeatMs: 1000,
        script,
      });
      phones.push(p);
      await p.start();
      return p;
    };
    const loggedIn = async (n: GatewayNode, uid: string, token: string, script?: PhoneScript) => {
      const p = await phone(n, uid, token, script);
      await p.waitFor("login ok", T(5000));
      return p;
    };
    const boundOnA = async (uid: string) => {
      const token = await bind(a, uid);
      await within(
        `${uid} on B`,
        T(5000),
        async () => (await state(b)).bindings.some((x) => x.uid === uid),
      );
      return token;
    };
    await fn({
      c,
      a,
      b,
      phone,
      loggedIn,
      boundOnA,
      boundPhoneOnB: async (uid, script) => loggedIn(b, uid, await boundOnA(uid), script),
    });
  } finally {
    for (const p of phones) await p.close().catch(() => {});
    await c.close();
  }
}
