/**
 * A {@linkcode DoorPort} for call-manager tests: it records what the manager answers and asks,
 * holds each ASK until the test replies, and hands out keep-alives the test can lose.
 *
 * @module
 */

import { assert } from "../../tests/helpers/assert.ts";
import type { DoorPort } from "../call/manager.ts";
import type { Endpoint } from "../net/port.ts";
import {
  type CallParties,
  decodePacket,
  MSG_TYPE,
  OP_NAME,
  PacketDecodeError,
} from "../protocol/mod.ts";

/** An ASK of the manager's that waits for the test's {@linkcode FakeDoor.reply}. */
export interface PendingAsk {
  /** Operation name, e.g. `CALLSTART`. */
  readonly op: string;
  /** The door's IP. */
  readonly to: string;
  /** Completes the ASK: true as for the door's REPLY, false as for no reply. */
  readonly resolve: (ok: boolean) => void;
}

/** A door transport that only records (see the module doc). */
export class FakeDoor implements DoorPort {
  /** What the manager did, in order: `answer LINEUSE 10.0.0.5`, `ask CALLSTART 10.0.0.5`. */
  readonly log: string[] = [];
  /** Each answer as `<key> <OP>[ reply]`, in order. */
  readonly answers: string[] = [];
  /** ASKs in flight, oldest first. */
  readonly asks: PendingAsk[] = [];
  /** Running keep-alives by id, each with its loss callback. */
  readonly keepAlives: Map<number, () => void> = new Map();
  /** Set by a test to see which door ASKs the manager forgets. */
  forget?: (key: string) => void;
  #next = 0;

  /** Records the answer (bytes must decode as a call packet). */
  answer(key: string, bytes: Uint8Array): void {
    const p = decodePacket(bytes);
    assert(!(p instanceof PacketDecodeError) && p.kind === "call");
    const op = `${OP_NAME[p.op]}${p.type === MSG_TYPE.REPLY ? " reply" : ""}`;
    this.log.push(`answer ${op} ${key.split("|")[0]}`);
    this.answers.push(`${key} ${op}`);
  }

  /** Records the ASK; it completes on {@linkcode FakeDoor.reply}. */
  ask(op: number, _parties: CallParties, to: Endpoint): Promise<boolean> {
    this.log.push(`ask ${OP_NAME[op]} ${to.hostname}`);
    return new Promise((resolve) => this.asks.push({ op: OP_NAME[op]!, to: to.hostname, resolve }));
  }

  /** Completes the oldest ASK of `op` (e.g. `"CALLSTART"`); throws when none is in flight. */
  reply(op: string, ok = true): void {
    const i = this.asks.findIndex((a) => a.op === op);
    assert(i >= 0, `no ${op} ask in flight`);
    this.asks.splice(i, 1)[0]!.resolve(ok);
  }

  /** Starts a keep-alive; the returned stop removes it. */
  startKeepAlive(_p: CallParties, _to: Endpoint, onLost: () => void): () => void {
    const id = this.#next++;
    this.keepAlives.set(id, onLost);
    return () => this.keepAlives.delete(id);
  }

  /** Loses the `index`-th running keep-alive (modulo their count), as the real one does: it stops, then reports the loss once. False when none runs. */
  loseKeepAlive(index = 0): boolean {
    const ids = [...this.keepAlives.keys()];
    if (ids.length === 0) return false;
    const id = ids[index % ids.length]!;
    const onLost = this.keepAlives.get(id)!;
    this.keepAlives.delete(id);
    onLost();
    return true;
  }

  /** Sends nothing. */
  sendOnce(): void {}
}
