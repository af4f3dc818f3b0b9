/**
 * One gateway box of the cluster tests, run by `tests/helpers/cluster.ts` inside its own private
 * network namespace (`unshare -rn`: its own loopback, UDP 8302 and multicast): this box's NATS
 * leaf node (`nats-server` on 127.0.0.1:4222, JetStream domain = the gateway id), the leaf's way
 * to the hub (TCP 127.0.0.1:7422 → a Unix socket the test bridges to the hub), the gateway itself
 * (in this process, `--cluster nats://127.0.0.1:4222`), its HTTP port offered on a Unix socket
 * (phones and the console from the test), and a control socket (JSON over HTTP) for what must
 * happen inside the namespace: door calls, bindings, state.
 *
 * Usage: `deno run <TEST_PERMS> cluster_node.ts ID DIR`; writes `DIR/ID.pids` (leaf PID) and
 * answers `DIR/ID.ctl.sock` once ready.
 *
 * @module
 */

import { type App, startApp } from "../../src/app.ts";
import { parseConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { nullLogger } from "../../src/testing/mod.ts";
import { openUdpPort } from "../../src/net/udp.ts";
import { DoorSim, type DoorSimOptions, type DoorSimSummary } from "../../src/sim/door_sim.ts";
import { startBridge } from "./bridge.ts";
import { storeCommand, type StoreCommandName } from "../../src/store/cli.ts";

const [id, dir] = Deno.args;
if (!id || !dir) throw new Error("usage: cluster_node.ts ID DIR");

const LEAF_PORT = 4222;
const HUB_LINK_PORT = 7422;
const HTTP_PORT = 8080;

const leafConf = `${dir}/${id}.leaf.conf`;
await Deno.writeTextFile(
  leafConf,
  `server_name: ${id}
listen: 127.0.0.1:${LEAF_PORT}
jetstream { store_dir: "${dir}/${id}.leaf", domain: ${id} }
leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:${HUB_LINK_PORT}" } ], reconnect: 1 }
`,
);
const leafLog = await Deno.open(`${dir}/${id}.leaf.log`, {
  create: true,
  append: true,
  write: true,
});
const leaf = new Deno.Command("nats-server", {
  args: ["-c", leafConf],
  stdout: "null",
  stderr: "piped",
}).spawn();
const leafLogging = leaf.stderr.pipeTo(leafLog.writable).catch(() => {});
await Deno.writeTextFile(`${dir}/${id}.pids`, `${leaf.pid}\n`);

// The leaf's road to the hub: through a Unix socket that the test bridges to a hub node.
const hubLink = startBridge(
  { transport: "tcp", hostname: "127.0.0.1", port: HUB_LINK_PORT },
  () => Deno.connect({ transport: "unix", path: `${dir}/${id}.hub.sock` }),
);

// The leaf is ready in ~50 ms.
for (let i = 0; i < 100; i++) {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port: LEAF_PORT })).close();
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 50));
  }
}

const logger = Deno.env.get("INTERCOM_TEST_LOG")
  ? createLogger({ level: "debug", format: "text" })
  : createLogger({ level: "info", format: "text" });
const config = parseConfig([
  "--cluster",
  `nats://127.0.0.1:${LEAF_PORT}`,
  "--gateway-id",
  id,
  "--data",
  `${dir}/${id}.data`,
  "--http-host",
  "127.0.0.1",
  "--http-port",
  String(HTTP_PORT),
  "--https-port",
  "off",
  "--transcode",
  "off",
  "--heartbeat-timeout",
  "6",
], {});
const app: App = await startApp(config, { logger: logger ?? nullLogger, version: "test" });

const http = startBridge(
  { transport: "unix", path: `${dir}/${id}.http.sock` },
  () => Deno.connect({ hostname: "127.0.0.1", port: HTTP_PORT }),
);

const doors = new Map<string, { sim: DoorSim; done: Promise<DoorSimSummary> }>();

type Body = Record<string, unknown>;
const json = (v: unknown, status = 200) => Response.json(v, { status });

