/**
 * Simulated doors and phones for end-to-end tests against a {@linkcode TestGateway}.
 *
 * @module
 */

import { openUdpPort } from "../../src/net/udp.ts";
import { DoorSim, type DoorSimOptions } from "../../src/sim/door_sim.ts";
import { type PhoneScript, PhoneSim } from "../../src/sim/phone_sim.ts";
import type { TestGateway } from "./gateway.ts";
import { TIME_SCALE } from "./scale.ts";

/**
 * Name resolutions a test door makes before it gives up: one natively (6 asks in 600 ms, as a
 * door does), three under emulation, where the isolate's socket reads can lag half a second
 * behind its timers (measured under qemu: an NS ask read 470 ms after it was sent, its answer
 * read by the door 230 ms after that, while the door's 100-ms timer kept its pace), as a visitor
 * pressing the room again.
 */
export const NS_ROUNDS = TIME_SCALE > 1 ? 3 : 1;

/** Opens a door simulator on `ip:8302` (a loopback address inside the test namespace). */
export async function openDoor(
  options: Omit<DoorSimOptions, "socket"> & { ip?: string } = {},
): Promise<DoorSim> {
  const ip = options.ip ?? "127.0.0.2";
  const socket = await openUdpPort({ hostname: ip, port: options.port ?? 8302 });
  const onEvent = options.onEvent ?? (TRACE
    ? (e: { type: string }) => {
      if (e.type !== "audio_received") trace(`door ${ip}`, e);
    }
    : undefined);
  return new DoorSim({
    nsRounds: NS_ROUNDS,
    ...options,
    socket,
    ip,
    ...(onEvent ? { onEvent } : {}),
  });
}

/** Binds `uid` to `room`, connects a phone simulator and waits for `login ok`. */
export async function openPhone(
  gw: TestGateway,
  uid: string,
  script: PhoneScript = {},
  roomAddress = "Y00010108090",
): Promise<PhoneSim> {
  const token = await gw.bind(uid, roomAddress);
  const phone = new PhoneSim({
    url: gw.url,
    uid,
    token,
    roomAddress,
    community: "花苑",
    heartbeatMs: 1000,
    // Under emulation the door can answer CALLSTART after the gateway's 6 × 100 ms (a stalled
    // isolate): the phone taps talk again, as a resident would.
    script: { ...script, talkRetries: script.talkRetries ?? (TIME_SCALE > 1 ? 3 : 0) },
    ...(TRACE ? { onEvent: (e: { kind: string }) => trace(`phone ${uid}`, e) } : {}),
  });
  await phone.start();
  await phone.waitFor("login ok", 5000);
  return phone;
}

/** `INTERCOM_TEST_LOG=1`: the simulators' events go to stderr beside the gateway's log. */
const TRACE = Boolean(Deno.env.get("INTERCOM_TEST_LOG"));

function trace(who: string, event: unknown): void {
  // deno-lint-ignore no-console
  console.error(`${new Date().toISOString()} SIM   ${who} ${JSON.stringify(event)}`);
}

export { sleep } from "./wait.ts";
