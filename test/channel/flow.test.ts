/**
 * Flow control and wake-ups between real processes: a receiver that does not consume holds its sender back
 * on every transport; a sender never rings for transports that wake the peer by themselves; a failing
 * doorbell never fails a send that already went out.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TransportKind } from '../../src/channel/index.js';
import { MQ_RECORD_HEADER } from '../../src/channel/mq-wire.js';
import { SOCKET_MESSAGE_COST, SOCKET_WINDOW } from '../../src/channel/socket-transport.js';
import type { NativeDoorbell } from '../../src/native.js';
import { sharedPeer } from '../helpers/peer.js';
import { SMALL_MQ } from '../helpers/small-queues.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const shared = sharedPeer();

afterEach(() => {
  vi.restoreAllMocks();
});

/** This side's doorbell (it rings the peer through it). */
const bell = (): NativeDoorbell => (shared.session as unknown as { mux: { wakeup: { bell: NativeDoorbell } } }).mux.wakeup.bell;

const SIZE = 4096;
/** Most messages of SIZE bytes each transport may have in flight to a receiver that takes none. */
const BOUND: Record<TransportKind, number> = {
  shm: Math.floor(64 * 1024 / SIZE), // the ring
  // The kernel queue (mq_maxmsg of 8 KiB messages, one record of SIZE each) and the batch that waits for room.
  mq: (10 + 1) * Math.floor(8192 / (SIZE + MQ_RECORD_HEADER)),
  socket: Math.floor(SOCKET_WINDOW / (SIZE + SOCKET_MESSAGE_COST)) + 1, // the credit window
};

describe.each<TransportKind>(['shm', 'mq', 'socket'])('flow control over %s', (transport) => {
  it('a receiver that does not consume holds the sender back; all flows once it does', async () => {
    // The peer takes no message for 1.5 s, then echoes everything.
    const channel = await shared.session.openChannel({ transport, metadata: { mode: 'lazy', startAfterMs: 1500 } });
    const n = 1000;
    let sent = 0;
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < n; i++) sends.push(channel.sendAsync(Buffer.alloc(SIZE, i & 0xff)).then(() => void sent++));
    await sleep(700);
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThanOrEqual(BOUND[transport]);
    let echoed = 0;
    const back = new Promise<void>((resolve) => channel.on('message', (m) => {
      expect(m.bytes[0]).toBe(echoed & 0xff);
      if (++echoed === n) resolve();
    }));
    await Promise.all(sends);
    await back;
    channel.close();
  }, 20_000);
});

describe('wake-ups', () => {
  it.each<TransportKind>(['mq', 'socket'])('a send over %s never rings the peer\'s doorbell', async (transport) => {
    const channel = await shared.session.openChannel({ transport, metadata: { mode: 'echo' }, mq: SMALL_MQ });
    await channel.request(Buffer.from('warm up'), { timeout: 5000 });
    await sleep(100); // both sides idle: parked
    const rings = bell().counters.rings;
    for (let i = 0; i < 3; i++) {
      await channel.request(Buffer.from([i]), { timeout: 5000 });
      await sleep(20);
    }
    expect(bell().counters.rings).toBe(rings);
    channel.close();
  });

  it('a doorbell that fails after the message went out does not fail the send, and the next one rings', async () => {
    const channel = await shared.session.openChannel({ metadata: { mode: 'echo' } });
    await channel.request(Buffer.from('warm up'), { timeout: 5000 });
    const got: string[] = [];
    channel.on('message', (m) => got.push(Buffer.from(m.bytes).toString()));
    await sleep(100); // the peer parks
    // An own-property stand-in for this one instance, deleted afterwards so the prototype's ring() shows through
    // again (vi.spyOn cannot be used here: ObjectWrap methods are read-only, and its restore leaves a
    // non-configurable copy on the instance that keeps counting).
    const target = bell();
    let rings = 0;
    Object.defineProperty(target, 'ring', {
      configurable: true,
      value: () => {
        rings++;
        throw Object.assign(new Error('doorbell broke'), { code: 'EIO' });
      },
    });
    try {
      expect(channel.send(Buffer.from('first'))).toBe(true);
      expect(rings).toBe(1);
    } finally {
      delete (target as Partial<NativeDoorbell>).ring;
    }
    await sleep(100);
    expect(channel.send(Buffer.from('second'))).toBe(true); // rings: the peer was asleep all along
    await vi.waitFor(() => expect(got).toEqual(['first', 'second']), { timeout: 3000, interval: 10 });
    channel.close();
  });
});
