/**
 * The arena engine: one instance per open `Arena` in a process. It owns the process-local view of the shared
 * structures (mapped segments, validated slabs, this instance's slot and holder bit) and implements alloc,
 * free, lend and borrow. `Arena` (arena.ts) is the public façade over it.
 *
 * Invariants the code relies on:
 * - A block state word is the truth: 0 ⇔ free; a process may only clear its own holder bit, or (recovery,
 *   close) the bit of a dead slot / of itself.
 * - Slabs are never returned to the page pool, so a slab block's words stay at the same place forever.
 * - Unit descriptors, the segment table and slab lists change only under the page lock.
 * - Every index read from shared memory is range-checked before use; a violation faults the arena
 *   (`EARENACORRUPT`, this instance unusable afterwards, the process keeps running).
 * - A segment truncated under us (truncation.ts) faults the arena with `ESEGMENTTRUNCATED`; that cause wins over
 *   any `EARENACORRUPT` the zero pages it left behind made us see.
 */
import { hasCode, ShmxError } from '../errors.js';
import { native } from '../native.js';
import { Block } from './block.js';
import { arenaIdString, checkHandle, readHandle, writeHandle, type Handle } from './handle.js';
import {
  H_CLASS_HEADS,
  H_ID_HI,
  H_ID_LO,
  H_SEG_COUNT,
  H_SEG_NONCES,
  H_SEG_TABLE,
  H_UNITS,
  INFLIGHT_ONE,
  KIND_CONT,
  KIND_LARGE,
  KIND_SHIFT,
  KIND_SLAB,
  MAX_INFLIGHT,
  MAX_SEGMENTS,
  MAX_SMALL,
  PID_TOKEN,
  SEG_ENTRY_WORDS,
  SEG_NONCE_WORDS,
  U_AUX,
  U_DESC,
  U_GEN,
  U_STATE,
  UNIT,
  UNIT_ENTRY_WORDS,
  VALUE_MASK,
  headerName,
  segmentName,
} from './layout.js';
import { ACQUIRED, acquirePageLock, releasePageLock, STOLEN } from './page-lock.js';
import { commitLarge, commitSlab, findRun, freeRun, grow } from './pages.js';
import { lockRecovery, recoverDeadSlots } from './recovery.js';
import { CLASS_COUNT, classFor, classForAligned, SIZE_CLASSES } from './size-classes.js';
import { findSegment, makeSegment, type Segment } from './segments.js';
import { Slab, slabHeaderValid, slabMarkFree, slabTryAlloc } from './slab.js';
import { faultedSegment, noticeSegmentFaults, segmentTruncated, watchSegments, type SegmentWatcher } from './truncation.js';

/** The subset of a pino logger the arena uses. */
export interface ArenaLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Reported when a Block is garbage-collected while still held (its hold is reclaimed at close). */
export interface LeakInfo {
  /** Arena name. */
  arena: string;
  /** Global offset of the block (as in its handles). */
  offset: number;
}

/** Process-local options of an open arena. */
export interface CoreOptions {
  lockTimeoutMs: number;
  logger: ArenaLogger | (() => ArenaLogger);
  onLeak: ((info: LeakInfo) => void) | undefined;
  /** Which Blocks are registered for leak reports. */
  trackLeaks: 'all' | 'large' | 'none';
  /** May refuse a growth by throwing (see ArenaOpenOptions.beforeGrow). */
  beforeGrow?: ((growth: ArenaGrowth) => void) | undefined;
}

/** A growth about to happen (or refused at the ceiling), as `beforeGrow` sees it. */
export interface ArenaGrowth {
  /** Arena name. */
  arena: string;
  /** Bytes the request needs in one run (a slab's or a large block's units). */
  neededBytes: number;
  /** Size of the segment that would be added (0 when over the ceiling). */
  growBytes: number;
  /** Data bytes reserved before this growth (all committed segments). */
  reservedBytes: number;
  /** The arena's ceiling. */
  maxBytes: number;
  /** True when the ceiling (maxBytes, or the 64-segment table) leaves no room: growth fails after the hook. */
  overCeiling: boolean;
}

