/**
 * Size classes of small blocks and the geometry of their slabs. Everything here is computed locally from
 * constants, never read from shared memory: a slab's word indices come from this table, so a corrupted slab
 * header cannot steer an access elsewhere.
 */
import { MAX_SMALL, S_BITMAP, UNIT } from './layout.js';

/** Geometry of one size class. */
export interface SizeClass {
  readonly index: number;
  /** Block size in bytes. */
  readonly size: number;
  /** Units per slab. */
  readonly units: number;
  /** Blocks per slab. */
  readonly count: number;
  /** Words of the hint bitmap. */
  readonly bitmapWords: number;
  /** Word index (from the slab start) of the first state word. */
  readonly stateWord: number;
  /** Word index (from the slab start) of the first generation word. */
  readonly genWord: number;
  /** Byte offset (from the slab start) of block 0. */
  readonly dataOffset: number;
  /** Alignment every block of the class has: min(largest power-of-two divisor of size, 4096). */
  readonly align: number;
}

function buildSizes(): number[] {
  const sizes: number[] = [];
  for (let s = 16; s <= 128; s += 16) sizes.push(s);
  for (let p = 128; p < MAX_SMALL; p *= 2) {
    for (let k = 1; k <= 4; k++) sizes.push(p + (k * p) / 4);
  }
  return sizes;
}

function geometry(index: number, size: number): SizeClass {
  const units = size <= 4096 ? 1 : Math.min(16, Math.ceil((size * 16) / UNIT));
  const bytes = units * UNIT;
  const align = Math.min(size & -size, 4096);
  let count = Math.floor(bytes / size);
  for (;;) {
    const bitmapWords = Math.ceil(count / 32);
    const stateWord = S_BITMAP + bitmapWords;
    const genWord = stateWord + count;
    const metaBytes = (genWord + count) * 4;
    const dataOffset = Math.ceil(metaBytes / align) * align;
    if (dataOffset + count * size <= bytes) {
      return { index, size, units, count, bitmapWords, stateWord, genWord, dataOffset, align };
    }
    count--;
  }
}

/** All size classes, smallest first: 16..128 step 16, then 4 steps per power of two up to 65536. */
export const SIZE_CLASSES: readonly SizeClass[] = buildSizes().map((s, i) => geometry(i, s));
export const CLASS_COUNT = SIZE_CLASSES.length;

/** Class index by ceil(size / 16), for size 1..65536. */
const BY_SIXTEENTHS = new Uint8Array(MAX_SMALL / 16 + 1);
{
  let c = 0;
  for (let q = 0; q <= MAX_SMALL / 16; q++) {
    const size = q * 16;
    while (SIZE_CLASSES[c]!.size < size) c++;
    BY_SIXTEENTHS[q] = c;
  }
}

/** Smallest class holding `size` (1..65536) bytes. */
export function classFor(size: number): number {
  return BY_SIXTEENTHS[(size + 15) >>> 4]!;
}

/**
 * Smallest class holding `size` bytes whose block size is a multiple of `align` (a power of two ≤ 4096), so
 * that every block of it is `align`-aligned. The 65536 class always qualifies.
 */
export function classForAligned(size: number, align: number): number {
  let c = classFor(size);
  while (SIZE_CLASSES[c]!.size % align !== 0) c++;
  return c;
}
