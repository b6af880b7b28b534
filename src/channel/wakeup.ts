/**
 * How one side of a session sleeps and is woken. Each side owns a `parked` word in the session arena and a
 * doorbell (native/doorbell.cc) that, once it knows the peer's, only the peer can ring. A receiver with nothing
 * to do publishes parked=1, looks at its rings once more, and returns to the event loop; a sender that finds
 * the peer parked clears the word (compare-and-swap, so one sender rings) and rings. While both sides are busy
 * nobody rings: messages flow without system calls. The protocol and its model: docs/architecture.md.
 */
import type { Arena, Block, Handle } from '../arena/index.js';
import { ShmxError } from '../errors.js';
import type { Logger } from '../log.js';
import { native, type DoorbellCounters, type NativeDoorbell } from '../native.js';
import { nowMicros } from './clock.js';

/** What one side tells the other at session start (in the session's WELCOME or READY, opaque to the session). */
export interface WakeupHello {
  bell: string;
  control: Handle;
}

const PARKED = 0;
/** Float64 index in the control block: when the peer last rang us (µs, CLOCK_MONOTONIC, shared by processes). */
const RANG_AT = 1;

export class Wakeup {
  private readonly control: Block;
  private readonly parked: Int32Array;
  private readonly rangAt: Float64Array;
  private readonly bell: NativeDoorbell;
  private peerControl: Block | undefined;
  private peerParked: Int32Array | undefined;
  private peerRangAt: Float64Array | undefined;
  private peerKnownFlag = false;
  /** Our last write had to ring the peer (it was parked). */
  private rangLast = true;
  /** Set by the mux once it exists; a ring before that finds no channel to deliver to. */
  private onRing: () => void = () => {};

  /** Made during the session handshake, before the mux: its {@link hello} travels in WELCOME or READY. */
  constructor(private readonly arena: Arena, bellName: string, private readonly peerBellPrefix: string,
    private readonly logger?: Logger) {
    this.control = arena.alloc(64, { align: 64 });
    this.parked = this.control.int32();
    this.rangAt = this.control.float64();
    Atomics.store(this.parked, PARKED, 1); // idle until there is work
    try {
      this.bell = native.createDoorbell(bellName, () => this.onRing());
    } catch (err) {
      this.control.release();
      throw err;
    }
  }

  /** Who is called when the peer rings (the mux's delivery loop). */
  setRingHandler(onRing: () => void): void {
    this.onRing = onRing;
  }

  /** What the peer needs to wake us. */
  hello(): WakeupHello {
    return { bell: this.bell.name, control: this.arena.lend(this.control) };
  }

  /** Learns how to wake the peer. Throws on a malformed or stale hello. */
  meetPeer(hello: unknown): void {
    const h = hello as Partial<WakeupHello>;
    if (typeof h?.bell !== 'string' || !h.bell.startsWith(this.peerBellPrefix) || !/^[A-Za-z0-9._-]{1,107}$/.test(h.bell) ||
      typeof h.control !== 'object') {
      throw new ShmxError('EPROTO', 'malformed wake-up facts from the peer');
    }
    if (this.peerKnownFlag) throw new ShmxError('EPROTO', 'the peer\'s wake-up facts came twice');
    const block = this.arena.borrow(h.control); // borrow() validates the handle
    try {
      if (block.length < 16) throw new ShmxError('EPROTO', 'peer control block too small');
      // From here on only the peer's doorbell can ring ours. Refused (EPERM) when that socket is already
      // connected elsewhere, i.e. it is not the peer's fresh doorbell.
      // False: its doorbell is gone already (the peer is closing or died) — the session learns that from the
      // master socket; our rings just report the peer gone.
      if (!this.bell.connect(h.bell)) this.logger?.debug({ bell: h.bell }, 'the peer\'s doorbell is gone');
    } catch (err) {
      block.release();
      if (err instanceof ShmxError) throw err;
      throw new ShmxError('EPROTO', `cannot connect to the peer's doorbell: ${(err as Error).message}`, { cause: err });
    }
    this.peerControl = block;
    this.peerParked = block.int32();
    this.peerRangAt = block.float64();
    this.peerKnownFlag = true;
  }

  /** @internal This side's doorbell counters (wake-ups and datagrams taken). */
  counters(): DoorbellCounters {
    return this.bell.counters;
  }

  /** We have nothing to do: ask to be rung. */
  park(): void {
    Atomics.store(this.parked, PARKED, 1);
  }

  /** We are busy (or polling): senders need not ring. */
  unpark(): void {
    // Only when it is set: a store on every batch would take the cache line from the peer, which reads this word
    // after every write. (The peer sets it back to 1 only after a failed ring; then it just rings again.)
    if (Atomics.load(this.parked, PARKED) !== 0) Atomics.store(this.parked, PARKED, 0);
  }

  /**
   * After writing: ring the peer if (and only if) it sleeps. Never throws: the message is already committed,
   * and a caller that saw an error would send it again.
   */
  wakePeer(): void {
    const w = this.peerParked;
    if (w !== undefined && Atomics.load(w, PARKED) === 1 && Atomics.compareExchange(w, PARKED, 1, 0) === 1) {
      this.rangLast = true;
      this.peerRangAt![RANG_AT] = nowMicros();
      this.ring(w);
    } else {
      this.rangLast = false;
    }
  }

  /**
   * The peer was awake when we last wrote to it (we did not have to ring) and has not parked since: whatever it
   * sends next reaches us without a wake-up. A hint for the spin policy.
   */
  get peerAwake(): boolean {
    const w = this.peerParked;
    return !this.rangLast && w !== undefined && Atomics.load(w, PARKED) === 0;
  }

  private ring(peerParked: Int32Array | undefined): void {
    try {
      this.bell.ring(); // false: the peer is gone — the session learns it from the master socket
    } catch (err) {
      // We cleared its parked flag: set it again, so that the next write rings again instead of assuming the
      // peer awake.
      if (peerParked !== undefined) Atomics.store(peerParked, PARKED, 1);
      this.logger?.warn({ err, bell: this.bell.name }, 'could not ring the peer\'s doorbell');
    }
  }

  /** When the peer last rang us (µs, see {@link nowMicros}); a hint, written by the peer. */
  get lastRang(): number {
    return this.rangAt[RANG_AT]!;
  }

  /** Rings the peer regardless (it waits for room in a ring we read). */
  ringPeer(): void {
    if (this.peerKnownFlag) this.ring(undefined);
  }

  close(): void {
    this.bell.close();
    if (this.control.held) this.control.release();
    if (this.peerControl?.held) this.peerControl.release();
  }
}
