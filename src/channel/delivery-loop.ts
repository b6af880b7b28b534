/**
 * The delivery loop of one session side: delivers what waits in the channels, then idles — spins while spinning
 * pays for itself (spin-policy.ts), otherwise publishes parked=1, looks once more and sleeps until the peer rings
 * the doorbell. After a batch it looks again from a microtask queued behind the app's continuations (its
 * replies), not from another event-loop turn: a wake-up costs one callback. A spin runs in slices of at most
 * {@link SPIN_SLICE_MICROS}, each a `setImmediate` apart, so timers and I/O that are due run between slices.
 * In spin mode the loop never parks.
 */
import { ShmxError } from '../errors.js';
import { DELIVERY_BATCH, type Channel } from './channel.js';
import type { ChannelSettings } from './settings.js';
import { SpinPolicy } from './spin-policy.js';
import { nowMicros } from './clock.js';
import type { Wakeup } from './wakeup.js';

/** Longest stretch of microtask-driven delivery before the event loop gets a turn. */
const LOOP_TURN_MS = 1;
/** Longest busy-wait without giving the event loop a turn (adaptive spins). */
export const SPIN_SLICE_MICROS = 25;
/** Spin mode: busy-wait per event-loop turn. */
const SPIN_MODE_MICROS = 50;
/**
 * Queues the loop's microtask hops: `settled.then(f)` is a bare V8 microtask, where Node's `queueMicrotask` makes an
 * AsyncResource and a bound function per call — at up to nine hops per wake-up, a cost seen in profiles.
 */
const settled = Promise.resolve();

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
  /** Adaptive spins that caught a message before their budget ran out. */
  spinHits: number;
  /** Times an adaptive spin gave the event loop a turn between two slices. */
  spinYields: number;
  /** Adaptive spins cut short because the event loop, between two slices, had something to deliver. */
  spinsInterrupted: number;
  /** Batches delivered (a wake-up, a slice that caught something, or a look behind the app's continuations). */
  batches: number;
  /** Event-loop turns the loop asked for with `setImmediate` outside spins (fairness, spin mode, new consumers). */
  loopTurns: number;
}

export class DeliveryLoop {
  /** @internal */
  readonly counters: DeliveryCounters = { parks: 0, spinTurns: 0, spins: 0, spinHits: 0, spinYields: 0, spinsInterrupted: 0, batches: 0, loopTurns: 0 };
  private readonly policy: SpinPolicy;
  private draining = false;
  private scheduled = false;
  private closed = false;
  /** When the loop last came from the event loop (ms, performance.now()): bounds microtask-driven stretches. */
  private turnStarted = 0;
  private microHops = 0;
  /** When we last ran out of work (µs, {@link nowMicros}: the clock the peer stamps its rings with). */
  private idleSince = 0;
  /** The adaptive spin under way: when it ends (µs, nowMicros; 0: none), and µs busy-waited so far. */
  private spinUntil = 0;
  private spinSpent = 0;
  /** A slice of the spin waits for its `setImmediate`: a new spin continues in it rather than starting another. */
  private slicePending = false;

  constructor(private readonly deps: DeliveryDeps) {
    this.policy = new SpinPolicy(deps.settings.spinMicros);
  }

