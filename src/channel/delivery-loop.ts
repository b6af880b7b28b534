/**
 * The delivery loop of one session side: delivers what waits in the channels, then idles — spins while the
 * next message is likely to come soon (adaptive), otherwise publishes parked=1, looks once more and sleeps
 * until the peer rings the doorbell. In spin mode it polls from microtasks behind the app's continuations, so a
 * round trip needs no event-loop turn.
 */
import { ShmxError } from '../errors.js';
import { DELIVERY_BATCH, type Channel } from './channel.js';
import type { ChannelSettings } from './settings.js';
import { nowMicros, type Wakeup } from './wakeup.js';

/** Longest stretch of microtask-driven polling (spin mode) before the event loop gets a turn. */
const SPIN_TURN_MS = 1;

/** What the loop works on; the multiplexer provides it. */
export interface DeliveryDeps {
  /** The open channels, current at each call. */
  channels(): readonly Channel[];
  /** True while a channel in spin mode is open. */
  spinning(): boolean;
  wakeup: Wakeup;
  settings: ChannelSettings;
  /** Corrupt shared memory or a broken peer: fault the session. */
  fault(err: ShmxError): void;
}

/** Internal counters of a delivery loop (tests and diagnostics): behaviour, not time. */
export interface DeliveryCounters {
  /** Times the loop published parked=1 and went to sleep until the doorbell. */
  parks: number;
  /** Times it stayed awake instead (spin mode: polled, gave the event loop a turn, will poll again). */
  spinTurns: number;
  /** Busy-wait spins begun (adaptive or spin mode). */
  spins: number;
}

export class DeliveryLoop {
  /** @internal */
  readonly counters: DeliveryCounters = { parks: 0, spinTurns: 0, spins: 0 };
  private draining = false;
  private scheduled = false;
  private closed = false;
  /** When the current spin-mode turn began (ms, performance.now()). */
  private turnStarted = 0;
  private microHops = 0;
  /** When we last ran out of work (µs, nowMicros()), and the smoothed gap until the next message. */
  private idleSince = 0;
  private gapEwma: number;
  private idleProbe = 0;

  constructor(private readonly deps: DeliveryDeps) {
    this.gapEwma = deps.settings.spinMicros / 2;
  }

  /** Runs the loop on the next event-loop turn (once, however often asked). */
  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.turnStarted = performance.now();
      this.run();
    });
  }

  /** The doorbell rang: learn how long we were idle before the peer wrote, then deliver. */
  onRing(): void {
    const rang = this.deps.wakeup.lastRang;
    if (this.idleSince > 0 && rang > this.idleSince) this.learnGap(rang - this.idleSince);
    this.run();
  }

  /** Stops for good (the session is closing). */
  close(): void {
    this.closed = true;
  }

  /**
   * Delivers what is waiting (a bounded batch), then returns so that the app's promise continuations — its
   * replies — run before we look again.
   */
  run(): void {
    if (this.draining || this.closed) return;
    this.draining = true;
    this.deps.wakeup.unpark(); // busy: senders need not ring until we park again
    let delivered = 0;
    try {
      for (let budget = 4 * DELIVERY_BATCH; budget > 0;) {
        let pass = 0;
        for (const c of this.deps.channels()) {
          if (c.readable) pass += c.pump(DELIVERY_BATCH);
          c.checkDrain();
        }
        if (pass === 0 || this.closed) break;
        delivered += pass;
        budget -= pass;
      }
    } catch (err) {
      this.deps.fault(err instanceof ShmxError ? err : new ShmxError('ECHANNELCORRUPT', String(err), { cause: err }));
      return;
    } finally {
      this.draining = false;
    }
    if (delivered === 0) {
      this.idle();
    } else if (this.deps.spinning() && performance.now() - this.turnStarted < SPIN_TURN_MS) {
      // Spin mode: look again from a microtask queued behind the app's continuations (its next send), so a
      // round trip needs no event-loop turn; after SPIN_TURN_MS the loop gets its turn.
      this.microHops = 0;
      queueMicrotask(this.idleHop);
    } else {
      this.schedule();
    }
  }

  private anyShm(): boolean {
    for (const c of this.deps.channels()) if (c.transport === 'shm') return true;
    return false;
  }

  private anyWaiting(): boolean {
    for (const c of this.deps.channels()) if (c.readable && c.wantsMessages) return true;
    return false;
  }

  /** Lets pending microtasks (the app's `await` chains) run a few times before spinning. */
  private readonly idleHop = (): void => {
    if (this.anyWaiting()) this.run();
    else if (++this.microHops < 8) queueMicrotask(this.idleHop);
    else this.idle();
  };

  /**
   * Nothing to deliver. Spin while the gap to the next message is likely short (adaptive: about twice the
   * recent idle-to-message gap, at most `spinMicros`; always 50 µs turns with a spinning channel open), then
   * publish parked=1, look once more — a sender that wrote before seeing it did not ring — and sleep until the
   * doorbell.
   */
  private idle(): void {
    if (this.closed) return;
    const spinning = this.deps.spinning();
    this.idleSince = nowMicros();
    // Spinning polls shared memory: it can only catch messages on shm channels (mq and socket channels wake
    // this side through their own descriptors), so without one it would burn the CPU for nothing.
    const budget = spinning ? 50 : this.anyShm() ? this.spinBudget() : 0;
    if (this.spin(budget)) {
      this.learnGap(nowMicros() - this.idleSince);
      this.run();
      return;
    }
    if (spinning) {
      this.counters.spinTurns++;
      this.schedule();
      return;
    }
    this.counters.parks++;
    this.deps.wakeup.park();
    if (this.anyWaiting()) this.run();
  }

  private learnGap(micros: number): void {
    this.gapEwma = 0.75 * this.gapEwma + 0.25 * Math.min(micros, 10 * this.deps.settings.spinMicros + 1);
  }

  /** µs to spin before parking: worth it only when messages usually follow within `spinMicros`. */
  private spinBudget(): number {
    const max = this.deps.settings.spinMicros;
    if (this.gapEwma <= max) return Math.min(max, 2 * this.gapEwma + 1);
    // Two parked sides each see the other's wake-up latency as the gap, and would never spin again: probe
    // now and then with the full budget, so dense traffic finds its way back to staying hot.
    return (++this.idleProbe & 15) === 0 ? max : 0;
  }

  /** Busy-waits up to `micros` for a message; true when one arrived. Reads the clock every 64 polls: it costs
   *  more than a poll. */
  private spin(micros: number): boolean {
    if (micros <= 0) return false;
    this.counters.spins++;
    const until = performance.now() + micros / 1000;
    for (;;) {
      for (let i = 0; i < 64; i++) if (this.anyWaiting()) return true;
      if (performance.now() >= until) return false;
    }
  }
}
