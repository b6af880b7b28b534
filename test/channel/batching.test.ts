/**
 * Batching and zero-copy writes between real processes (the peer is test/fixtures/channel-peer.ts), and how
 * an idle receiver spins: `sendMany` delivers everything in order across a full ring; `reserve`/`commit` sends
 * what was written in place (on shm, in the ring itself); spinning never happens without a shm channel, runs in
 * slices the event loop can interrupt, and stops when it does not pay. Counters, never timings.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { Channel, Message } from '../../src/index.js';
import type { TransportKind } from '../../src/channel/index.js';
import { PROBE_EVERY } from '../../src/channel/spin-policy.js';
import { finishPeer, stopPeers, withPeer } from '../helpers/peer.js';
import { SMALL_MQ } from '../helpers/small-queues.js';

const TRANSPORTS: TransportKind[] = ['shm', 'mq', 'socket'];

afterEach(stopPeers);

/** Collects what the peer echoes back as plain messages. */
function collect(channel: Channel): { got: Buffer[]; until(n: number): Promise<void> } {
  const got: Buffer[] = [];
  let want = Infinity;
  let done: () => void = () => {};
  channel.on('message', (m: Message) => {
    got.push(Buffer.from(m.bytes));
    m.release();
    if (got.length >= want) done();
  });
  return {
    got,
    until(n) {
      if (got.length >= n) return Promise.resolve();
      want = n;
      return new Promise((r) => (done = r));
    },
  };
}

function numbered(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, i & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
}

