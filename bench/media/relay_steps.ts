// deno-lint-ignore-file no-console
/**
 * relay_steps.ts - the product's media path built up from the bare fast_udp loop one piece
 * at a time (docs/performance.md "Finding the tail"), under the bench's relay interface:
 *
 *   deno run --unstable-net --allow-net relay_steps.ts STEP \
 *     PORT_A PORT_B DOOR_BASE PHONE_BASE CALLS DOOR_IP_BASE
 *
 * STEP:
 *   s0port  fast_udp forwardDatagrams, one door IP, routed by source port (deno-fast_udp)
 *   s0  fast_udp forwardDatagrams, door -> phone routed by the door's IP (as the product),
 *       phone -> door by source port; bytes unchanged
 *   s1  s0 on the gateway's ports: openUdpPort({ pooled: true }) (receivePool, Endpoint
 *       copies, unawaited sends releasing the buffer), one bare receive loop per port
 *   s2  s1 with the gateway's loops: DoorTransport (CALLUP fast path) on the door port,
 *       receiveLoop on the media port; forwarding as in s0
 *
 * The next step, MediaRelay doing the forwarding, is relay_product.ts.
 *
 * With `LAG=1` in the environment, SIGTERM prints the door datagrams' ages (lag.ts).
 *
 * @module
 */
import { forwardDatagrams } from "./fast_udp.ts";
import { openUdpPort } from "../../src/net/udp.ts";
import { receiveLoop } from "../../src/net/receive_loop.ts";
import type { Endpoint } from "../../src/net/port.ts";
import { lagReport, stamp } from "./lag.ts";

const [step = "s0", ...rest] = Deno.args;
const [pa = 0, pb = 0, doorBase = 0, phoneBase = 0, calls = 0] = rest.map(Number);
const doorIpBase = rest[5] ?? "127.0.1.1";
const HOST = "127.0.0.1";

function ipPlus(base: string, i: number): string {
  const [a = 0, b = 0, c = 0, d = 0] = base.split(".").map(Number);
  const n = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d + i;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

{
  const doorToPhone = new Map<string, Endpoint & Deno.NetAddr>();
  const phoneToDoor = new Map<number, Endpoint & Deno.NetAddr>();
  for (let i = 0; i < calls; i++) {
    doorToPhone.set(ipPlus(doorIpBase, i), {
      transport: "udp",
      hostname: HOST,
      port: phoneBase + i,
    });
    phoneToDoor.set(phoneBase + i, {
      transport: "udp",
      hostname: ipPlus(doorIpBase, i),
      port: doorBase + i,
    });
  }
  if (step === "s0port") {
    // one door IP, routed by source port as relay_deno.ts "fire"
    const byPort = new Map<number, Deno.NetAddr>();
    for (let i = 0; i < calls; i++) {
      byPort.set(doorBase + i, { transport: "udp", hostname: HOST, port: phoneBase + i });
      byPort.set(phoneBase + i, { transport: "udp", hostname: HOST, port: doorBase + i });
    }
    const a = Deno.listenDatagram({ transport: "udp", hostname: HOST, port: pa });
    const b = Deno.listenDatagram({ transport: "udp", hostname: HOST, port: pb });
    forwardDatagrams(a, b, (d, f) => {
      stamp(d);
      return byPort.get(f.port);
    });
    forwardDatagrams(b, a, (_d, f) => byPort.get(f.port));
  } else if (step === "s0") {
    const a = Deno.listenDatagram({ transport: "udp", hostname: HOST, port: pa });
    const b = Deno.listenDatagram({ transport: "udp", hostname: HOST, port: pb });
    forwardDatagrams(a, b, (d, f) => {
      stamp(d);
      return doorToPhone.get(f.hostname);
    });
    forwardDatagrams(b, a, (_d, f) => phoneToDoor.get(f.port));
  } else {
    const door = await openUdpPort({ hostname: HOST, port: pa, pooled: true });
    const media = await openUdpPort({ hostname: HOST, port: pb, pooled: true });
    const onDoor = (d: Uint8Array, f: Endpoint) => {
      stamp(d);
      const to = doorToPhone.get(f.hostname);
      if (to) media.send(d, to);
    };
    const onPhone = (d: Uint8Array, f: Endpoint) => {
      const to = phoneToDoor.get(f.port);
      if (to) door.send(d, to);
    };
    if (step === "s1") {
      const loop = async (
        p: typeof door,
        h: (d: Uint8Array, f: Endpoint) => void,
      ) => {
        for (;;) {
          const [d, f] = await p.receive();
          h(d, f);
          p.release(d);
        }
      };
      void loop(door, onDoor);
      void loop(media, onPhone);
    } else {
      const { DoorTransport } = await import("../../src/door/transport.ts");
      const { systemClock } = await import("../../src/clock.ts");
      const { createLogger } = await import("../../src/log.ts");
      const { Metrics } = await import("../../src/metrics.ts");
      const logger = createLogger({ level: "warn", sink: (line) => console.error(line) });
      const transport = new DoorTransport({
        port: door,
        clock: systemClock,
        logger,
        metrics: new Metrics(),
        isOnline: () => true,
        localIpFor: () => HOST,
        onEvent: () => {},
        onMedia: onDoor,
      });
      transport.listen();
      void receiveLoop(media, onPhone, logger);
    }
  }
  const report = () => {
    console.error(`relay_steps ${step}: ${lagReport()}`);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", report);
  console.log("READY");
}
