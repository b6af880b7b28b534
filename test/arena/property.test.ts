/**
 * Property-based tests: random alloc/free/lend/borrow/release sequences over two instances (two process
 * slots) of one arena, checked against a model.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Arena, type Block, type Handle } from '../../src/arena/index.js';
import { codeOf, leftovers, removeAll, uniqueName } from './helpers.js';
import { checksum, fillPattern } from './pattern.js';

const TAG = 'prop';
afterAll(() => {
  const left = leftovers(TAG);
  removeAll(TAG);
  expect(left).toEqual([]);
});

type Op =
  | { k: 'alloc'; inst: number; size: number; align: number | undefined }
  | { k: 'free'; pick: number }
  | { k: 'lend'; pick: number }
  | { k: 'borrow'; inst: number; pick: number }
  | { k: 'stale'; inst: number; pick: number };

const size = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 256 }) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 65536 }) },
  { weight: 1, arbitrary: fc.integer({ min: 65537, max: 400_000 }) },
);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('alloc' as const),
      inst: fc.nat({ max: 1 }),
      size,
      align: fc.option(fc.constantFrom(1, 8, 64, 512, 4096), { nil: undefined, freq: 4 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('free' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('lend' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('borrow' as const), inst: fc.nat({ max: 1 }), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('stale' as const), inst: fc.nat({ max: 1 }), pick: fc.nat() }) },
);

interface Under {
  uid: number;
  offset: number;
  capacity: number;
  length: number;
  sum: number;
  holds: [number, number];
  pending: number;
}

function runModel(ops: Op[]): void {
  const a = Arena.create(uniqueName(TAG), { maxBytes: 48 << 20, growChunk: 256 << 10, initialBytes: 0 });
  const b = Arena.open(a.name);
  const inst = [a, b];
  try {
    const unders = new Map<number, Under>();
    const holds: { block: Block; inst: number; u: Under }[] = [];
    const pending: { h: Handle; u: Under }[] = [];
    const consumed: { h: Handle; u: Under }[] = [];
    let uid = 0;
    const live = (): Under[] => [...unders.values()].filter((u) => u.holds[0] + u.holds[1] + u.pending > 0);
    const drop = (u: Under): void => {
      if (u.holds[0] + u.holds[1] + u.pending === 0) unders.delete(u.uid);
    };

    for (const o of ops) {
      switch (o.k) {
        case 'alloc': {
          const block = inst[o.inst]!.alloc(o.size, o.align === undefined ? undefined : { align: o.align });
          expect(block.length).toBe(o.size);
          expect(block.capacity).toBeGreaterThanOrEqual(o.size);
          if (o.align !== undefined) expect(block.offset % o.align).toBe(0);
          // never overlaps a live block
          const start = block.arenaOffset;
          const end = start + block.capacity;
          for (const u of unders.values()) expect(end <= u.offset || start >= u.offset + u.capacity).toBe(true);
          const u: Under = {
            uid: uid++,
            offset: start,
            capacity: block.capacity,
            length: o.size,
            sum: fillPattern(block.bytes, uid * 7919),
            holds: [0, 0],
            pending: 0,
          };
          u.holds[o.inst] = 1;
          unders.set(u.uid, u);
          holds.push({ block, inst: o.inst, u });
          break;
        }
        case 'free': {
          if (holds.length === 0) break;
          const [h] = holds.splice(o.pick % holds.length, 1);
          expect(checksum(h!.block.bytes)).toBe(h!.u.sum); // nobody wrote into it
          if (o.pick % 2 === 0) h!.block.release();
          else inst[h!.inst]!.free(h!.block);
          h!.u.holds[h!.inst as 0 | 1]--;
          drop(h!.u);
          break;
        }
        case 'lend': {
          if (holds.length === 0) break;
          const h = holds[o.pick % holds.length]!;
          pending.push({ h: inst[h.inst]!.lend(h.block), u: h.u });
          h.u.pending++;
          break;
        }
        case 'borrow': {
          if (pending.length === 0) break;
          const [p] = pending.splice(o.pick % pending.length, 1);
          const block = inst[o.inst]!.borrow(p!.h);
          expect(block.arenaOffset).toBe(p!.u.offset);
          expect(checksum(block.bytes)).toBe(p!.u.sum);
          p!.u.pending--;
          p!.u.holds[o.inst as 0 | 1]++;
          holds.push({ block, inst: o.inst, u: p!.u });
          consumed.push(p!);
          break;
        }
        case 'stale': {
          // a consumed handle whose block has no lend of the same generation in flight must not borrow
          const c = consumed.filter((x) => !pending.some((p) => p.u === x.u));
          if (c.length === 0) break;
          const x = c[o.pick % c.length]!;
          expect(codeOf(() => inst[o.inst]!.borrow(x.h))).toBe('ESTALEHANDLE');
          break;
        }
      }
    }

    // exact accounting
    const lv = live();
    const expected = {
      liveBlocks: lv.length,
      inflightLends: lv.reduce((n, u) => n + u.pending, 0),
      borrowedBlocks: lv.filter((u) => u.holds[0] > 0 && u.holds[1] > 0).length,
      inUseBytes: lv.reduce((n, u) => n + u.capacity, 0),
    };
    for (const x of inst) expect(x.stats()).toMatchObject(expected);

    // let go of everything: the arena is empty again
    for (const h of holds) h.block.release();
    for (const p of pending) a.borrow(p.h).release();
    const s = a.stats();
    expect(s).toMatchObject({ liveBlocks: 0, inflightLends: 0, borrowedBlocks: 0, inUseBytes: 0 });
    expect(s.freeBytes + s.overheadBytes).toBe(s.reservedBytes);
  } finally {
    b.close();
    a.destroy();
  }
}

/** Allocates sizes in order, freeing the block `frees[i]` positions back after each alloc. */
function replay(arena: Arena, sizes: number[], frees: number[]): void {
  const live: Block[] = [];
  sizes.forEach((s, i) => {
    live.push(arena.alloc(s));
    const f = frees[i]!;
    if (f < live.length && f % 3 !== 0) live.splice(live.length - 1 - f, 1)[0]!.release();
  });
  for (const b of live) b.release();
}

describe('arena model (property)', () => {
  it('random alloc/free/lend/borrow/release: no overlap, data intact, exact stats', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 250 }), (ops) => runModel(ops)),
      { numRuns: 120 },
    );
  });

  for (const [what, arb] of [
    ['small', fc.integer({ min: 1, max: 65536 })],
    ['large', fc.integer({ min: 65537, max: 600_000 })],
  ] as const) {
    it(`freed ${what} blocks are reused: replaying the same allocations does not grow the arena`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.tuple(arb, fc.nat({ max: 20 })), { minLength: 1, maxLength: 300 }),
          (pairs) => {
            const a = Arena.create(uniqueName(TAG), { maxBytes: 1 << 30, growChunk: 64 << 10, initialBytes: 0 });
            try {
              const sizes = pairs.map((p) => p[0]);
              const frees = pairs.map((p) => p[1]);
              replay(a, sizes, frees);
              const first = a.stats();
              expect(first.liveBlocks).toBe(0);
              replay(a, sizes, frees);
              expect(a.stats().reservedBytes).toBe(first.reservedBytes);
              expect(a.stats().slabs).toBe(first.slabs);
            } finally {
              a.destroy();
            }
          },
        ),
        { numRuns: 60 },
      );
    });
  }
});
