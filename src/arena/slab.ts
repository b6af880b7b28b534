/**
 * Slabs: runs of 1..16 units holding the blocks of one size class.
 *
 * ```
 * slab start ─► ┌──────────────────────────────────────────────────────────────┐
 *               │ magic │ unit │ class │ count │ free │ next │ units │ (pad)   │  8 words
 *               │ hint bitmap: 1 bit per block ("probably allocated")          │  ceil(count/32) words
 *               │ state words: 1 Int32 per block (holder mask | lends << 24)   │  count words
 *               │ generations: 1 Int32 per block                               │  count words
 *               │ (padding up to the class alignment)                          │
 *  dataOffset ─►│ block 0 │ block 1 │ ...                     │ block count-1  │
 *               └──────────────────────────────────────────────────────────────┘
 * ```
 *
 * The state word is the truth: a block belongs to whoever won the CAS 0 → holder bit. The bitmap and the free
 * count only speed up the search, and may be stale after a crash (recovery rebuilds them). Word indices come
 * from the local {@link SizeClass} table, never from the header, so a hostile header cannot move an access.
 */
import {
  S_CLASS,
  S_COUNT,
  S_FREE,
  S_MAGIC,
  S_NEXT,
  S_UNIT,
  S_UNITS,
  SLAB_MAGIC,
  UNIT,
} from './layout.js';
import type { SizeClass } from './size-classes.js';
import type { Segment } from './segments.js';

/** A process-local handle on one slab (created once per slab, after validating its header). */
export class Slab {
  /** Global unit index of the slab's first unit. */
  readonly unit: number;
  readonly segment: Segment;
  readonly i32: Int32Array;
  readonly cls: SizeClass;
  readonly size: number;
  readonly count: number;
  readonly bitmapWords: number;
  /** Absolute word indices (in `i32`). */
  readonly base: number;
  readonly bitmapW: number;
  readonly stateW: number;
  readonly genW: number;
  readonly freeW: number;
  readonly nextW: number;
  /** Byte offset of block 0 in the segment buffer. */
  readonly dataOffset: number;
  /** Byte offset of block 0 in the arena's global address space. */
  readonly globalData: number;
  /** Bitmap word where this process looks first (local, so peers tend to work in different words). */
  cursor: number;

  constructor(unit: number, segment: Segment, cls: SizeClass, cursorSeed: number) {
    this.unit = unit;
    this.segment = segment;
    this.i32 = segment.i32;
    this.cls = cls;
    this.size = cls.size;
    this.count = cls.count;
    this.bitmapWords = cls.bitmapWords;
    const byteBase = (unit - segment.firstUnit) * UNIT;
    this.base = byteBase / 4;
    this.bitmapW = this.base + 8;
    this.stateW = this.base + cls.stateWord;
    this.genW = this.base + cls.genWord;
    this.freeW = this.base + S_FREE;
    this.nextW = this.base + S_NEXT;
    this.dataOffset = byteBase + cls.dataOffset;
    this.globalData = unit * UNIT + cls.dataOffset;
    this.cursor = cursorSeed % cls.bitmapWords;
  }
}

/** True when the slab header at `unit` in `segment` is a valid header of class `cls`. */
export function slabHeaderValid(segment: Segment, unit: number, cls: SizeClass): boolean {
  const i32 = segment.i32;
  const b = ((unit - segment.firstUnit) * UNIT) / 4;
  return (
    Atomics.load(i32, b + S_MAGIC) === SLAB_MAGIC &&
    Atomics.load(i32, b + S_UNIT) === unit &&
    Atomics.load(i32, b + S_CLASS) === cls.index &&
    Atomics.load(i32, b + S_COUNT) === cls.count &&
    Atomics.load(i32, b + S_UNITS) === cls.units
  );
}

/**
 * Writes a fresh slab header at `unit` (page lock held, run not yet committed: nobody else reads it).
 * Bitmap bits past `count` are set for good so the scan never yields them.
 */
export function initSlab(segment: Segment, unit: number, cls: SizeClass): void {
  const i32 = segment.i32;
  const b = ((unit - segment.firstUnit) * UNIT) / 4;
  i32.fill(0, b, b + cls.genWord + cls.count);
  const tail = cls.count & 31;
  if (tail !== 0) i32[b + 8 + cls.bitmapWords - 1] = ~((1 << tail) - 1);
  i32[b + S_UNIT] = unit;
  i32[b + S_CLASS] = cls.index;
  i32[b + S_COUNT] = cls.count;
  i32[b + S_FREE] = cls.count;
  i32[b + S_NEXT] = 0;
  i32[b + S_UNITS] = cls.units;
  Atomics.store(i32, b + S_MAGIC, SLAB_MAGIC);
}

/**
 * Claims a free block of `slab` for `bit`: find a clear hint bit, set it, then CAS the state word 0 → bit.
 * Returns the block index or -1 when the slab looks full. Allocation-free.
 */
export function slabTryAlloc(slab: Slab, bit: number): number {
  const i32 = slab.i32;
  const words = slab.bitmapWords;
  const bitmapW = slab.bitmapW;
  const n = slab.count;
  let w = slab.cursor;
  for (let k = 0; k < words; k++) {
    const a = bitmapW + w;
    let v = Atomics.load(i32, a);
    while (v !== -1) {
      const low = ~v & (v + 1); // lowest clear bit
      const old = Atomics.or(i32, a, low);
      if ((old & low) === 0) {
        const idx = (w << 5) + (31 - Math.clz32(low));
        if (idx < n && Atomics.compareExchange(i32, slab.stateW + idx, 0, bit) === 0) {
          slab.cursor = w;
          Atomics.sub(i32, slab.freeW, 1);
          return idx;
        }
        // The hint was stale (block in use) or the bit is past the end: it stays set, which is right.
      }
      v = old | low;
    }
    if (++w === words) w = 0;
  }
  return -1;
}

/** Bookkeeping after a block's state word reached 0: clear its hint bit, count it free. */
export function slabMarkFree(slab: Slab, idx: number): void {
  Atomics.and(slab.i32, slab.bitmapW + (idx >>> 5), ~(1 << (idx & 31)));
  Atomics.add(slab.i32, slab.freeW, 1);
}

/** True when some hint bit of the slab is clear (a block is probably free). */
export function slabHasClearHint(slab: Slab): boolean {
  const i32 = slab.i32;
  for (let w = 0; w < slab.bitmapWords; w++) if (Atomics.load(i32, slab.bitmapW + w) !== -1) return true;
  return false;
}

/**
 * Rebuilds the hint bitmap and free count from the state words (after a crash). Bits are changed with
 * `Atomics.or`/`Atomics.and` only where they disagree with the state, so concurrent allocators stay correct:
 * a hint bit is only ever a hint, the state CAS decides.
 */
export function slabRebuildHints(slab: Slab): void {
  const i32 = slab.i32;
  const n = slab.count;
  let free = 0;
  for (let w = 0; w < slab.bitmapWords; w++) {
    let want = 0;
    for (let b = 0; b < 32; b++) {
      const idx = (w << 5) + b;
      if (idx >= n) want |= 1 << b;
      else if (Atomics.load(i32, slab.stateW + idx) !== 0) want |= 1 << b;
      else free++;
    }
    const cur = Atomics.load(i32, slab.bitmapW + w);
    const set = want & ~cur;
    const clear = ~want & cur;
    if (set !== 0) Atomics.or(i32, slab.bitmapW + w, set);
    if (clear !== 0) Atomics.and(i32, slab.bitmapW + w, ~clear);
  }
  Atomics.store(i32, slab.freeW, free);
}