/** Facts read (and validated) from the header at open. */
export interface HeaderFacts {
  maxUnits: number;
  growUnits: number;
  mode: number;
}

export class ArenaCore implements SegmentWatcher {
  readonly name: string;
  readonly hdr: Int32Array;
  readonly maxUnits: number;
  readonly growUnits: number;
  readonly mode: number;
  /** 16 hex digits, unique per created arena (handles carry it). */
  readonly id: string;
  /** The id's two words (uint32), as encoded handles carry them. */
  readonly idLo: number;
  readonly idHi: number;
  readonly options: CoreOptions;

  /** Mapped data segments, in unit order. */
  segments: Segment[] = [];
  /** Units covered by the mapped segments. */
  segEnd = 0;
  /** Validated slabs by first unit. */
  readonly slabs = new Map<number, Slab>();
  /** The slab this process allocates from, per class. */
  readonly current: (Slab | null)[] = new Array<Slab | null>(CLASS_COUNT).fill(null);
  /** Our slot, holder bit and page-lock token. */
  slot = -1;
  bit = 0;
  token: number;
  /** Set once the arena is found corrupt or truncated: every later call throws it. */
  failure: ShmxError | null = null;
  /** The `ESEGMENTTRUNCATED` fault, once one of our segments was found truncated. */
  truncation: ShmxError | null = null;
  /** Called (in a microtask) with {@link truncation} when it is found. */
  readonly truncationListeners = new Set<(err: ShmxError) => void>();
  private readonly unwatch: () => void;
  closed = false;
  /** Blocks this instance holds through more than one Block object: global offset → extra holds. */
  readonly extraHolds = new Map<number, number>();
  private registry: FinalizationRegistry<number> | null = null;
  /** Registry for small blocks too (trackLeaks 'all'); null otherwise. */
  private smallRegistry: FinalizationRegistry<number> | null = null;
  /** Scratch result of walkClass (avoids an object per call). */
  private walkIdx = -1;

  constructor(name: string, hdr: Int32Array, facts: HeaderFacts, options: CoreOptions) {
    this.name = name;
    this.hdr = hdr;
    this.maxUnits = facts.maxUnits;
    this.growUnits = facts.growUnits;
    this.mode = facts.mode;
    this.idLo = Atomics.load(hdr, H_ID_LO) >>> 0;
    this.idHi = Atomics.load(hdr, H_ID_HI) >>> 0;
    this.id = arenaIdString(this.idLo, this.idHi);
    this.options = options;
    this.token = PID_TOKEN | process.pid;
    if (options.trackLeaks !== 'none') {
      this.registry = new FinalizationRegistry((offset: number) => this.reportLeak(offset));
      if (options.trackLeaks === 'all') this.smallRegistry = this.registry;
    }
    this.unwatch = watchSegments(this);
  }

  // ---------------------------------------------------------------- faults and state

  /** Faults the arena: records and throws `EARENACORRUPT` — or `ESEGMENTTRUNCATED` when zero pages left by a
   *  truncation are what looks corrupt. */
  corrupt(message: string): never {
    noticeSegmentFaults();
    if (this.failure === null) {
      this.failure = new ShmxError('EARENACORRUPT', `arena ${this.name} is corrupt: ${message}`, { resource: this.name });
    }
    throw this.failure;
  }

  /** Throws unless the arena can be used (ECLOSED, or the recorded EARENACORRUPT / ESEGMENTTRUNCATED). */
  ensureUsable(): void {
    noticeSegmentFaults();
    if (this.closed) throw new ShmxError('ECLOSED', `arena ${this.name} is closed`, { resource: this.name });
    if (this.failure !== null) throw this.failure;
  }

  /**
   * Looks whether one of our mappings was truncated (called by truncation.ts after a SIGBUS was handled, and
   * with `faultedSegment` names). Records `ESEGMENTTRUNCATED` as the failure — replacing an `EARENACORRUPT` the
   * zero pages may have caused — and tells the listeners in a microtask, outside whatever operation noticed.
   */
  checkSegments(): void {
    if (this.closed || this.truncation !== null) return;
    const buffers: [SharedArrayBuffer, string][] = [[this.hdr.buffer as SharedArrayBuffer, headerName(this.name)]];
    for (const seg of this.segments) buffers.push([seg.buffer, seg.name]);
    const segment = faultedSegment(buffers);
    if (segment !== undefined) this.truncated(segment);
  }

