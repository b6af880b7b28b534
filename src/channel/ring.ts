/**
 * A single-producer/single-consumer ring of variable-size records in shared memory. One process writes, the
 * other reads; neither takes a lock or makes a system call. Every index and length read from the shared
 * header is checked: a corrupt or hostile ring throws ECHANNELCORRUPT, it never makes us read or write outside
 * the ring.
 *
 * Layout (little-endian Int32 words, then data):
 *
 *   0 magic   1 capacity (bytes, power of two)   2 write count   3 read count
 *   4 want-drain: 0, or the bytes of free space the producer waits for (it set it when a record was refused)
 *   ... HEADER_BYTES: data[capacity]
 *
 * Counts are free-running uint32 byte counters; `count & (capacity - 1)` is the position. A record is an
 * 8-byte head [u32 payload length][u32 tag] and the payload, padded to 8 bytes. A record that would cross the
 * end is preceded by a wrap marker (length 0xffffffff) filling the rest of the ring.
 */
import { ShmxError } from '../errors.js';

export const RING_HEADER_BYTES = 64;
const MAGIC = 0x676e6972; // "ring"
const W_MAGIC = 0;
const W_CAPACITY = 1;
const W_WRITE = 2;
const W_READ = 3;
const W_WANT_DRAIN = 4;
const RECORD_HEAD = 8;
const WRAP = 0xffffffff;
/**
 * Copying reads take private copies of up to this many ring bytes at once: one copy per span of records instead
 * of one per record. Below half of `Buffer.poolSize`, so `Buffer.allocUnsafe` serves a span from Node's pool:
 * a body the app keeps pins what a small Buffer of its own would.
 */
const COPY_SPAN = 4088;

/** Bytes a ring of `capacity` occupies in shared memory. */
export function ringBytes(capacity: number): number {
  return RING_HEADER_BYTES + capacity;
}

/** Throws a RangeError unless `capacity` is a power of two in [4 KiB, 1 GiB]. */
export function checkRingCapacity(capacity: number): number {
  if (!Number.isInteger(capacity) || capacity < 4096 || capacity > 2 ** 30 || (capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`ring capacity must be a power of two between 4096 and 2^30, got ${capacity}`);
  }
  return capacity;
}

function corrupt(message: string): ShmxError {
  return new ShmxError('ECHANNELCORRUPT', `channel ring is corrupt: ${message}`);
}

/** One end of a ring. Create the memory with {@link Ring.format}, then attach a writer and a reader. */
export class Ring {
  readonly capacity: number;
  private readonly words: Int32Array;
  private readonly data: Uint8Array;
  private readonly view: DataView;
  private readonly mask: number;
  /** Bytes the last refused write needed (producer side). */
  private wanted = 0;
  /**
   * Producer side: our write count (we are its only writer) and the consumer's read count as we last saw it.
   * The free space they imply can only grow behind our back, so the shared read count is loaded again only
   * when the cached view says a record does not fit.
   */
  private wr: number;
  private rdSeen: number;
  /** Consumer side: the producer's write count as we last loaded it. */
  private wrSeen: number;
  /**
   * Consumer side: our read count. We are the only writer of the shared read count, so we keep it here: a
   * record is consumed (locally) before its visit runs, so a visit that ends the channel and drains the rest
   * (see {@link drain}) starts after it. It is published by {@link publishRead} and {@link giveBack} — once per
   * batch, or once a sixteenth of the ring was read, not per record: the read and write counts share a cache
   * line, and a store per record made the two cores take it from each other for every message.
   */
  private rd: number;
  /** Consumer side: the read count as we last published it. */
  private rdPublished: number;
  /** Consumer, copying reads: the copy of the ring bytes copied last, from count `copiedFrom` on. */
  private copy: Buffer | undefined;
  private copiedFrom = 0;
  /** Set by {@link detach}: the memory is no longer ours; nothing is written to it any more. */
  private detached = false;
  /** Producer: records are written but the write count is published only by {@link publish} (see {@link hold}). */
  private holding = false;
  /** Producer: the open reservation (see {@link reserve}): where its record starts, and its largest body. */
  private reservation: { at: number; max: number } | undefined;

