import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { Arena, type Block, decodeHandle, encodeHandle, HANDLE_BYTES, SIZE_CLASSES } from '../../src/arena/index.js';
import { native } from '../../src/native.js';
import { cleanUpArenas, codeOf, dataSegment, leftovers, uniqueName } from './helpers.js';

const TAG = 'basic';
const open: Arena[] = [];
function create(opts: Partial<Parameters<typeof Arena.create>[1]> = {}): Arena {
  const a = Arena.create(uniqueName(TAG), { maxBytes: 64 << 20, growChunk: 1 << 20, ...opts });
  open.push(a);
  return a;
}
function attach(a: Arena): Arena {
  const b = Arena.open(a.name);
  open.push(b);
  return b;
}

cleanUpArenas(TAG, open);

describe('lifecycle', () => {
  it('creates the header and first data segment, refuses a second create, destroy removes all', () => {
    const a = create();
    expect(native.shmList(a.name).sort()).toEqual([dataSegment(a.name, 0), `${a.name}.h`]);
    expect(dataSegment(a.name, 0)).toMatch(/\.d0\.[0-9a-f]{16}$/);
    expect(codeOf(() => Arena.create(a.name, { maxBytes: 1 << 20 }))).toBe('EEXIST');
    expect(codeOf(() => Arena.open(`${a.name}-missing`))).toBe('ENOENT');
    a.destroy();
    expect(native.shmList(a.name)).toEqual([]);
    expect(codeOf(() => a.alloc(1))).toBe('ECLOSED');
  });

  it('a peer closes quietly after the creator destroyed the arena, and never recreates segments', () => {
    const warnings: unknown[] = [];
    const logger = { warn: (o: object) => warnings.push(o), info: () => {} };
    const a = create({ initialBytes: 0 });
    const b = Arena.open(a.name, { logger });
    open.push(b);
    a.destroy();
    expect(codeOf(() => b.alloc(100))).toBe('ECLOSED'); // growth refused: nobody would unlink it
    expect(native.shmList(a.name)).toEqual([]);
    b.close();
    expect(warnings).toEqual([]);
  });

  it('open with { create: true } creates', () => {
    const name = uniqueName(TAG);
    const a = Arena.open(name, { create: true, maxBytes: 1 << 20, initialBytes: 0 });
    open.push(a);
    expect(a.stats().reservedBytes).toBe(0);
    a.alloc(10);
    expect(a.stats().reservedBytes).toBe(1 << 20);
  });

  it('validates arguments before touching shared memory', () => {
    expect(codeOf(() => Arena.create('bad/name', { maxBytes: 1 << 20 }))).toBe('RangeError');
    expect(codeOf(() => Arena.create('x'.repeat(201), { maxBytes: 1 << 20 }))).toBe('RangeError');
    expect(codeOf(() => Arena.create(42 as unknown as string, { maxBytes: 1 << 20 }))).toBe('TypeError');
    expect(codeOf(() => Arena.create(uniqueName(TAG), { maxBytes: 1000 }))).toBe('RangeError');
    expect(codeOf(() => Arena.create(uniqueName(TAG), { maxBytes: 2 ** 40 }))).toBe('RangeError');
    expect(codeOf(() => Arena.create(uniqueName(TAG), {} as { maxBytes: number }))).toBe('TypeError');
    expect(codeOf(() => Arena.create(uniqueName(TAG), { maxBytes: 1 << 20, mode: 0o1777 }))).toBe('RangeError');
    expect(leftovers(TAG)).toEqual([]);
    const a = create({ maxBytes: 1 << 20 });
    const before = a.stats();
    expect(codeOf(() => a.alloc(0))).toBe('RangeError');
    expect(codeOf(() => a.alloc(1.5))).toBe('RangeError');
    expect(codeOf(() => a.alloc(NaN))).toBe('RangeError');
    expect(codeOf(() => a.alloc('8' as unknown as number))).toBe('TypeError');
    expect(codeOf(() => a.alloc((1 << 20) + 1))).toBe('RangeError');
    expect(codeOf(() => a.alloc(8, { align: 3 }))).toBe('RangeError');
    expect(codeOf(() => a.alloc(8, { align: 8192 }))).toBe('RangeError');
    expect(codeOf(() => a.alloc(8, null as unknown as object))).toBe('TypeError');
    expect(codeOf(() => a.free({} as Block))).toBe('TypeError');
    expect(codeOf(() => a.borrow(null as unknown as Uint8Array))).toBe('TypeError');
    expect(a.stats()).toEqual(before);
  });
});