  /**
   * Touches the last word of the header and of every mapped data segment: any shrink removes the last page, so
   * a truncation nothing has touched yet raises its SIGBUS here (handled: the word reads zero). A handful of
   * loads; callers (keep-alive ticks, `Arena.checkTruncated`) then notice the epoch.
   */
  probeSegments(): void {
    if (this.closed) return;
    Atomics.load(this.hdr, this.hdr.length - 1);
    for (const seg of this.segments) Atomics.load(seg.i32, seg.i32.length - 1);
  }

  /** Faults the arena with `ESEGMENTTRUNCATED` for `segment` (found truncated, or shorter than it must be). */
  truncated(segment: string): ShmxError {
    if (this.truncation === null) {
      const err = segmentTruncated(`arena ${this.name}`, segment);
      this.truncation = err;
      this.failure = err;
      // The listeners of now: whoever noticed may close the arena (dropping them) before the microtask runs.
      const listeners = [...this.truncationListeners];
      queueMicrotask(() => {
        for (const listener of listeners) {
          try {
            listener(err);
          } catch (e) {
            this.logger().warn({ arena: this.name, err: e }, 'a truncation listener threw');
          }
        }
      });
    }
    return this.truncation;
  }

  /** Stops watching for truncation (close). */
  unwatchSegments(): void {
    this.unwatch();
    this.truncationListeners.clear();
  }

