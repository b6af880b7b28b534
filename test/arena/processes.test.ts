/**
 * Real processes: two processes share an arena, lend each other blocks, one is SIGKILLed; dead page-lock
 * holders; dead slot recovery.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { arenaCore } from '../../src/arena/arena.js';
import { Arena, type Block, decodeHandle, encodeHandle, type Handle } from '../../src/arena/index.js';
import { H_LOCK_STEALS, H_PAGE_LOCK, H_RECOVERIES, SLOT_PID, SLOT_RECOVERING } from '../../src/arena/layout.js';
import { slotBase } from '../../src/arena/slots.js';
import { type Child } from '../helpers/child.js';
import { arenaChild, codeOf, leftovers, type Msg, removeAll, uniqueName } from './helpers.js';
import { checksum, fillPattern, Rng } from './pattern.js';

const TAG = 'proc';
const open: Arena[] = [];
const children: Child[] = [];
function create(opts: Partial<Parameters<typeof Arena.create>[1]> = {}): Arena {
  const a = Arena.create(uniqueName(TAG), { maxBytes: 256 << 20, growChunk: 1 << 20, ...opts });
  open.push(a);
  return a;
}
function child(...args: string[]): Child {
  const c = arenaChild(args);
  children.push(c);
  return c;
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
/** The error `fn` throws (the test fails when it throws nothing). */
function errorOf(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error, got none');
}

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()));
  const all = open.splice(0);
  for (const a of all) a.close();
  for (const a of all) Arena.unlink(a.name);
});
afterAll(() => {
  const left = leftovers(TAG);
  removeAll(TAG);
  expect(left).toEqual([]);
});

/** Sizes like the peer's: mostly small, some up to 64 KiB, a few large. */
function randomSize(rng: Rng): number {
  if (rng.next() < 0.05) return 65537 + rng.int(200_000);
  return 1 + rng.int(rng.next() < 0.8 ? 512 : 65536);
}