describe('blocks', () => {
  it('serves every size class with a block of that capacity, 16-byte aligned, with working views', () => {
    const a = create();
    const blocks: Block[] = [];
    for (const c of SIZE_CLASSES) {
      for (const size of [c.size - 15, c.size]) {
        const b = a.alloc(size);
        expect(b.length).toBe(size);
        expect(b.capacity).toBe(c.size);
        expect(b.offset % 16).toBe(0);
        expect(b.bytes.length).toBe(size);
        expect(b.bytes.buffer).toBe(b.buffer);
        blocks.push(b);
      }
    }
    const b = a.alloc(800);
    const f = b.float64();
    expect(f.length).toBe(100);
    f[99] = Math.PI;
    expect(new Float64Array(b.buffer, b.offset, 100)[99]).toBe(Math.PI);
    expect(b.int32().length).toBe(200);
    expect(b.bigInt64().length).toBe(100);
    expect(b.uint16().length).toBe(400);
    expect(b.dataView().byteLength).toBe(800);
    expect(b.bytes).toBe(b.bytes); // cached
    for (const x of blocks) x.release();
    b.release();
    expect(a.stats().liveBlocks).toBe(0);
  });

  it('honours align by choosing a class whose size is a multiple of it', () => {
    const a = create();
    for (const align of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]) {
      for (const size of [1, 100, 3000, 5000, 70000]) {
        const b = a.alloc(size, { align });
        expect(b.offset % align).toBe(0);
        expect(b.capacity % Math.min(align, b.capacity)).toBe(0);
        b.release();
      }
    }
  });

  it('blocks of one class never overlap and keep their data', () => {
    const a = create();
    const blocks = Array.from({ length: 3000 }, (_, i) => {
      const b = a.alloc(24);
      b.bytes.fill(i & 255);
      return b;
    });
    const offsets = new Set(blocks.map((b) => b.arenaOffset));
    expect(offsets.size).toBe(blocks.length);
    blocks.forEach((b, i) => expect(b.bytes.every((x) => x === (i & 255))).toBe(true));
    for (const b of blocks) b.release();
  });

  it('large blocks are whole 64 KiB units and return their units when freed', () => {
    const a = create({ initialBytes: 4 << 20, growChunk: 4 << 20 });
    const before = a.stats();
    const b = a.alloc(1_000_000);
    expect(b.capacity).toBe(16 * 65536);
    expect(b.offset % 65536).toBe(0);
    b.bytes.fill(9);
    expect(a.stats().inUseBytes).toBe(16 * 65536);
    b.release();
    expect(a.stats()).toEqual(before);
  });

  it('a reused block gets a new generation', () => {
    const a = create();
    const b1 = a.alloc(64);
    const { arenaOffset, generation } = b1;
    b1.release();
    const b2 = a.alloc(64);
    expect(b2.arenaOffset).toBe(arenaOffset);
    expect(b2.generation).toBe(generation + 1);
    b2.release();
  });

  it('double release is ESTALEHANDLE, foreign blocks are TypeError, closed arenas ECLOSED', () => {
    const a = create();
    const b = attach(a);
    const x = a.alloc(10);
    x.release();
    expect(codeOf(() => x.release())).toBe('ESTALEHANDLE');
    const y = a.alloc(10);
    expect(codeOf(() => b.free(y))).toBe('TypeError');
    b.close();
    expect(codeOf(() => b.alloc(1))).toBe('ECLOSED');
    expect(codeOf(() => b.stats())).toBe('ECLOSED');
    y.release();
  });
});

