/**
 * Data segments: `<base>.d0.<nonce>`, `<base>.d1.<nonce>`, … Each covers a contiguous range of global units;
 * segment `i` starts where segment `i - 1` ends. The header's segment table lists them ({firstUnit, unitCount},
 * and the nonce of each name); an entry is committed by bumping the segment count after writing it. A process maps segments lazily, the
 * first time it meets a unit it has not mapped.
 */
import { UNIT } from './layout.js';

/** One mapped data segment (process-local). */
export interface Segment {
  readonly index: number;
  /** Its name in /dev/shm (rebuilt from the nonce in the segment table). */
  readonly name: string;
  readonly firstUnit: number;
  readonly units: number;
  /** firstUnit + units. */
  readonly endUnit: number;
  readonly buffer: SharedArrayBuffer;
  readonly i32: Int32Array;
}

export function makeSegment(
  index: number, name: string, firstUnit: number, units: number, buffer: SharedArrayBuffer,
): Segment {
  return { index, name, firstUnit, units, endUnit: firstUnit + units, buffer, i32: new Int32Array(buffer, 0, (units * UNIT) / 4) };
}

/** The segment holding global unit `unit` among `segments` (sorted, contiguous), or undefined. */
export function findSegment(segments: readonly Segment[], unit: number): Segment | undefined {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const s = segments[mid]!;
    if (unit < s.firstUnit) hi = mid - 1;
    else if (unit >= s.endUnit) lo = mid + 1;
    else return s;
  }
  return undefined;
}