async function handle(path: string, body: Body): Promise<Response> {
  switch (path) {
    case "/state":
      return json({
        leafUp: app.cluster?.leafUp ?? false,
        hubUp: app.cluster?.hubUp ?? false,
        bindings: await app.bindings.list(),
        phones: app.live.phones(),
        calls: app.live.calls(),
        remoteRooms: [...app.remoteRooms()],
      });
    case "/bind":
      try {
        const r = await app.bindings.add({
          uid: String(body.uid),
          roomAddress: String(body.room),
          community: "花苑",
        });
        return json({ token: r.token });
      } catch (e) {
        return json({ error: (e as Error).message }, 503);
      }
    case "/unbind":
      try {
        return json({ removed: await app.bindings.remove(String(body.uid), String(body.room)) });
      } catch (e) {
        return json({ error: (e as Error).message }, 503);
      }
    case "/admin":
      // A console account (tests/helpers/admin_console.ts logs in with it).
      await app.admins.add(String(body.name), String(body.password));
      return json({ ok: true });
    case "/cli": {
      // A store command as typed on this box (`deno task cli bind add …`), with its environment.
      const out: string[] = [];
      const err: string[] = [];
      const code = await storeCommand(body.cmd as StoreCommandName, body.args as string[], {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
        env: {
          INTERCOM_DATA: config.data,
          INTERCOM_CLUSTER: `nats://127.0.0.1:${LEAF_PORT}`,
        },
      });
      return json({ code, out, err });
    }
    case "/ping": {
      // Request/reply to another gateway's echo, as media and signalling take it.
      const nc = app.cluster?.nc;
      if (!nc) return json({ error: "no leaf" }, 503);
      const n = Number(body.n ?? 200);
      const payload = new Uint8Array(Number(body.size ?? 500));
      const rtt: number[] = [];
      let lost = 0;
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        try {
          await nc.request(`call.${body.to}.ping`, payload, { timeout: 1000 });
          rtt.push(performance.now() - t0);
        } catch {
          lost++;
        }
      }
      rtt.sort((x, y) => x - y);
      const q = (f: number) => rtt[Math.min(rtt.length - 1, Math.floor(f * rtt.length))] ?? NaN;
      return json({ n, lost, p50: q(0.5), p99: q(0.99), max: q(1) });
    }
    case "/records":
      return json({ records: await app.records.recent(50) });
    case "/door/start": {
      const name = String(body.name ?? "door");
      const ip = String(body.ip ?? "127.0.0.2");
      const socket = await openUdpPort({ hostname: ip, port: 8302 });
      const sim = new DoorSim({ ...(body.options as DoorSimOptions ?? {}), socket, ip });
      doors.set(name, { sim, done: sim.start() });
      return json({ ok: true });
    }
    case "/door/wait": {
      const d = doors.get(String(body.name ?? "door"));
      if (!d) return json({ error: "no such door" }, 404);
      const summary = await d.done;
      doors.delete(String(body.name ?? "door"));
      return json(summary);
    }
    case "/door/hangup": {
      const d = doors.get(String(body.name ?? "door"));
      if (!d) return json({ error: "no such door" }, 404);
      await d.sim.hangUp();
      return json({ ok: true });
    }
    case "/door/counters": {
      const d = doors.get(String(body.name ?? "door"));
      return d ? json(d.sim.counters) : json({ error: "no such door" }, 404);
    }
    case "/stop":
      queueMicrotask(() => void stop());
      return json({ ok: true });
    default:
      return json({ error: `no ${path}` }, 404);
  }
}

let stopping: Promise<void> | undefined;
function stop(): Promise<void> {
  stopping ??= (async () => {
    for (const d of doors.values()) await d.sim.close().catch(() => {});
    await app.shutdown();
    await http.close();
    await hubLink.close();
    try {
      leaf.kill("SIGTERM");
    } catch {
      // gone
    }
    await leaf.status;
    await leafLogging;
    await server.shutdown();
    Deno.exit(0);
  })();
  return stopping;
}

const server = Deno.serve(
  { path: `${dir}/${id}.ctl.sock`, onListen: () => {} },
  async (req) => {
    const body = req.method === "POST" ? await req.json().catch(() => ({})) : {};
    return await handle(new URL(req.url).pathname, body as Body);
  },
);
Deno.addSignalListener("SIGTERM", () => void stop());