describe('two processes', () => {
  it('exchange thousands of blocks by handle; after a SIGKILL the survivor goes on and recovers the dead holds', async () => {
    const a = create();
    const peer = child(a.name, 'peer', '48', '4242');
    await peer.waitFor((m) => m.t === 'ready');
    const rng = new Rng(99);
    const own: { block: Block; sum: number }[] = [];
    const unacked = new Map<number, Handle>();
    let nextId = 0;
    let received = 0;
    let errors = 0;
    let peerErrors = 0;
    const onMessage = (m: Msg): void => {
      if (m.t === 'h') {
        // borrow what the peer lent us, verify, release
        try {
          const b = a.borrow(decodeHandle(Buffer.from(m.h as string, 'hex')));
          if (b.length !== m.len || checksum(b.bytes) !== m.sum) errors++;
          b.release();
        } catch {
          errors++;
        }
        received++;
      } else if (m.t === 'ack') {
        unacked.delete(m.id as number);
        if (m.ok !== true) errors++;
      } else if (m.t === 'held') {
        peerErrors = m.errors as number;
      }
    };
    peer.onEvent = onMessage;
    for (const m of peer.events) onMessage(m);

    const deadline = Date.now() + 25_000;
    while ((received < 3000 || nextId < 3000) && Date.now() < deadline) {
      for (let i = 0; i < 50; i++) {
        if (own.length >= 32) {
          const o = own.splice(rng.int(own.length), 1)[0]!;
          if (checksum(o.block.bytes) !== o.sum) errors++;
          o.block.release();
        }
        const block = a.alloc(randomSize(rng));
        const sum = fillPattern(block.bytes, rng.int(0x7fffffff));
        if (rng.next() < 0.3 && unacked.size < 200) {
          const h = a.lend(block);
          const id = nextId++;
          unacked.set(id, h);
          peer.send({ t: 'h', id, h: Buffer.from(encodeHandle(h)).toString('hex'), sum, len: block.length });
          block.release();
        } else {
          own.push({ block, sum });
        }
      }
      await tick();
    }
    expect(received).toBeGreaterThanOrEqual(3000);
    expect(nextId).toBeGreaterThanOrEqual(3000);

    // kill it mid-stream (it never stops by itself), then take in whatever it wrote before dying
    await peer.kill();
    await new Promise((r) => setTimeout(r, 50));
    expect(errors).toBe(0);
    expect(peerErrors).toBe(0);

    const before = a.stats();
    const deadHeld = before.liveBlocks - own.length - before.inflightLends;
    expect(deadHeld).toBeGreaterThanOrEqual(40); // the peer's window of ~48 blocks

    // the survivor keeps allocating without waiting for anyone (the peer may have died holding the lock): a
    // wait for a dead holder would end in EARENABUSY, thrown by alloc below, and the test would fail there
    const extra: { block: Block; sum: number }[] = [];
    for (let i = 0; i < 5000; i++) {
      const block = a.alloc(randomSize(rng));
      extra.push({ block, sum: fillPattern(block.bytes, i) });
      if (extra.length > 64) {
        const o = extra.shift()!;
        expect(checksum(o.block.bytes)).toBe(o.sum);
        o.block.release();
      }
    }
    for (const o of extra) o.block.release();

    // recovered now, unless a growth during the loop above already did it (alloc recovers before growing)
    const hdr = arenaCore(a).hdr;
    const recoveriesBefore = Atomics.load(hdr, H_RECOVERIES);
    expect(a.recoverDead()).toBe(1 - recoveriesBefore);
    expect(Atomics.load(hdr, H_RECOVERIES)).toBe(1);
    expect(a.recoverDead()).toBe(0);
    // lends we made that the peer never borrowed: take them back
    for (const h of unacked.values()) {
      const code = codeOf(() => a.borrow(h).release());
      expect([undefined, 'ESTALEHANDLE']).toContain(code); // stale if the peer had borrowed it before dying
    }
    for (const o of own) {
      expect(checksum(o.block.bytes)).toBe(o.sum);
      o.block.release();
    }
    const after = a.stats();
    // Everything is back, except at most one block the peer lent and was killed before it could write the
    // handle out (a lend lost in flight has no holder to recover; see docs/arena.md).
    expect(after.liveBlocks).toBeLessThanOrEqual(1);
    expect(after.liveBlocks).toBe(after.inflightLends);
    expect(after.borrowedBlocks).toBe(0);
    expect(before.liveBlocks - after.liveBlocks).toBeGreaterThanOrEqual(deadHeld);
  }, 60_000);
});

describe('page lock', () => {
  it('a live holder makes others wait (EARENABUSY past the timeout); a SIGKILLed holder is stolen from', async () => {
    const a = create();
    const hdr = arenaCore(a).hdr;
    const holder = child(a.name, 'lock');
    await holder.waitFor((m) => m.t === 'locked');
    expect(Atomics.load(hdr, H_PAGE_LOCK)).not.toBe(0);

    const b = Arena.open(a.name, { lockTimeoutMs: 300 });
    open.push(b);
    // b gave up after its own timeout, with the live holder still holding the lock (nothing was stolen)
    const busy = errorOf(() => b.alloc(300_000));
    expect(busy).toMatchObject({ code: 'EARENABUSY' });
    expect(busy.message).toContain('held by a live process for 300 ms');
    expect(Atomics.load(hdr, H_LOCK_STEALS)).toBe(0);
    expect(Atomics.load(hdr, H_PAGE_LOCK)).not.toBe(0);

    await holder.kill();
    // a (default timeout 5 s) takes the dead holder's lock: it is stolen, not waited out
    const x = a.alloc(300_000);
    expect(Atomics.load(hdr, H_LOCK_STEALS)).toBe(1);
    expect(Atomics.load(hdr, H_PAGE_LOCK)).toBe(0);
    x.release();
    b.alloc(300_000).release(); // b is fine too
    expect(a.recoverDead()).toBe(1); // the holder's slot
  }, 30_000);

  it('lock recovery resets the continuation units of a run the dead holder never committed', async () => {
    const a = create({ initialBytes: 1 << 20, growChunk: 1 << 20 }); // 16 free units
    const grower = child(a.name, 'orphans', '4', '6'); // units 5..10 marked as continuations, lock held
    await grower.waitFor((m) => m.t === 'locked');
    await grower.kill();
    // needs all 16 units of segment 0: only possible if the orphans were reset
    const x = a.alloc(16 * 65536);
    expect(a.stats().reservedBytes).toBe(1 << 20);
    expect(a.stats().segments).toBe(1);
    x.release();
  }, 30_000);

  it('lock recovery links a slab the dead holder committed but never linked', async () => {
    const a = create();
    const grower = child(a.name, 'unlinked-slab', '100');
    const { unit } = await grower.waitFor((m) => m.t === 'locked');
    await grower.kill();
    const x = a.alloc(100); // steals the lock, rebuilds the class lists, finds the slab
    expect(Math.floor(x.arenaOffset / 65536)).toBe(unit);
    expect(a.stats().slabs).toBe(1);
    x.release();
  }, 30_000);

  it('lock recovery returns the units of a large block whose free died half-way', async () => {
    const a = create({ initialBytes: 1 << 20, growChunk: 1 << 20 });
    const freer = child(a.name, 'half-free', String(15 * 65536));
    await freer.waitFor((m) => m.t === 'locked');
    await freer.kill();
    const x = a.alloc(16 * 65536); // needs the whole first segment
    expect(a.stats()).toMatchObject({ segments: 1, liveBlocks: 1, inUseBytes: 16 * 65536 });
    x.release();
  }, 30_000);
});

