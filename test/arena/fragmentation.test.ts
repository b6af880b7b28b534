/**
 * Fragmentation: a long random mixed workload stays within the bound stated in docs/arena.md:
 *
 *   slabs of class c          ≤ ceil(peakLive_c / count_c)
 *   reserved units            ≤ U_slab + L_peak + (k_max − 1)·(S + B_peak + segments) + max(growUnits, k_max)
 *
 * with U_slab the units of those slabs, S their number, L_peak / B_peak the peak units / count of live large
 * blocks and k_max the largest run requested (slab or large).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Arena, type Block, SIZE_CLASSES } from '../../src/arena/index.js';
import { classFor } from '../../src/arena/size-classes.js';
import { leftovers, removeAll, uniqueName } from './helpers.js';
import { Rng } from './pattern.js';

const TAG = 'frag';
afterAll(() => {
  const left = leftovers(TAG);
  removeAll(TAG);
  expect(left).toEqual([]);
});

const UNIT = 65536;

function workload(seed: number, ops: number, maxLive: number, largeShare: number) {
  const growChunk = 1 << 20;
  const a = Arena.create(uniqueName(TAG), { maxBytes: 2 * 2 ** 30, growChunk, initialBytes: 0 });
  try {
    const rng = new Rng(seed);
    const live: Block[] = [];
    const liveByClass = new Array<number>(SIZE_CLASSES.length).fill(0);
    const peakByClass = new Array<number>(SIZE_CLASSES.length).fill(0);
    let largeUnits = 0;
    let peakLargeUnits = 0;
    let peakLargeCount = 0;
    let largeCount = 0;
    let kMax = Math.max(...SIZE_CLASSES.map((c) => c.units));
    let liveBytes = 0;
    let peakLiveBytes = 0;
    // the live target drifts, so the workload keeps changing its mix of sizes
    let target = maxLive / 2;
    for (let i = 0; i < ops; i++) {
      if (i % 1000 === 0) target = Math.max(10, Math.min(maxLive, target + (rng.next() - 0.5) * maxLive * 0.4));
      if (live.length < target * (0.5 + rng.next())) {
        const r = rng.next();
        const size =
          r < largeShare
            ? 65537 + rng.int(1 << 20)
            : r < largeShare + 0.15
              ? 4097 + rng.int(65536 - 4096)
              : 1 + rng.int(rng.next() < 0.5 ? 256 : 4096);
        const b = a.alloc(size);
        live.push(b);
        liveBytes += b.capacity;
        if (size > 65536) {
          const k = b.capacity / UNIT;
          largeUnits += k;
          largeCount++;
          kMax = Math.max(kMax, k);
          peakLargeUnits = Math.max(peakLargeUnits, largeUnits);
          peakLargeCount = Math.max(peakLargeCount, largeCount);
        } else {
          const c = classFor(size);
          peakByClass[c] = Math.max(peakByClass[c]!, ++liveByClass[c]!);
        }
        peakLiveBytes = Math.max(peakLiveBytes, liveBytes);
      } else if (live.length > 0) {
        const b = live.splice(rng.int(live.length), 1)[0]!;
        liveBytes -= b.capacity;
        if (b.length > 65536) {
          largeUnits -= b.capacity / UNIT;
          largeCount--;
        } else {
          liveByClass[classFor(b.length)]!--;
        }
        b.release();
      }
    }
    const s = a.stats();
    const slabBound = SIZE_CLASSES.reduce((n, c, i) => n + Math.ceil(peakByClass[i]! / c.count), 0);
    const slabUnits = SIZE_CLASSES.reduce((n, c, i) => n + Math.ceil(peakByClass[i]! / c.count) * c.units, 0);
    const boundUnits =
      slabUnits +
      peakLargeUnits +
      (kMax - 1) * (slabBound + peakLargeCount + s.segments) +
      Math.max(growChunk / UNIT, kMax);
    for (const b of live) b.release();
    return { stats: s, slabBound, boundBytes: boundUnits * UNIT, peakLiveBytes };
  } finally {
    a.destroy();
  }
}

describe('fragmentation', () => {
  it('small blocks only: slabs per class never exceed ceil(peak / count), reserved within the bound', () => {
    const r = workload(1, 200_000, 4000, 0);
    expect(r.stats.slabs).toBeLessThanOrEqual(r.slabBound);
    expect(r.stats.reservedBytes).toBeLessThanOrEqual(r.boundBytes);
    // and in practice close to the peak of live bytes
    expect(r.stats.reservedBytes).toBeLessThan(3 * r.peakLiveBytes);
  }, 60_000);

  it('mixed with large blocks: reserved stays within the bound', () => {
    const r = workload(2, 100_000, 600, 0.05);
    expect(r.stats.slabs).toBeLessThanOrEqual(r.slabBound);
    expect(r.stats.reservedBytes).toBeLessThanOrEqual(r.boundBytes);
    expect(r.stats.reservedBytes).toBeLessThan(3 * r.peakLiveBytes);
  }, 60_000);
});