  /** Formats a zeroed region as an empty ring. */
  static format(buffer: SharedArrayBuffer, byteOffset: number, capacity: number): void {
    checkRingCapacity(capacity);
    const words = new Int32Array(buffer, byteOffset, RING_HEADER_BYTES / 4);
    words.fill(0);
    words[W_CAPACITY] = capacity;
    Atomics.store(words, W_MAGIC, MAGIC);
  }

  /** Attaches to a formatted ring; throws ECHANNELCORRUPT if the header does not describe one that fits. */
  constructor(buffer: SharedArrayBuffer, byteOffset: number, byteLength: number) {
    if (byteOffset % 8 !== 0 || byteLength < RING_HEADER_BYTES + 4096) throw corrupt('region too small or misaligned');
    this.words = new Int32Array(buffer, byteOffset, RING_HEADER_BYTES / 4);
    if (Atomics.load(this.words, W_MAGIC) !== MAGIC) throw corrupt('bad magic');
    const capacity = this.words[W_CAPACITY]!;
    if (capacity < 4096 || (capacity & (capacity - 1)) !== 0 || RING_HEADER_BYTES + capacity > byteLength) {
      throw corrupt(`capacity ${capacity} does not fit the ${byteLength}-byte region`);
    }
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.rd = Atomics.load(this.words, W_READ);
    this.rdPublished = this.rd | 0;
    this.wr = Atomics.load(this.words, W_WRITE);
    this.rdSeen = this.rd;
    this.wrSeen = this.rd;
    this.data = new Uint8Array(buffer, byteOffset + RING_HEADER_BYTES, capacity);
    this.view = new DataView(buffer, byteOffset + RING_HEADER_BYTES, capacity);
  }

  /** Largest payload one record can carry. */
  get maxPayload(): number {
    return (this.capacity >>> 1) - RECORD_HEAD;
  }

  // ---- producer side ----

  /**
   * Appends one record with `tag` whose payload is the u32 `prefix` followed by `body` (copied in). Returns
   * false, writing nothing, when the ring lacks space; then publishes in want-drain how much free space the
   * record needs, so that the consumer says when it has made *that much* room (see {@link takeDrainRequest}).
   */
  write(tag: number, prefix: number, body: Uint8Array): boolean {
    const pos = this.place(4 + body.byteLength);
    if (pos < 0) return false;
    this.data.set(body, pos + RECORD_HEAD + 4);
    this.seal(pos, tag, prefix, 4 + body.byteLength);
    return true;
  }

  /**
   * Producer: finds room for a record of `length` payload bytes at the write position (or, past a wrap marker,
   * at 0) and returns where it goes; -1 when there is no room (want-drain is published, as for a refused write).
   * Advances nothing: {@link seal} does.
   */
  private place(length: number): number {
    if (this.detached) throw new ShmxError('ECLOSED', 'write to a released channel ring');
    if (this.reservation !== undefined) throw new ShmxError('EBUSY', 'a reservation is open on this channel: commit or cancel it first');
    if (length > this.maxPayload) throw new RangeError(`record of ${length} bytes exceeds ${this.maxPayload}`);
    const at = this.wr & this.mask;
    const record = (RECORD_HEAD + length + 7) & ~7;
    const tail = this.capacity - at;
    const needed = record <= tail ? record : tail + record;
    if (needed > this.capacity - this.inFlight(false)) {
      // Held records the consumer cannot see yet would make it grant our request for room too early.
      if (this.holding) this.publish();
      if (!this.askForRoom(needed)) {
        this.wanted = needed;
        return -1;
      }
    }
    return record <= tail ? at : 0;
  }

