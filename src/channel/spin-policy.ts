/**
 * When an idle receiver spins instead of parking, and for how long: spinning must pay for itself.
 *
 * Parking costs a wake-up when the next message comes: the sender's `send()` on the doorbell, the receiver's
 * epoll wake, `recvmmsg` and an event-loop callback — about {@link WAKE_COST_MICROS} of CPU on the two sides
 * together, plus the latency of waking a sleeping vCPU. Spinning for `t` µs costs `t` µs of CPU; if it catches
 * the message it saves one wake-up. So the policy keeps a *credit* in µs of CPU: a spin that caught a message
 * after `s` µs earns `WAKE_COST_MICROS - s`, a spin that caught nothing loses all it spun. It spins only while
 * the credit is positive and the recent gaps between idling and the next message are short (a spin is at most
 * about twice the smoothed gap, and never longer than `spinMicros`). Over any stretch the CPU spent spinning is
 * then at most what the wake-ups it saved would have cost (plus the bounded credit), so the default costs no
 * more CPU per round trip than parking every time — which costs less than a Unix socket.
 *
 * Back-off under load comes from the same measure: on a loaded machine the peer is often not running, spins
 * miss, the credit runs out and the receiver parks. Once spinning has stopped, a short probe (at most
 * `WAKE_COST_MICROS`) every {@link PROBE_EVERY} idles finds out whether traffic became dense again — its cost is
 * bounded by `WAKE_COST_MICROS / PROBE_EVERY` per message; one that catches a message within a few µs is enough
 * to spin again.
 *
 * Pure bookkeeping (no clock, no I/O): the delivery loop measures and reports; tests drive it directly.
 */

/** Estimated CPU, in µs, that one avoided wake-up saves (both sides' system calls, the vCPU wake, the event-loop turn):
 *  the bench's CPU-at-fixed-rates suite puts a `spinMicros: 0` round trip (two wake-ups) at 75–115 µs. */
export const WAKE_COST_MICROS = 40;
/** While spinning does not pay, probe once every this many idles. */
export const PROBE_EVERY = 16;
/**
 * The credit is kept within [−½, +4] wake-ups: old history neither buys spinning for long nor blocks it — one
 * probe that catches a message within a few µs brings it back above 0. That matters for a closed-loop
 * exchange: it stays hot only while *both* sides spin, so after a cold spell it resumes the first time both
 * sides' probes overlap.
 */
const CREDIT_WAKEUPS = 4;
const DEBT_LIMIT = WAKE_COST_MICROS / 2;

/** What the policy has decided and learned so far (diagnostics and tests). */
export interface SpinPolicyState {
  /** µs of CPU that spinning has saved minus what it spent (bounded). */
  credit: number;
  /** Smoothed µs from going idle to the next message. */
  gap: number;
}

export class SpinPolicy {
  private credit = CREDIT_WAKEUPS * WAKE_COST_MICROS;
  private gapEwma: number;
  private idles = 0;

  /** @param maxMicros the longest spin (`spinMicros`); 0 never spins */
  constructor(private readonly maxMicros: number) {
    this.gapEwma = maxMicros / 2;
  }

  /** µs to spin now before parking (0: park at once). */
  budget(): number {
    const max = this.maxMicros;
    if (max <= 0) return 0;
    if (this.credit > 0 && this.gapEwma <= max) return Math.min(max, 2 * this.gapEwma + 1);
    // Two parked sides each see the other's wake-up latency as the gap, and would never spin again: a short
    // probe now and then lets a dense exchange find its way back to staying hot.
    return ++this.idles % PROBE_EVERY === 0 ? Math.min(max, WAKE_COST_MICROS) : 0;
  }

  /** A spin ended: it ran `spentMicros` and caught a message (`hit`) or not. */
  spun(spentMicros: number, hit: boolean): void {
    const credit = this.credit + (hit ? WAKE_COST_MICROS : 0) - spentMicros;
    this.credit = Math.max(-DEBT_LIMIT, Math.min(CREDIT_WAKEUPS * WAKE_COST_MICROS, credit));
  }

  /** Learns one gap between going idle and the next message (µs). */
  learnGap(micros: number): void {
    this.gapEwma = 0.75 * this.gapEwma + 0.25 * Math.min(micros, 10 * this.maxMicros + 1);
  }

  /** @internal */
  get state(): SpinPolicyState {
    return { credit: this.credit, gap: this.gapEwma };
  }
}