describe('lend and borrow', () => {
  it('shares bytes between instances; the block is freed when the last holder lets go', () => {
    const a = create();
    const b = attach(a);
    const x = a.alloc(1000);
    x.bytes.set([1, 2, 3]);
    const h = a.lend(x);
    expect(a.stats()).toMatchObject({ liveBlocks: 1, inflightLends: 1 });
    const y = b.borrow(h);
    expect([...y.bytes.subarray(0, 3)]).toEqual([1, 2, 3]);
    y.bytes[3] = 4;
    expect(x.bytes[3]).toBe(4);
    expect(a.stats()).toMatchObject({ liveBlocks: 1, inflightLends: 0, borrowedBlocks: 1 });
    x.release();
    expect(a.stats()).toMatchObject({ liveBlocks: 1, borrowedBlocks: 0 });
    y.release();
    expect(a.stats()).toMatchObject({ liveBlocks: 0, inUseBytes: 0 });
  });

  it('a lent block outlives its lender until borrowed and released', () => {
    const a = create();
    const b = attach(a);
    const x = a.alloc(70_000);
    const h = encodeHandle(a.lend(x));
    expect(h.length).toBe(HANDLE_BYTES);
    x.release();
    expect(a.stats()).toMatchObject({ liveBlocks: 1, inflightLends: 1 });
    const y = b.borrow(h);
    expect(y.length).toBe(70_000);
    expect(y.capacity).toBe(2 * 65536);
    y.release();
    expect(a.stats()).toMatchObject({ liveBlocks: 0, inflightLends: 0, inUseBytes: 0 });
  });

  it('repeated borrows in one instance count locally (one holder bit)', () => {
    const a = create();
    const x = a.alloc(100);
    const h1 = a.lend(x);
    const h2 = a.lend(x);
    const y1 = a.borrow(h1);
    const y2 = a.borrow(decodeHandle(encodeHandle(h2)));
    x.release();
    y1.release();
    expect(a.stats().liveBlocks).toBe(1);
    y2.release();
    expect(a.stats().liveBlocks).toBe(0);
  });

  it('limits a block to 255 lends in flight', () => {
    const a = create();
    const x = a.alloc(8);
    const hs = Array.from({ length: 255 }, () => a.lend(x));
    expect(codeOf(() => a.lend(x))).toBe('EARENABUSY');
    expect(a.stats().inflightLends).toBe(255);
    for (const h of hs) a.borrow(h).release();
    x.release();
    expect(a.stats().liveBlocks).toBe(0);
  });
});

describe('process slots and close', () => {
  it('close reclaims the holds of forgotten blocks', () => {
    const a = create();
    const b = attach(a);
    for (let i = 0; i < 500; i++) b.alloc(1 + (i % 3000));
    b.alloc(300_000);
    const x = b.alloc(10);
    a.borrow(b.lend(x)); // a holds one of b's blocks too
    expect(a.stats().liveBlocks).toBe(502);
    b.close();
    expect(a.stats().liveBlocks).toBe(1);
    expect(a.stats().inflightLends).toBe(0);
  });

  it('24 instances hold the 24 slots; the 25th open is EARENASLOTS until one closes', () => {
    const a = create();
    const more = Array.from({ length: 23 }, () => attach(a));
    expect(codeOf(() => Arena.open(a.name))).toBe('EARENASLOTS');
    more[5]!.close();
    attach(a).alloc(1);
  });

  it('reports a Block garbage-collected while held', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const leaks: number[] = [];
    const warned: unknown[] = [];
    const logger = { warn: (o: object) => warned.push(o), info: () => {} };
    const a = Arena.create(uniqueName(TAG), {
      maxBytes: 1 << 20,
      trackLeaks: true,
      logger,
      onLeak: (i) => leaks.push(i.offset),
    });
    open.push(a);
    let offset = -1;
    (() => {
      offset = a.alloc(32).arenaOffset;
    })();
    for (let i = 0; i < 20 && leaks.length === 0; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(leaks).toEqual([offset]);
    expect(warned).toHaveLength(1);
    expect(a.stats().liveBlocks).toBe(1);
  });
});