  /** Producer: writes the head of the record placed at `pos` (and the wrap marker before it), then commits it. */
  private seal(pos: number, tag: number, prefix: number, length: number): void {
    const at = this.wr & this.mask;
    if (pos !== at) this.view.setUint32(at, WRAP, true);
    this.view.setUint32(pos, length, true);
    this.view.setUint32(pos + 4, tag >>> 0, true);
    this.view.setUint32(pos + RECORD_HEAD, prefix >>> 0, true);
    const record = (RECORD_HEAD + length + 7) & ~7;
    this.wr = (this.wr + (pos === at ? record : this.capacity - at + record)) | 0;
    // Publishing the count is the commit point: the consumer sees all bytes above or none.
    if (!this.holding) Atomics.store(this.words, W_WRITE, this.wr);
  }

  /**
   * Producer: from now on records are written but not published — the consumer sees none of them until
   * {@link publish}, then all at once (one store of the write count, one look for the peer).
   */
  hold(): void {
    this.holding = true;
  }

  /** Producer: publishes every record written since {@link hold} and stops holding. */
  publish(): void {
    this.holding = false;
    if (!this.detached) Atomics.store(this.words, W_WRITE, this.wr);
  }

  /**
   * Producer, zero-copy: reserves room for a record whose body is at most `maxBody` bytes (after the u32
   * prefix) and returns a view of that body's place in the ring; nothing is visible to the consumer until
   * {@link commit}. Undefined when there is no room (want-drain is published, as for a refused write). One
   * reservation at a time; `write` throws EBUSY while one is open.
   */
  reserve(maxBody: number): Uint8Array | undefined {
    const pos = this.place(4 + maxBody);
    if (pos < 0) return undefined;
    this.reservation = { at: pos, max: maxBody };
    const start = pos + RECORD_HEAD + 4;
    return this.data.subarray(start, start + maxBody);
  }

  /** Producer: commits the open reservation as a record of `tag`, `prefix` and its first `bodyLength` bytes. */
  commit(tag: number, prefix: number, bodyLength: number): void {
    const r = this.reservation;
    if (r === undefined) throw new ShmxError('EBUSY', 'no reservation to commit');
    if (!Number.isInteger(bodyLength) || bodyLength < 0 || bodyLength > r.max) {
      throw new RangeError(`commit length must be an integer between 0 and the reserved ${r.max} bytes`);
    }
    if (this.detached) throw new ShmxError('ECLOSED', 'write to a released channel ring');
    this.reservation = undefined;
    this.seal(r.at, tag, prefix, 4 + bodyLength);
  }

  /** Producer: gives up the open reservation (nothing was written). Idempotent. */
  cancel(): void {
    this.reservation = undefined;
  }

  /** Producer: true while a reservation is open. */
  get reserved(): boolean {
    return this.reservation !== undefined;
  }

  /** Producer: bytes written and not yet read — from the cached read count, or a fresh one (validated). */
  private inFlight(fresh: boolean): number {
    if (fresh) this.rdSeen = Atomics.load(this.words, W_READ);
    const used = (this.wr - this.rdSeen) >>> 0;
    if (used > this.capacity) throw corrupt(`read count is ${(this.rdSeen - this.wr) >>> 0} bytes past the write count`);
    return used;
  }

  /**
   * Producer: true when `needed` bytes are free. Otherwise publishes want-drain = `needed` *before* looking
   * once more: either that look sees the room the consumer made meanwhile, or the consumer's next look at
   * want-drain (after it published its read count) sees our request. This order is what the wake-up model
   * (docs/model/wakeup.pml) checks.
   */
  private askForRoom(needed: number): boolean {
    if (needed <= this.capacity - this.inFlight(true)) return true;
    Atomics.store(this.words, W_WANT_DRAIN, needed);
    if (needed > this.capacity - this.inFlight(true)) return false;
    Atomics.store(this.words, W_WANT_DRAIN, 0);
    return true;
  }