  /** True while the header segment's name exists (false once the arena was destroyed/unlinked). */
  headerExists(): boolean {
    try {
      native.shmSize(headerName(this.name));
      return true;
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /** Throws ECLOSED: the arena's names were unlinked (not a fault: nothing is wrong with the memory). */
  destroyed(): never {
    throw new ShmxError('ECLOSED', `arena ${this.name} was destroyed (its segments are unlinked)`, {
      resource: this.name,
    });
  }

  stale(message: string): never {
    noticeSegmentFaults(); // zero pages left by a truncation make every handle look stale: say what happened
    if (this.truncation !== null) throw this.truncation;
    throw new ShmxError('ESTALEHANDLE', `arena ${this.name}: ${message}`, { resource: this.name });
  }

  logger(): ArenaLogger {
    const l = this.options.logger;
    return typeof l === 'function' ? l() : l;
  }

  // ---------------------------------------------------------------- segments and units

  /** Maps segments committed since we last looked; validates every table entry. */
  refreshSegments(): void {
    const hdr = this.hdr;
    const count = Atomics.load(hdr, H_SEG_COUNT);
    if (count < 0 || count > MAX_SEGMENTS) this.corrupt(`segment count ${count}`);
    if (count < this.segments.length) this.corrupt(`segment count went down to ${count}`);
    for (let i = this.segments.length; i < count; i++) {
      const first = Atomics.load(hdr, H_SEG_TABLE + i * SEG_ENTRY_WORDS);
      const units = Atomics.load(hdr, H_SEG_TABLE + i * SEG_ENTRY_WORDS + 1);
      if (first !== this.segEnd || units < 1 || first + units > this.maxUnits) {
        this.corrupt(`segment table entry ${i} is {first ${first}, units ${units}}`);
      }
      const name = segmentName(
        this.name, i, Atomics.load(hdr, H_SEG_NONCES + i * SEG_NONCE_WORDS), Atomics.load(hdr, H_SEG_NONCES + i * SEG_NONCE_WORDS + 1),
      );
      let buffer: SharedArrayBuffer;
      try {
        buffer = native.shmMap(name);
      } catch (err) {
        if (!this.headerExists()) this.destroyed();
        this.corrupt(`segment ${i} cannot be mapped (${(err as Error).message})`);
      }
      // Shrunk before we mapped it: refuse it rather than map less than the table says is there.
      if (buffer.byteLength < units * UNIT) throw this.truncated(name);
      this.segments.push(makeSegment(i, name, first, units, buffer));
      this.segEnd = first + units;
    }
  }

  /** The segment holding `unit`, mapping new segments when needed; undefined past the committed end. */
  segmentOf(unit: number): Segment | undefined {
    if (unit >= this.segEnd) this.refreshSegments();
    return findSegment(this.segments, unit);
  }

  /** Header word index of field `field` of unit `unit` (caller checked `unit < maxUnits`). */
  unitWord(unit: number, field: number): number {
    return H_UNITS + unit * UNIT_ENTRY_WORDS + field;
  }

  /** The validated slab whose first unit is `unit` (the descriptor must say SLAB). */
  slabAt(unit: number): Slab {
    const cached = this.slabs.get(unit);
    if (cached !== undefined) return cached;
    const hdr = this.hdr;
    const seg = this.segmentOf(unit);
    if (seg === undefined) return this.corrupt(`slab at unit ${unit} is outside every segment`);
    const d = Atomics.load(hdr, this.unitWord(unit, U_DESC));
    const aux = Atomics.load(hdr, this.unitWord(unit, U_AUX));
    const cls = SIZE_CLASSES[aux - 1];
    if (d >>> KIND_SHIFT !== KIND_SLAB || cls === undefined) return this.corrupt(`unit ${unit} is not a slab`);
    if ((d & VALUE_MASK) !== cls.units || unit + cls.units > seg.endUnit) {
      return this.corrupt(`slab at unit ${unit} has a bad run length`);
    }
    if (!slabHeaderValid(seg, unit, cls)) return this.corrupt(`slab header at unit ${unit} is invalid`);
    const slab = new Slab(unit, seg, cls, this.slot < 0 ? 0 : this.slot * 7);
    this.slabs.set(unit, slab);
    return slab;
  }

  /** First slab of class `c`'s list, or null (validated). */
  classHead(c: number): Slab | null {
    const t = Atomics.load(this.hdr, H_CLASS_HEADS + c);
    return this.linkTarget(t, c);
  }

  /** Follows a list link (unit + 1) of class `c`; null at the end. */
  linkTarget(t: number, c: number): Slab | null {
    if (t === 0) return null;
    if (t < 1 || t > this.maxUnits) return this.corrupt(`slab link ${t} out of range`);
    const slab = this.slabAt(t - 1);
    if (slab.cls.index !== c) return this.corrupt(`slab at unit ${t - 1} is linked into the wrong class`);
    return slab;
  }

  // ---------------------------------------------------------------- page lock

  /** Takes the page lock; after stealing it from a dead holder, runs lock recovery. */
  lock(): void {
    const r = acquirePageLock(this.hdr, this.token, this.options.lockTimeoutMs, this.name, (v) =>
      this.corrupt(`page lock word holds ${v}`),
    );
    if (r === STOLEN) {
      try {
        lockRecovery(this);
      } catch (err) {
        releasePageLock(this.hdr, this.token);
        throw err;
      }
      this.logger().info({ arena: this.name }, 'page lock taken from a dead holder; unit table recovered');
    } else if (r !== ACQUIRED) {
      throw new Error('unreachable');
    }
  }

  unlock(): void {
    if (!releasePageLock(this.hdr, this.token)) this.corrupt('the page lock was taken from us while held');
  }

  // ---------------------------------------------------------------- alloc

  /** Allocates `size` bytes (validated by the caller: integer 1..maxBytes, align power of two ≤ 4096). */
  alloc(size: number, align: number): Block {
    if (size <= MAX_SMALL) {
      const c = align <= 16 ? classFor(size) : classForAligned(size, align);
      const slab = this.current[c]!;
      if (slab !== null) {
        const idx = slabTryAlloc(slab, this.bit);
        if (idx >= 0) return this.smallBlock(slab, idx, size);
      }
      return this.allocSmallSlow(c, size);
    }
    return this.allocLarge(size);
  }

  private smallBlock(slab: Slab, idx: number, size: number): Block {
    const gen = (Atomics.add(slab.i32, slab.genW + idx, 1) + 1) >>> 0;
    const b = new Block(this, slab, idx, slab.segment.buffer, slab.dataOffset + idx * slab.size, size, gen);
    if (this.smallRegistry !== null) this.smallRegistry.register(b, slab.globalData + idx * slab.size, b);
    return b;
  }

  /**
   * Walks class `c`'s list trying each slab. With `all` false only slabs whose free count is positive are
   * tried (lock-free pass); with `all` true every slab's bitmap is scanned (locked pass, so a slab is only
   * created when every block of the class is taken). On success returns the slab and sets walkIdx.
   */
  private walkClass(c: number, all: boolean): Slab | null {
    const bit = this.bit;
    let slab = this.classHead(c);
    let steps = 0;
    while (slab !== null) {
      if (all || Atomics.load(slab.i32, slab.freeW) > 0) {
        const idx = slabTryAlloc(slab, bit);
        if (idx >= 0) {
          this.walkIdx = idx;
          return slab;
        }
      }
      if (++steps > this.maxUnits) {
        if (all) this.corrupt(`slab list of class ${c} has a cycle`);
        return null; // a concurrent list rebuild may show a transient loop; the locked pass decides
      }
      slab = this.linkTarget(Atomics.load(slab.i32, slab.nextW), c);
    }
    return null;
  }

  private allocSmallSlow(c: number, size: number): Block {
    let slab = this.walkClass(c, false);
    if (slab === null) {
      this.lock();
      try {
        slab = this.walkClass(c, true);
        if (slab === null) {
          const cls = SIZE_CLASSES[c]!;
          let u = findRun(this, cls.units);
          if (u < 0 && recoverDeadSlots(this, true) > 0) {
            slab = this.walkClass(c, true);
            if (slab === null) u = findRun(this, cls.units);
          }
          if (slab === null) {
            if (u < 0) u = grow(this, cls.units);
            slab = commitSlab(this, u, cls);
            this.walkIdx = slabTryAlloc(slab, this.bit);
            if (this.walkIdx < 0) this.corrupt(`fresh slab at unit ${u} has no free block`);
          }
        }
      } finally {
        this.unlock();
      }
    }
    this.current[c] = slab;
    return this.smallBlock(slab, this.walkIdx, size);
  }

  private allocLarge(size: number): Block {
    const k = Math.ceil(size / UNIT);
    if (k > this.maxUnits) {
      throw new ShmxError('EARENAFULL', `arena ${this.name}: ${size} bytes exceed maxBytes`, { resource: this.name });
    }
    let u: number;
    let gen: number;
    this.lock();
    try {
      u = findRun(this, k);
      if (u < 0 && recoverDeadSlots(this, true) > 0) u = findRun(this, k);
      if (u < 0) u = grow(this, k);
      gen = commitLarge(this, u, k, size);
    } finally {
      this.unlock();
    }
    const seg = this.segmentOf(u)!;
    const b = new Block(this, null, u, seg.buffer, (u - seg.firstUnit) * UNIT, size, gen >>> 0);
    b._cap = k * UNIT;
    if (this.registry !== null) this.registry.register(b, u * UNIT, b);
    return b;
  }

  // ---------------------------------------------------------------- release / lend / borrow

  private checkOwnBlock(block: Block): void {
    if (!(block instanceof Block) || block._owner !== this) {
      throw new TypeError('block does not belong to this arena instance');
    }
    this.ensureUsable();
    if (!block._held) this.stale('block already released');
  }

  /** Lets go of one hold on `block`; frees it when it was the last hold of the last holder. */
  releaseBlock(block: Block): void {
    this.checkOwnBlock(block);
    block._held = false;
    const registry = block._slab === null ? this.registry : this.smallRegistry;
    if (registry !== null) registry.unregister(block);
    if (this.extraHolds.size !== 0) {
      const key = block.arenaOffset;
      const extra = this.extraHolds.get(key);
      if (extra !== undefined) {
        if (extra === 1) this.extraHolds.delete(key);
        else this.extraHolds.set(key, extra - 1);
        return;
      }
    }
    const bit = this.bit;
    const slab = block._slab;
    if (slab !== null) {
      const i32 = slab.i32;
      const sw = slab.stateW + block._index;
      let s = Atomics.compareExchange(i32, sw, bit, 0);
      if (s === bit) {
        slabMarkFree(slab, block._index);
        return;
      }
      for (;;) {
        if ((s & bit) === 0) this.corrupt(`holder bit vanished from block ${block.arenaOffset}`);
        const ns = s & ~bit;
        const r = Atomics.compareExchange(i32, sw, s, ns);
        if (r === s) {
          if (ns === 0) slabMarkFree(slab, block._index);
          return;
        }
        s = r;
      }
    }
    this.releaseLarge(block._index, bit);
  }

  /** Clears `bit` from the large block at `unit`; the last holder frees the run under the page lock. */
  releaseLarge(unit: number, bit: number): void {
    const hdr = this.hdr;
    const sw = this.unitWord(unit, U_STATE);
    for (;;) {
      const s = Atomics.load(hdr, sw);
      if ((s & bit) === 0) this.corrupt(`holder bit vanished from large block at unit ${unit}`);
      const ns = s & ~bit;
      if (ns !== 0) {
        if (Atomics.compareExchange(hdr, sw, s, ns) === s) return;
        continue;
      }
      this.lock();
      try {
        if (Atomics.compareExchange(hdr, sw, s, 0) === s) {
          const d = Atomics.load(hdr, this.unitWord(unit, U_DESC));
          if (d >>> KIND_SHIFT !== KIND_LARGE) this.corrupt(`large block at unit ${unit} lost its descriptor`);
          freeRun(this, unit, d & VALUE_MASK);
          return;
        }
      } finally {
        this.unlock();
      }
    }
  }

  /** Adds one in-flight lend to `block` (which we hold) and returns its handle. */
  lendBlock(block: Block): Handle {
    this.addLend(block);
    return { arena: this.id, offset: block.arenaOffset, length: block.length, generation: block.generation };
  }

  /** Adds one in-flight lend to `block` and returns the handle's 32 bytes (the channel's path: no id string). */
  lendEncoded(block: Block): Uint8Array {
    this.addLend(block);
    return writeHandle(this.idLo, this.idHi, block.arenaOffset, block.length, block.generation);
  }

  private addLend(block: Block): void {
    this.checkOwnBlock(block);
    const slab = block._slab;
    const i32 = slab !== null ? slab.i32 : this.hdr;
    const sw = slab !== null ? slab.stateW + block._index : this.unitWord(block._index, U_STATE);
    const bit = this.bit;
    let s = Atomics.load(i32, sw);
    for (;;) {
      if ((s & bit) === 0) this.corrupt(`holder bit vanished from block ${block.arenaOffset}`);
      if (s >>> 24 >= MAX_INFLIGHT) {
        throw new ShmxError('EARENABUSY', `arena ${this.name}: block has ${MAX_INFLIGHT} lends in flight`, {
          resource: this.name,
        });
      }
      const r = Atomics.compareExchange(i32, sw, s, (s + INFLIGHT_ONE) | 0);
      if (r === s) break;
      s = r;
    }
  }

  /** Validates a handle and takes one hold on its block (consuming one in-flight lend). */
  borrow(input: Handle | Uint8Array): Block {
    let h: { offset: number; length: number; generation: number };
    if (input instanceof Uint8Array) {
      // Encoded (the channel's path): compare the id words, build no string.
      const w = readHandle(input);
      this.ensureUsable();
      if (w.idLo !== this.idLo || w.idHi !== this.idHi) this.stale('handle belongs to another arena');
      h = w;
    } else {
      const p = checkHandle(input);
      this.ensureUsable();
      if (p.arena !== this.id) this.stale('handle belongs to another arena');
      h = p;
    }
    const off = h.offset;
    const u = Math.floor(off / UNIT);
    if (u >= this.maxUnits) this.stale('handle offset is outside the arena');
    const seg = this.segmentOf(u);
    if (seg === undefined) this.stale('handle offset is outside the arena');
    const hdr = this.hdr;
    let first = u;
    let d = Atomics.load(hdr, this.unitWord(u, U_DESC));
    let kind = d >>> KIND_SHIFT;
    if (kind === KIND_CONT) {
      const back = d & VALUE_MASK;
      if (back < 1 || back > u - seg.firstUnit) this.corrupt(`unit ${u} has a bad continuation distance ${back}`);
      first = u - back;
      d = Atomics.load(hdr, this.unitWord(first, U_DESC));
      kind = d >>> KIND_SHIFT;
      if ((d & VALUE_MASK) <= back) {
        // A large run may have been freed (and the unit reused) since we read the continuation: only when
        // the continuation still stands is a short slab (slabs are permanent) a corruption.
        const again = Atomics.load(hdr, this.unitWord(u, U_DESC));
        if (kind === KIND_SLAB && again === ((KIND_CONT << KIND_SHIFT) | back)) {
          this.corrupt(`slab at unit ${first} is shorter than its continuation ${u}`);
        }
        this.stale('handle points into a run that no longer exists');
      }
    }
    let block: Block;
    if (h.length > MAX_SMALL) {
      if (kind !== KIND_LARGE || first !== u || off % UNIT !== 0) this.stale('no large block at the handle offset');
      const k = d & VALUE_MASK;
      if (u + k > seg.endUnit) this.corrupt(`large run at unit ${u} crosses its segment`);
      if (h.length > k * UNIT) this.stale('handle length exceeds the block');
      const had = this.borrowWord(hdr, this.unitWord(u, U_STATE), this.unitWord(u, U_GEN), h.generation);
      block = new Block(this, null, u, seg.buffer, (u - seg.firstUnit) * UNIT, h.length, h.generation);
      block._cap = k * UNIT;
      if (had) this.addExtraHold(off);
    } else {
      if (kind !== KIND_SLAB) this.stale('no small block at the handle offset');
      const slab = this.slabAt(first);
      const rel = off - slab.globalData;
      if (rel < 0 || rel % slab.size !== 0) this.stale('handle offset is not a block start');
      const idx = rel / slab.size;
      if (idx >= slab.count) this.stale('handle offset is not a block start');
      if (h.length > slab.size) this.stale('handle length exceeds the block');
      const had = this.borrowWord(slab.i32, slab.stateW + idx, slab.genW + idx, h.generation);
      block = new Block(this, slab, idx, seg.buffer, slab.dataOffset + idx * slab.size, h.length, h.generation);
      if (had) this.addExtraHold(off);
    }
    const registry = block._slab === null ? this.registry : this.smallRegistry;
    if (registry !== null) registry.register(block, off, block);
    return block;
  }

  /**
   * The borrow CAS: requires an in-flight lend, moves it to our holder bit; then re-checks the generation
   * and undoes on mismatch. Returns whether our bit was already set (another Block of ours holds it).
   */
  private borrowWord(i32: Int32Array, sw: number, gw: number, generation: number): boolean {
    const bit = this.bit;
    let s = Atomics.load(i32, sw);
    let had: boolean;
    for (;;) {
      if (s >>> 24 === 0) this.stale('block is not lent (freed, reused, already borrowed or never lent)');
      had = (s & bit) !== 0;
      const r = Atomics.compareExchange(i32, sw, s, (s - INFLIGHT_ONE) | bit);
      if (r === s) break;
      s = r;
    }
    if (Atomics.load(i32, gw) >>> 0 !== generation) {
      // Not our lend: a block with lends in flight cannot be freed, so give the lend back.
      s = Atomics.load(i32, sw);
      for (;;) {
        const ns = had ? (s + INFLIGHT_ONE) | 0 : ((s & ~bit) + INFLIGHT_ONE) | 0;
        const r = Atomics.compareExchange(i32, sw, s, ns);
        if (r === s) break;
        s = r;
      }
      this.stale('handle generation does not match (the block was freed and reused)');
    }
    return had;
  }

  private addExtraHold(offset: number): void {
    this.extraHolds.set(offset, (this.extraHolds.get(offset) ?? 0) + 1);
  }

  private reportLeak(offset: number): void {
    if (this.closed) return;
    const info: LeakInfo = { arena: this.name, offset };
    try {
      this.logger().warn(info, 'arena block garbage-collected while held; it is reclaimed when the arena closes');
      this.options.onLeak?.(info);
    } catch {
      // a throwing callback must not break the finalizer
    }
  }

  /** Stops leak tracking (close). */
  dropRegistry(): void {
    this.registry = null;
    this.smallRegistry = null;
  }
}