describe('dead slots', () => {
  it('opening an arena recovers the holds of a dead process', async () => {
    const a = create();
    const holder = child(a.name, 'hold', '300', '1000');
    await holder.waitFor((m) => m.t === 'held');
    const big = child(a.name, 'hold', '2', '500000');
    await big.waitFor((m) => m.t === 'held');
    expect(a.stats().liveBlocks).toBe(302);
    await holder.kill();
    await big.kill();
    expect(a.stats().liveBlocks).toBe(302); // nobody recovered yet
    const b = Arena.open(a.name);
    open.push(b);
    expect(a.stats()).toMatchObject({ liveBlocks: 0, inUseBytes: 0 });
    expect(a.recoverDead()).toBe(0);
  }, 30_000);

  it('recovery rebuilds the hint bitmaps a dead process left set', async () => {
    const a = create();
    const dirty = child(a.name, 'dirty-hints', '256');
    await dirty.waitFor((m) => m.t === 'held');
    await dirty.kill();
    expect(a.recoverDead()).toBe(1);
    // a whole slab's worth of 256-byte blocks fits in the dead process's slab again
    const blocks = Array.from({ length: 200 }, () => a.alloc(256));
    expect(a.stats().slabs).toBe(1);
    for (const b of blocks) b.release();
  }, 30_000);

  it('takes over the claim of a dead recoverer, leaves a live recoverer alone', async () => {
    const a = create();
    const hdr = arenaCore(a).hdr;
    const holder = child(a.name, 'hold', '50', '64');
    await holder.waitFor((m) => m.t === 'held');
    const pid = holder.pid;
    let slot = -1;
    for (let i = 0; i < 24; i++) if (Atomics.load(hdr, slotBase(i) + SLOT_PID) === pid) slot = i;
    expect(slot).toBeGreaterThanOrEqual(0);
    const bystander = child(a.name, 'hold', '1', '16'); // opened while the holder lives
    await bystander.waitFor((m) => m.t === 'held');
    await holder.kill();

    // a live process (the bystander) claims to be recovering the dead slot: leave it alone
    Atomics.store(hdr, slotBase(slot) + SLOT_PID, SLOT_RECOVERING | bystander.pid);
    expect(a.recoverDead()).toBe(0);
    expect(a.stats().liveBlocks).toBe(51);

    // the recoverer dies mid-recovery: its claim is taken over and the scan completes
    await bystander.kill();
    expect(a.recoverDead()).toBe(2); // the dead holder's slot and the bystander's own slot
    expect(a.stats().liveBlocks).toBe(0);
    for (let i = 0; i < 24; i++) {
      if (i !== arenaCore(a).slot) expect(Atomics.load(hdr, slotBase(i) + SLOT_PID)).toBe(0);
    }
  }, 30_000);
});