  /**
   * Producer: true when the record refused last would fit now. When it still does not (a wake-up that came
   * early, or for an earlier request), the request for room is made again — a consumer that took it without
   * making enough room must be asked again, or nobody would ever wake us.
   */
  get writable(): boolean {
    return this.askForRoom(this.wanted);
  }

  /** Bytes published and not yet consumed, as a fraction of the capacity (either side; touches no cache). */
  get fill(): number {
    if (this.detached) return 0;
    const used = (Atomics.load(this.words, W_WRITE) - Atomics.load(this.words, W_READ)) >>> 0;
    return Math.min(used, this.capacity) / this.capacity;
  }

  // ---- consumer side ----

  /** True when a record is waiting. */
  get readable(): boolean {
    if (this.detached) return false;
    if (this.wrSeen !== this.rd) return true;
    this.wrSeen = Atomics.load(this.words, W_WRITE);
    return this.wrSeen !== this.rd;
  }

  /**
   * Reads the next record, if any, and calls `visit` with its tag, the payload's u32 prefix and a view of the
   * rest (valid until the read count is published: {@link publishRead} or {@link giveBack}, which the caller
   * does between records and once its batch is over) — or, with `copy`, a private copy of it, the app's to keep
   * (a view of a copy shared with the records around it, copied with them in one go). Returns false when the
   * ring is empty. A payload shorter than its prefix is reported with tag 0 (the channel rejects kind 0). After
   * a {@link detach} (even one made by `visit` itself) nothing is written to the ring. A hostile producer that
   * rewrites published bytes after the copy was taken gets its own garbage delivered, never a read out of bounds:
   * each head is checked in the ring, and a body is sliced from the copy only within the copy.
   */
  read(visit: (tag: number, prefix: number, body: Uint8Array, copied: boolean) => void, copy = false): boolean {
    if (this.detached) return false;
    const read = this.rd >>> 0;
    // The producer's published count only grows: reload it (a cache line shared with the producer) only once
    // we have consumed up to what we saw last.
    if (this.wrSeen === this.rd) this.wrSeen = Atomics.load(this.words, W_WRITE);
    const used = (this.wrSeen - read) >>> 0;
    if (used === 0) return false;
    if (used > this.capacity) throw corrupt(`write count is ${used} bytes ahead of read count`);
    let pos = read & this.mask;
    let consumed = 0;
    if (used < RECORD_HEAD) throw corrupt(`only ${used} bytes published`);
    let length = this.view.getUint32(pos, true);
    if (length === WRAP) {
      consumed = this.capacity - pos;
      pos = 0;
      if (used < consumed + RECORD_HEAD) throw corrupt('wrap marker without a record after it');
      length = this.view.getUint32(0, true);
    }
    if (length > this.maxPayload) throw corrupt(`record length ${length} exceeds ${this.maxPayload}`);
    const record = (RECORD_HEAD + length + 7) & ~7;
    if (consumed + record > used || pos + record > this.capacity) {
      throw corrupt(`record of ${length} bytes runs past the published data`);
    }
    let start = pos + RECORD_HEAD;
    // The head was read (and checked) in the ring; only the body may come from the copy.
    const bytes = copy ? this.copied((read + consumed) | 0, pos, record, used - consumed) : this.data;
    if (copy) start += ((read + consumed - this.copiedFrom) >>> 0) - pos;
    this.rd = (read + consumed + record) | 0;
    if (length < 4) visit(0, 0, bytes.subarray(start, start + length), copy);
    else visit(this.view.getUint32(pos + 4, true), this.view.getUint32(pos + RECORD_HEAD, true), bytes.subarray(start + 4, start + length), copy);
    return true;
  }

