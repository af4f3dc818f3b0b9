/**
 * A fake of the call layer's {@linkcode DoorPort} for tests: it records what the manager asks of
 * the door, and lets the test answer our ASKs and fire keep-alive losses. Builders make the door
 * events the transport would emit.
 *
 * @module
 */

import type { CallParties } from "../protocol/types.ts";
import { displayAddress, roomKey } from "../protocol/address.ts";
import type { CallAnswer, DoorCall, DoorEvent, DoorHangup, DoorPort, Peer } from "../call/ports.ts";

/** A door call made by {@linkcode doorCallEvent}: `key` names it in the fake's logs. */
export interface FakeDoorCall extends DoorCall {
  readonly key: string;
}

/** One of our ASKs waiting for the test's answer. */
export interface PendingAsk {
  readonly op: "CALLSTART" | "REMOTEOPENLOCK" | "CALLEND";
  readonly to: string;
  resolve(ok: boolean): void;
}

const keyOf = (c: DoorCall | DoorHangup): string =>
  (c as Partial<FakeDoorCall>).key ?? c.door.hostname;

/** Records the door side of calls. */
export class FakeDoor implements DoorPort {
  /** `answer CALLANSWER 10.0.0.5`, `answer CALLEND reply …`, `ask CALLSTART …`, in order. */
  readonly log: string[] = [];
  /** `${key} LINEUSE` / `${key} CALLANSWER` / `${key} CALLEND reply`. */
  readonly answers: string[] = [];
  /** Our ASKs in flight, oldest first. */
  readonly asks: PendingAsk[] = [];
  /** Keep-alives running, by id, with their loss callback. */
  readonly keepAlives = new Map<number, () => void>();
  /** Every keep-alive's loss callback, in start order. */
  readonly lost: (() => void)[] = [];
  /** Keys of calls released (their CALL bytes start a new call from now on). */
  readonly released: string[] = [];
  #next = 0;

  answer(call: DoorCall, answer: CallAnswer): void {
    this.log.push(`answer ${answer} ${call.door.hostname}`);
    this.answers.push(`${keyOf(call)} ${answer}`);
  }

  #ask(op: PendingAsk["op"], call: DoorCall): Promise<boolean> {
    this.log.push(`ask ${op} ${call.door.hostname}`);
    return new Promise((resolve) => this.asks.push({ op, to: call.door.hostname, resolve }));
  }

  start(call: DoorCall): Promise<boolean> {
    return this.#ask("CALLSTART", call);
  }

  unlock(call: DoorCall): Promise<boolean> {
    return this.#ask("REMOTEOPENLOCK", call);
  }

  end(call: DoorCall): Promise<boolean> {
    return this.#ask("CALLEND", call);
  }

  confirmHangup(hangup: DoorHangup): void {
    this.log.push(`answer CALLEND reply ${hangup.door.hostname}`);
    this.answers.push(`${keyOf(hangup)} CALLEND reply`);
  }

  keepAlive(_call: DoorCall, onLost: () => void): () => void {
    const id = this.#next++;
    this.keepAlives.set(id, onLost);
    this.lost.push(onLost);
    return () => this.keepAlives.delete(id);
  }

  release(call: DoorCall): void {
    this.released.push(keyOf(call));
  }

  /** Answers the oldest pending ASK of `op`. */
  reply(op: PendingAsk["op"], ok = true): void {
    const i = this.asks.findIndex((a) => a.op === op);
    if (i < 0) throw new Error(`Cannot reply to ${op}: no such ASK pending`);
    const [ask] = this.asks.splice(i, 1);
    ask!.resolve(ok);
  }
}

/** The door event of a CALL (`type` "call") or CALLEND (`type` "hangup") from `from`. */
export function doorCallEvent(
  parties: CallParties,
  from: Peer,
  type: "call" | "hangup" = "call",
  key = `${from.hostname}|${type}`,
): DoorEvent {
  if (type === "hangup") {
    const hangup: DoorHangup & { key: string } = {
      door: from,
      doorAddress: displayAddress(parties.caller),
      roomKey: roomKey(parties.callee),
      key,
    };
    return { type: "hangup", hangup };
  }
  const call: FakeDoorCall = {
    door: from,
    doorAddress: displayAddress(parties.caller),
    roomAddress: displayAddress(parties.callee),
    roomKey: parties.callee.startsWith("S") ? roomKey(parties.callee) : undefined,
    parties,
    key,
  };
  return { type: "call", call };
}