  /** Runs the loop on the next event-loop turn (once, however often asked). */
  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    this.counters.loopTurns++;
    setImmediate(this.fromLoop);
  }

  private readonly fromLoop = (): void => {
    this.scheduled = false;
    this.turnStarted = performance.now();
    this.run();
  };

  /** The doorbell rang: learn how long we were idle before the peer wrote, then deliver. */
  onRing(): void {
    const rang = this.deps.wakeup.lastRang;
    if (this.idleSince > 0 && rang > this.idleSince) this.policy.learnGap(rang - this.idleSince);
    this.onEvent();
  }

  /** Called from an event-loop callback (a doorbell, a queue that became readable): deliver now. */
  onEvent(): void {
    this.turnStarted = performance.now();
    this.run();
  }

  /** Stops for good (the session is closing). */
  close(): void {
    this.closed = true;
  }

  /** @internal The spin policy's state (diagnostics and tests). */
  get spinState(): { credit: number; gap: number } {
    return this.policy.state;
  }

  /**
   * Delivers what is waiting (a bounded batch), then returns so that the app's promise continuations — its
   * replies — run before we look again.
   */
  run(): void {
    if (this.draining || this.closed) return;
    this.draining = true;
    if (this.spinUntil !== 0) {
      // A spin between two slices: the event loop brought work (a socket frame, a new consumer) — spinning did
      // not catch it, so it counts as spent for nothing.
      this.spinUntil = 0;
      this.counters.spinsInterrupted++;
      this.policy.spun(this.spinSpent, false);
    }
    this.deps.wakeup.unpark(); // busy: senders need not ring until we park again
    let delivered = 0;
    let budget = 4 * DELIVERY_BATCH;
    try {
      const channels = this.deps.channels();
      while (budget > 0) {
        let pass = 0;
        for (let i = 0; i < channels.length; i++) {
          const c = channels[i]!;
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
      return;
    }
    this.counters.batches++;
    if (budget > 0 && performance.now() - this.turnStarted < LOOP_TURN_MS) {
      // Look again from a microtask queued behind the app's continuations (its next send, its reply): no
      // event-loop turn per wake-up, and in spin mode none per round trip.
      this.microHops = 0;
      void settled.then(this.idleHop);
    } else {
      this.schedule(); // a long stretch or a full batch: timers and I/O get their turn first
    }
  }

  private anyShm(): boolean {
    for (const c of this.deps.channels()) if (c.transport === 'shm') return true;
    return false;
  }

  /** True when a shm channel waits for the reply to a request. */
  private awaitingReply(): boolean {
    const channels = this.deps.channels();
    for (let i = 0; i < channels.length; i++) {
      const c = channels[i]!;
      if (c.transport === 'shm' && c.pendingRequests > 0) return true;
    }
    return false;
  }

  /** True when a channel has a message for someone who takes it; `shm` false: only mq and socket channels. */
  private anyWaiting(shm = true): boolean {
    const channels = this.deps.channels();
    for (let i = 0; i < channels.length; i++) {
      const c = channels[i]!;
      if ((shm || c.transport !== 'shm') && c.readable && c.wantsMessages) return true;
    }
    return false;
  }

  /** Lets pending microtasks (the app's `await` chains) run a few times before idling. */
  private readonly idleHop = (): void => {
    if (this.closed) return;
    if (this.anyWaiting()) this.run();
    else if (++this.microHops < 8) void settled.then(this.idleHop);
    else this.idle();
  };

  /**
   * Nothing to deliver. Spin mode: busy-wait a short turn, then give the event loop a turn and poll again.
   * Otherwise spin if the policy says it pays (only with a shm channel open: spinning polls shared memory and
   * cannot catch mq or socket messages, which wake this side through their own descriptors), then publish
   * parked=1, look once more — a sender that wrote before seeing it did not ring — and sleep until the doorbell.
   */
  private idle(): void {
    if (this.closed) return;
    this.idleSince = nowMicros();
    if (this.deps.spinning()) {
      this.counters.spins++;
      if (this.spinFor(SPIN_MODE_MICROS)) {
        this.run();
        return;
      }
      this.counters.spinTurns++;
      this.schedule();
      return;
    }
    const budget = this.anyShm() ? this.policy.budget(this.deps.wakeup.peerAwake && this.awaitingReply()) : 0;
    if (budget <= 0) {
      this.park();
      return;
    }
    this.counters.spins++;
    this.spinUntil = this.idleSince + budget;
    this.spinSpent = 0;
    if (!this.slicePending) this.spinSlice();
  }

  private readonly sliceFromLoop = (): void => {
    this.slicePending = false;
    // A socket or mq message the event loop queued between two slices was not caught by spinning: delivering
    // it ends the spin as interrupted (see run). Shm messages that came meanwhile count as caught — spinning
    // kept us unparked, so nobody had to ring.
    if (this.spinUntil !== 0 && this.anyWaiting(false)) this.run();
    else this.spinSlice();
  };

  /** One slice of an adaptive spin; the next comes a `setImmediate` later, after what the event loop has due. */
  private readonly spinSlice = (): void => {
    const until = this.spinUntil;
    if (until === 0 || this.closed) return; // delivery ran meanwhile (a ring, a new consumer): this spin is over
    const start = nowMicros();
    const hit = this.spinFor(Math.min(SPIN_SLICE_MICROS, until - start));
    const end = nowMicros();
    this.spinSpent += end - start;
    if (hit) {
      this.spinUntil = 0;
      this.counters.spinHits++;
      this.policy.spun(this.spinSpent, true);
      this.policy.learnGap(end - this.idleSince);
      this.turnStarted = performance.now();
      this.run();
      return;
    }
    if (end < until) {
      this.counters.spinYields++;
      this.slicePending = true;
      setImmediate(this.sliceFromLoop);
      return;
    }
    this.spinUntil = 0;
    this.policy.spun(this.spinSpent, false);
    this.park();
  };

  /** Publishes parked=1, then looks once more: a sender that wrote before seeing it did not ring. */
  private park(): void {
    this.counters.parks++;
    this.deps.wakeup.park();
    if (this.anyWaiting()) this.run();
  }

  /** Busy-waits up to `micros` for a message; true when one arrived. Reads the clock every 64 polls: it costs
   *  more than a poll. */
  private spinFor(micros: number): boolean {
    if (micros <= 0) return this.anyWaiting();
    const until = performance.now() + micros / 1000;
    for (;;) {
      for (let i = 0; i < 64; i++) if (this.anyWaiting()) return true;
      if (performance.now() >= until) return false;
    }
  }
}