describe.each(TRANSPORTS)('sendMany and reserve/commit over %s', (transport) => {
  it('sendMany sends in order, reports how many fit, and the rest follows after drain', async () => {
    const { peer, session, serverApp } = await withPeer();
    const channel = await session.openChannel({ transport, ringCapacity: 4096, metadata: { mode: 'echo' }, mq: SMALL_MQ });
    const echoes = collect(channel);
    const all = Array.from({ length: 400 }, (_, i) => numbered(i, 4 + (i % 90)));
    let sent = 0;
    let partial = 0;
    while (sent < all.length) {
      const n = channel.sendMany(all.slice(sent));
      sent += n;
      if (sent < all.length) {
        partial++;
        await once(channel, 'drain');
      }
    }
    await echoes.until(all.length);
    expect(echoes.got.map((b) => b.readUInt32LE(0))).toEqual(all.map((_, i) => i));
    expect(echoes.got.every((b, i) => b.equals(all[i]!))).toBe(true);
    if (transport === 'shm') expect(partial).toBeGreaterThan(0); // a 4 KiB ring cannot take 400 at once
    expect(() => channel.sendMany([Buffer.alloc(1), 'no' as unknown as Uint8Array])).toThrow(TypeError);
    channel.close();
    await finishPeer(peer, session, serverApp);
  });

  it('reserve/commit sends what was written into the view; one reservation at a time', async () => {
    const { peer, session, serverApp } = await withPeer();
    const channel = await session.openChannel({ transport, metadata: { mode: 'echo' }, mq: SMALL_MQ });
    const echoes = collect(channel);
    expect(() => channel.reserve(channel.maxReserve + 1)).toThrow(RangeError);
    expect(() => channel.reserve(-1)).toThrow(RangeError);
    const view = channel.reserve(64)!;
    expect(view.byteLength).toBe(64);
    // shm: the view is the ring, in the session arena's shared memory; elsewhere a buffer sent on commit.
    expect(view.buffer instanceof SharedArrayBuffer).toBe(transport === 'shm');
    expect(() => channel.send(Buffer.from('overtaking'))).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(() => channel.reserve(8)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    Buffer.from('written in place').copy(view);
    channel.commit(16);
    expect(() => channel.commit(1)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    channel.reserve(8)!.fill(1);
    channel.cancelReserve();
    expect(channel.send(Buffer.from('after'))).toBe(true);
    await echoes.until(2);
    expect(echoes.got.map(String)).toEqual(['written in place', 'after']);
    expect(channel.counters.messagesOut).toBe(2);
    channel.close();
    await finishPeer(peer, session, serverApp);
  });
});

describe('reserve on a full shm ring', () => {
  it('returns undefined, then drain, then room', async () => {
    const { peer, session, serverApp } = await withPeer();
    const channel = await session.openChannel({ ringCapacity: 4096, metadata: { mode: 'lazy', startAfterMs: 200 } });
    let n = 0;
    for (;;) {
      const view = channel.reserve(1000);
      if (view === undefined) break;
      channel.commit(1000);
      n++;
    }
    expect(n).toBeGreaterThan(0);
    await once(channel, 'drain');
    expect(channel.reserve(1000)).toBeDefined();
    channel.commit(1);
    channel.close();
    await finishPeer(peer, session, serverApp);
  });
});

interface Counters {
  parks: number;
  spins: number;
  spinHits: number;
  spinYields: number;
  spinsInterrupted: number;
}

/** Times the peer ran out of work: each ends parked, or in a spin that caught a message or was cut short. */
const idlesOf = (c: Counters) => c.parks + c.spinHits + c.spinsInterrupted;

/** The peer's delivery counters, asked over a socket channel (answered by its event loop, not by a spin). */
async function counterProbe(session: import('../../src/index.js').Session): Promise<() => Promise<Counters>> {
  const probe = await session.openChannel({ transport: 'socket', metadata: { mode: 'counters' } });
  return async () => JSON.parse(Buffer.from((await probe.request(Buffer.alloc(0), { timeout: 20_000 })).bytes).toString()) as Counters;
}

describe('an idle receiver\'s spin', () => {
  it('never happens without a shm channel (mq and socket messages cannot be caught by polling memory)', async () => {
    const { peer, session, serverApp } = await withPeer();
    const counters = await counterProbe(session);
    const mq = await session.openChannel({ transport: 'mq', metadata: { mode: 'echo' }, mq: SMALL_MQ });
    for (let i = 0; i < 50; i++) await mq.request(Buffer.from([i]), { timeout: 20_000 });
    const c = await counters();
    expect(c.parks).toBeGreaterThan(0);
    expect(c.spins).toBe(0);
    mq.close();
    await finishPeer(peer, session, serverApp);
  });

  it('runs in slices: the event loop serves other work in between; a spin that did not pay stops the next ones', async () => {
    // spinMicros of a second: the first idle after a shm channel opens spins as long as the policy allows.
    const { peer, session, serverApp } = await withPeer({ options: { channels: { spinMicros: 1_000_000 } } });
    const counters = await counterProbe(session); // socket only: the peer does not spin yet
    const before = await counters();
    expect(before.spins).toBe(0);
    const shm = await session.openChannel({ metadata: { mode: 'echo' } }); // the peer idles with a shm channel: spins
    const during = await counters();
    // This request reached the peer over its event loop while it was spinning: the spin gave the loop turns
    // and was cut short, instead of blocking it for up to a second.
    expect(during.spins).toBeGreaterThan(0);
    expect(during.spinYields).toBeGreaterThan(0);
    expect(during.spinsInterrupted).toBeGreaterThan(0);
    // That spin caught nothing. The credit left from before may still buy a few short spins (each cut short by
    // the next request); once it is spent the peer only probes, about once in PROBE_EVERY idles.
    for (let i = 0; i < 2 * PROBE_EVERY; i++) await counters();
    const settled = await counters();
    for (let i = 0; i < 4 * PROBE_EVERY; i++) await counters();
    const after = await counters();
    const idles = idlesOf(after) - idlesOf(settled);
    expect(idles).toBeGreaterThan(0);
    expect((after.spins - settled.spins) * PROBE_EVERY).toBeLessThanOrEqual(idles + PROBE_EVERY);
    shm.close();
    await finishPeer(peer, session, serverApp);
  });
});
