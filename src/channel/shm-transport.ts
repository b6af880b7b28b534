/**
 * The default transport: two rings in one block of the session arena, one per direction. Sending and
 * receiving touch only shared memory; the session's wake-up (see wakeup.ts) rings the peer only when it sleeps.
 */
import type { Block } from '../arena/index.js';
import { Ring, ringBytes } from './ring.js';
import type { RecordVisitor, Transport } from './transport.js';

/** How a shm transport wakes its peer: the session's wake-up (see wakeup.ts), shared by all its channels. */
export interface PeerWaker {
  /** After committing records: ring the peer only if it sleeps. */
  wakePeer(): void;
  /** Ring the peer regardless (it waits for room in a ring we read, and has it now). */
  ringPeer(): void;
}

/** Bytes of the block holding both rings of a channel. */
export function ringPairBytes(capacity: number): number {
  return 2 * ringBytes(capacity);
}

/** Formats both rings in a fresh block (the opener does this before lending it). */
export function formatRingPair(block: Block, capacity: number): void {
  Ring.format(block.buffer, block.offset, capacity);
  Ring.format(block.buffer, block.offset + ringBytes(capacity), capacity);
}

export class ShmTransport implements Transport {
  readonly kind = 'shm' as const;
  readonly maxInline: number;
  private readonly out: Ring;
  private readonly in: Ring;
  private stopped = false;
  private released = false;
  /** Nesting depth of {@link cork}: records are published (and the peer woken) when it drops to 0. */
  private corked = 0;
  /** Records written since {@link cork}. */
  private heldRecords = 0;

  /**
   * @param block the ring pair, held by this side (the opener allocated it, the accepter borrowed it)
   * @param opener which half is ours to write: the opener writes the first ring
   * @param waker the session's wake-up: after each record we commit, it rings the peer if it sleeps; when the
   *   peer waits for room in the ring we read (and now has it), it rings regardless
   */
  constructor(private readonly block: Block, opener: boolean, private readonly waker: PeerWaker) {
    const half = block.length >>> 1;
    const first = new Ring(block.buffer, block.offset, half);
    const second = new Ring(block.buffer, block.offset + half, half);
    this.out = opener ? first : second;
    this.in = opener ? second : first;
    this.maxInline = this.out.maxPayload - 4;
  }

  write(tag: number, requestId: number, body: Uint8Array): boolean {
    if (!this.out.write(tag, requestId, body)) return false;
    if (this.corked === 0) this.waker.wakePeer(); // the record is committed: a sleeping peer must look
    else this.heldRecords++;
    return true;
  }

  cork(): void {
    if (this.corked++ === 0) this.out.hold();
  }

  uncork(): void {
    if (this.corked === 0 || --this.corked > 0) return;
    this.out.publish();
    // Some may have been published already (a batch that filled the ring publishes before asking for room):
    // any record written while corked means the peer must look.
    if (this.heldRecords > 0) this.waker.wakePeer();
    this.heldRecords = 0;
  }

  reserve(maxBody: number): Uint8Array | undefined {
    return this.out.reserve(maxBody);
  }

  commit(tag: number, requestId: number, bodyLength: number): void {
    this.out.commit(tag, requestId, bodyLength);
    if (this.corked === 0) this.waker.wakePeer();
  }

  cancelReserve(): void {
    this.out.cancel();
  }

  read(limit: number, deliver: RecordVisitor, copies = false): number {
    let n = 0;
    try {
      while (n < limit && !this.stopped && this.in.read(deliver, copies)) {
        n++;
        if (this.in.giveBack()) this.waker.ringPeer(); // a long batch gives space back as it goes
      }
    } finally {
      // One store of the read count per batch (see Ring.publishRead); a corrupt ring still gives back what was read.
      this.in.publishRead();
    }
    if (!this.stopped && this.in.takeDrainRequest()) this.waker.ringPeer();
    return n;
  }

  get readable(): boolean {
    return this.in.readable;
  }

  get writable(): boolean {
    return this.out.writable;
  }

  fill(): { out: number; in: number } {
    return { out: this.out.fill, in: this.in.fill };
  }

  resume(): void {
    // rings need no arming: the wake-up covers every channel
  }

  stop(): void {
    this.stopped = true;
  }

  discardInbound(visit: RecordVisitor): void {
    if (!this.released) this.in.drain(visit);
  }

  discardOutbound(visit: RecordVisitor): void {
    if (this.released) return;
    this.out.takeOverReading();
    this.out.drain(visit);
  }

  close(): void {
    if (this.released) return;
    this.released = true;
    this.stopped = true;
    // A read in progress (close from inside a 'message' handler) must not publish into released memory.
    this.in.detach();
    this.out.detach();
    try {
      if (this.block.held) this.block.release();
    } catch {
      // the arena closed first: its close released every hold
    }
  }
}
