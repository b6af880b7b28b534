/**
 * When an idle receiver spins instead of parking, and for how long: spinning must pay for itself.
 *
 * Parking costs a wake-up when the next message comes: the sender's `send()` on the doorbell, the receiver's
 * epoll wake, `recvmmsg` and an event-loop callback — about {@link WAKE_COST_MICROS} of CPU on the two sides
 * together, plus the latency of waking a sleeping vCPU. Spinning for `t` µs costs `t` µs of CPU; if it catches
 * the message it saves one wake-up. So the policy keeps a *credit* in µs of CPU: a spin that caught a message
 * after `s` µs earns `WAKE_COST_MICROS - s`, a spin that caught nothing loses all it spun. It spins only while
 * the credit is positive and the recent gaps between idling and the next message are short (a spin lasts about
 * twice the smoothed gap but at least {@link WAKE_COST_MICROS}, and never longer than `spinMicros`). Over any stretch the CPU spent spinning is
 * then at most what the wake-ups it saved would have cost (plus the bounded credit), so the default costs no
 * more CPU per round trip than parking every time — which costs less than a Unix socket.
 *
 * Back-off under load comes from the same measure: on a loaded machine the peer is often not running, spins
 * miss, the credit runs out and the receiver parks. Once spinning has stopped, a probe of {@link PROBE_MICROS}
 * every {@link PROBE_EVERY} idles — only while the recent gaps are within a probe's length, so that it can catch
 * something — finds out whether traffic became dense again; its cost is bounded by `PROBE_MICROS / PROBE_EVERY`
 * per message, and one that catches a message buys a short trial.
 *
 * Pure bookkeeping (no clock, no I/O): the delivery loop measures and reports; tests drive it directly.
 */

/**
 * Estimated CPU, in µs, that one avoided wake-up saves (both sides' system calls, the vCPU wake, the event-loop
 * turn) where spinning is considered at all — gaps within `spinMicros`, i.e. rates of 10k messages/s and more.
 * The bench's CPU suite puts a parked message there at ~27 µs of CPU (10k/s) down to ~7 µs (50k/s, when the
 * vCPUs no longer halt between messages): a spin that waits ~20 µs for a message paced at 50k/s costs more than
 * the wake-up it saves, one that catches a closed loop's answer within a few µs saves it.
 */
export const WAKE_COST_MICROS = 15;
/** While spinning does not pay, probe once every this many idles. */
export const PROBE_EVERY = 16;
/**
 * A probe's length: long enough to cover a parked peer's wake-up and answer (~20–25 µs on an idle VM), or a
 * cold closed loop could never find out that it would be hot. Costs at most PROBE_MICROS / PROBE_EVERY per idle.
 */
export const PROBE_MICROS = 50;
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
  /** The budget last given was a probe. */
  private probing = false;

  /** @param maxMicros the longest spin (`spinMicros`); 0 never spins */
  constructor(private readonly maxMicros: number) {
    this.gapEwma = maxMicros / 2;
  }

  /**
   * µs to spin now before parking (0: park at once). `answerDue`: this side waits for a reply and the peer was
   * awake when we last wrote to it (no ring was needed) — its answer comes without a wake-up, so a probe now is
   * likely to catch it within µs.
   */
  budget(answerDue = false): number {
    const max = this.maxMicros;
    this.probing = false;
    if (max <= 0) return 0;
    // At least what a wake-up costs: the smoothed gap says how long the peer usually takes, not how long it
    // sometimes takes — in a hot exchange it is ~1 µs, but one turn in ten of a JS peer takes several µs and one
    // in a hundred 15–25 µs (its own work, a minor GC). A spin of twice the mean gap parks at each of those, and
    // a parked side makes the peer's next write ring — both sides fall out of the hot loop for a ~30 µs round trip
    // or more. Spinning up to the cost of the alternative and then parking never costs more than twice the best
    // choice in hindsight (the rent-or-buy bound), and the credit still stops it where it does not pay.
    if (this.credit > 0 && this.gapEwma <= max) return Math.min(max, Math.max(WAKE_COST_MICROS, 2 * this.gapEwma + 1));
    // Two parked sides each see the other's wake-up latency as the gap, and would never spin again: a probe now
    // and then lets a dense exchange find its way back to staying hot — at once when the peer is awake and owes
    // us an answer (then both sides spin, which is what a hot closed loop is).
    // A periodic probe only while messages come within a probe's length of going idle: messages paced further
    // apart (10k/s and slower) can never be caught by one, and its cost would be all it does. A cold closed
    // loop's gaps are a parked peer's wake-up and answer, well within it on an idle machine.
    if (!answerDue && (++this.idles % PROBE_EVERY !== 0 || this.gapEwma > PROBE_MICROS)) return 0;
    this.probing = true;
    return Math.min(max, PROBE_MICROS);
  }

  /** A spin ended: it ran `spentMicros` and caught a message (`hit`) or not. */
  spun(spentMicros: number, hit: boolean): void {
    let credit = this.credit + (hit ? WAKE_COST_MICROS : 0) - spentMicros;
    // A probe that caught something buys a short trial even if it waited longer than a wake-up costs: only while
    // this side spins can the peer's spins start catching within µs (a closed loop is hot only when both sides
    // are), and a trial that keeps waiting as long drains within a spin or two.
    if (hit && this.probing) credit = Math.max(credit, WAKE_COST_MICROS);
    this.probing = false;
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