  /**
   * Consumer: a private copy holding the record at count `at` (ring position `pos`, `record` bytes, `ahead` bytes
   * published from there, all checked), starting at count {@link copiedFrom}. Copies the record and what follows
   * it up to the ring's end, the published bytes or {@link COPY_SPAN}, unless the last copy holds it already.
   */
  private copied(at: number, pos: number, record: number, ahead: number): Buffer {
    const copy = this.copy;
    if (copy !== undefined && ((at - this.copiedFrom) >>> 0) + record <= copy.byteLength) return copy;
    const span = Math.max(record, Math.min(ahead, this.capacity - pos, COPY_SPAN));
    const fresh = Buffer.allocUnsafe(span);
    fresh.set(this.data.subarray(pos, pos + span));
    this.copy = fresh;
    this.copiedFrom = at;
    return fresh;
  }

  /**
   * Consumer: gives back the space of every record read so far (stores the read count). Views of those records
   * are invalid from here on. Call it when a batch of reads is over. `rd` may have moved on during a visit (a
   * drain inside it). Never after {@link detach}.
   */
  publishRead(): void {
    const c = this.rd | 0;
    if (this.detached || c === this.rdPublished) return;
    this.rdPublished = c;
    Atomics.store(this.words, W_READ, c);
  }

  /**
   * Consumer, between two reads of a long batch: gives the space read so far back once it is a sixteenth of the
   * ring, so that a producer waiting for room need not wait for the batch's end. Returns true when that granted
   * the producer's request for room — only once half the ring is free: it refills while we read on, instead of
   * both taking turns across a wake-up, and a wake-up brings it a good share of the ring, not one record's room
   * (less stays for the batch's end, {@link takeDrainRequest}). The caller rings the producer.
   */
  giveBack(): boolean {
    if (((this.rd - this.rdPublished) >>> 0) < this.capacity >>> 4) return false;
    this.publishRead();
    return this.takeDrainRequest(this.capacity >>> 1);
  }

  /**
   * Consumer: reads every record still waiting and hands each to `visit` (to take back what it carries), so
   * that nothing published is left unaccounted for. Safe inside a {@link read}'s visit: it continues after
   * the record being visited. Throws ECHANNELCORRUPT like `read`.
   */
  drain(visit: (tag: number, prefix: number, body: Uint8Array) => void): number {
    let n = 0;
    try {
      while (this.read(visit)) n++;
    } finally {
      this.publishRead();
    }
    return n;
  }

  /**
   * Takes over the consumer's role of a ring whose reader is gone for good (the peer died): continues from the
   * read count it published last. Never while the peer may still read.
   */
  takeOverReading(): void {
    if (this.detached) return;
    this.rd = Atomics.load(this.words, W_READ);
    this.rdPublished = this.rd | 0;
    this.wrSeen = this.rd; // forces a fresh load of the write count on the next read
    this.copy = undefined; // what was copied before says nothing about what is read from here
  }

  /** The memory is about to be released: from now on this end neither reads nor writes it. Idempotent. */
  detach(): void {
    this.detached = true;
  }

  /**
   * Consumer, after publishing its read count: true (once) when the producer waits for room and the room it
   * asked for is there now. A request the free space does not cover yet stays for a later look — waking the
   * producer early would only make it ask again. A garbage request (more than the ring holds) is never
   * granted: that only stalls the producer that wrote it. `atLeast`: grant only once that much is free, too.
   */
  takeDrainRequest(atLeast = 0): boolean {
    if (this.detached) return false;
    const wanted = Atomics.load(this.words, W_WANT_DRAIN);
    if (wanted === 0) return false;
    // The room the producer can see: up to the read count we published.
    const used = (Atomics.load(this.words, W_WRITE) - this.rdPublished) >>> 0;
    if (used > this.capacity || wanted < 0 || Math.max(wanted, atLeast) > this.capacity - used) return false;
    return Atomics.compareExchange(this.words, W_WANT_DRAIN, wanted, 0) === wanted;
  }
}
