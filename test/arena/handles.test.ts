import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Arena, type Block, decodeHandle, encodeHandle, type Handle } from '../../src/arena/index.js';
import { arenaCore } from '../../src/arena/arena.js';
import { cleanUpArenas, codeOf, uniqueName } from './helpers.js';

const TAG = 'handles';
const open: Arena[] = [];
function pair(): [Arena, Arena] {
  const a = Arena.create(uniqueName(TAG), { maxBytes: 16 << 20, growChunk: 2 << 20 });
  const b = Arena.open(a.name);
  open.push(b, a);
  return [a, b];
}
cleanUpArenas(TAG, open);

describe('stale and forged handles are ESTALEHANDLE', () => {
  it('a handle borrows once', () => {
    const [a, b] = pair();
    const x = a.alloc(100);
    const h = a.lend(x);
    b.borrow(h).release();
    expect(codeOf(() => b.borrow(h))).toBe('ESTALEHANDLE');
    expect(codeOf(() => a.borrow(h))).toBe('ESTALEHANDLE');
    x.release();
  });

  it('a handle of a freed block', () => {
    const [a, b] = pair();
    for (const size of [100, 200_000]) {
      const x = a.alloc(size);
      const h = a.lend(x);
      b.borrow(h).release();
      x.release();
      expect(a.stats().liveBlocks).toBe(0);
      expect(codeOf(() => b.borrow(h))).toBe('ESTALEHANDLE');
    }
  });

  it('a handle of a reused block, even while the new block has a lend in flight (which stays usable)', () => {
    const [a, b] = pair();
    for (const size of [48, 300_000]) {
      const x = a.alloc(size);
      x.bytes.fill(1);
      const old = a.lend(x);
      a.borrow(old).release(); // consume the old lend ourselves
      x.release();
      const y = a.alloc(size);
      expect(y.arenaOffset).toBe(x.arenaOffset); // same memory, new generation
      y.bytes.fill(2);
      const fresh = a.lend(y);
      expect(fresh.generation).toBe(old.generation + 1);
      expect(codeOf(() => b.borrow(old))).toBe('ESTALEHANDLE');
      expect(a.stats()).toMatchObject({ inflightLends: 1, borrowedBlocks: 0 }); // the stale borrow was undone
      const z = b.borrow(fresh);
      expect(z.bytes[0]).toBe(2);
      z.release();
      y.release();
      expect(a.stats().liveBlocks).toBe(0);
    }
  });

  it('the encoded path: lendEncoded gives encodeHandle\'s bytes, and borrow(bytes) checks both arena id words', () => {
    const [a, b] = pair();
    const [c] = pair();
    const x = a.alloc(100);
    const enc = arenaCore(a).lendEncoded(x);
    expect(decodeHandle(enc)).toEqual({ arena: a.id, offset: x.arenaOffset, length: 100, generation: x.generation });
    expect(enc).toEqual(encodeHandle(decodeHandle(enc)));
    // Another arena with a lent block at the same offset: only the id words tell them apart.
    const y = c.alloc(100);
    expect(y.arenaOffset).toBe(x.arenaOffset);
    const encY = arenaCore(c).lendEncoded(y);
    expect(codeOf(() => c.borrow(enc))).toBe('ESTALEHANDLE');
    for (const at of [4, 8]) {
      const forged = enc.slice();
      forged[at]! ^= 1; // one bit of the low, then the high id word
      expect(codeOf(() => b.borrow(forged))).toBe('ESTALEHANDLE');
    }
    const z = b.borrow(enc);
    expect(z.arenaOffset).toBe(x.arenaOffset);
    z.release();
    c.borrow(encY).release();
    x.release();
    y.release();
  });

  it('a handle of another arena', () => {
    const [a] = pair();
    const [c] = pair();
    const x = a.alloc(100);
    const h = a.lend(x);
    const y = c.alloc(100);
    expect(y.arenaOffset).toBe(x.arenaOffset);
    c.lend(y);
    expect(codeOf(() => c.borrow(h))).toBe('ESTALEHANDLE');
    a.borrow(h).release();
    x.release();
    y.release();
  });

  it('bad offsets, lengths and kinds', () => {
    const [a, b] = pair();
    const x = a.alloc(100);
    const big = a.alloc(200_000);
    const h = a.lend(x);
    const hb = a.lend(big);
    const bad: Handle[] = [
      { ...h, offset: h.offset + 1 },
      { ...h, offset: h.offset - 16 },
      { ...h, offset: h.offset + 112 }, // the next block, not lent
      { ...h, offset: Math.floor(h.offset / 65536) * 65536 }, // slab header
      { ...h, offset: 15 << 20 }, // inside maxBytes, beyond the segments
      { ...h, offset: 1 << 30 }, // beyond maxBytes
      { ...h, length: 113 }, // longer than the block
      { ...hb, length: 65536 }, // a large block named as small
      { ...h, length: 70_000 }, // a small block named as large
      { ...hb, offset: hb.offset + 65536 }, // a continuation unit
      { ...hb, length: 4 * 65536 + 1 },
      { ...h, generation: h.generation + 1 },
    ];
    for (const f of bad) expect([f, codeOf(() => b.borrow(f))]).toEqual([f, 'ESTALEHANDLE']);
    expect(a.stats()).toMatchObject({ liveBlocks: 2, inflightLends: 2, borrowedBlocks: 0 });
    b.borrow(h).release();
    b.borrow(hb).release();
    x.release();
    big.release();
    expect(a.stats().liveBlocks).toBe(0);
  });

  it('malformed plain handles and garbage bytes', () => {
    const [a] = pair();
    const x = a.alloc(10);
    const h = a.lend(x);
    const malformed: unknown[] = [
      {},
      { ...h, arena: 'nothex' },
      { ...h, offset: -1 },
      { ...h, offset: 1.5 },
      { ...h, length: 0 },
      { ...h, generation: -1 },
      { ...h, generation: 2 ** 32 },
    ];
    for (const m of malformed) expect(codeOf(() => a.borrow(m as Handle))).toBe('ESTALEHANDLE');
    expect(codeOf(() => a.borrow(new Uint8Array(31)))).toBe('ESTALEHANDLE');
    expect(codeOf(() => a.borrow(new Uint8Array(32)))).toBe('ESTALEHANDLE');
    const enc = encodeHandle(h);
    expect(decodeHandle(enc)).toEqual(h);
    enc[0] ^= 1;
    expect(codeOf(() => a.borrow(enc))).toBe('ESTALEHANDLE');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        expect(codeOf(() => a.borrow(bytes))).toBe('ESTALEHANDLE');
      }),
      { numRuns: 500 },
    );
    a.borrow(h).release();
    x.release();
  });

  it('forged handles with the right arena id never borrow anything (property)', () => {
    const [a, b] = pair();
    const held: Block[] = [];
    for (let i = 0; i < 200; i++) held.push(a.alloc(1 + ((i * 977) % 70_000)));
    held.push(a.alloc(500_000));
    const before = a.stats();
    const arb = fc.record({
      offset: fc.oneof(fc.nat({ max: 16 << 20 }), fc.constantFrom(...held.map((x) => x.arenaOffset))),
      length: fc.oneof(fc.integer({ min: 1, max: 600_000 }), fc.integer({ min: 1, max: 64 })),
      generation: fc.oneof(fc.nat({ max: 3 }), fc.nat()),
    });
    fc.assert(
      fc.property(arb, (f) => {
        // nothing is lent, so no forged handle can succeed whatever the generation
        expect(codeOf(() => b.borrow({ arena: a.id, ...f }))).toBe('ESTALEHANDLE');
      }),
      { numRuns: 2000 },
    );
    expect(a.stats()).toEqual(before);
    for (const x of held) x.release();
  });
});
