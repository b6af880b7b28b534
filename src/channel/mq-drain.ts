/**
 * How many messages an mq reader takes per wake-up before it stops looking.
 *
 * Reading until the queue is empty costs one more system call per wake-up: the mq_receive that fails with
 * EAGAIN. Stopping after one message instead costs nothing when it was the only one — the inbound watch is
 * level-triggered, and the event loop polls its descriptors anyway before it sleeps — but an event-loop turn
 * per message when more wait. So a reader whose wake-ups each find a single message (request and reply, paced
 * traffic: most of the time) takes one per wake-up, and one whose wake-ups find several (a flood) drains until
 * empty. While taking one at a time it drains fully every {@link PROBE_EVERY}th wake-up to notice a flood.
 *
 * Pure bookkeeping: the transport reports what each read found; tests drive it directly.
 */

/** Drains that each found at most one message before the reader takes one per wake-up. */
export const SINGLE_AFTER = 4;
/** While taking one per wake-up: every this many wake-ups, drain until empty to see whether more wait. */
export const PROBE_EVERY = 16;

export class MqDrainPolicy {
  private single = false;
  /** Drain mode: drains in a row that found at most one message. Single mode: wake-ups since the last probe. */
  private count = 0;

  /** Most messages to take in this read before assuming the queue empty (then the watch says when it is not). */
  limit(): number {
    if (!this.single) return Infinity;
    return ++this.count % PROBE_EVERY === 0 ? Infinity : 1;
  }

  /** A read ended after taking `taken` messages; `emptied`: it found the queue empty (EAGAIN). */
  read(taken: number, emptied: boolean): void {
    if (taken > 1) {
      // Several were waiting: drain every wake-up.
      this.single = false;
      this.count = 0;
      return;
    }
    if (this.single || !emptied) return;
    if (++this.count >= SINGLE_AFTER) {
      this.single = true;
      this.count = 0;
    }
  }

  /** @internal For tests and diagnostics. */
  get takesOne(): boolean {
    return this.single;
  }
}
