/**
 * The mq transport waits on the kernel's events, between real processes: a sender blocked by a full queue
 * learns of room from the queue's descriptor (no timer), and a receiver that stops taking messages stops
 * watching its queue (no wake-up per loop turn) until it takes them again. The drain policy (mq-drain.ts) is
 * driven directly.
 */
import { describe, expect, it, vi } from 'vitest';
import { DELIVERY_BATCH } from '../../src/channel/channel.js';
import { MqDrainPolicy, PROBE_EVERY, SINGLE_AFTER } from '../../src/channel/mq-drain.js';
import { MQ_RECORD_HEADER } from '../../src/channel/mq-wire.js';
import { MQ_MIN_MESSAGE_SIZE, MqTransport } from '../../src/channel/mq-transport.js';
import { HANDLE_BYTES } from '../../src/arena/handle.js';
import { native } from '../../src/native.js';
import { uniqueObjectName } from '../helpers/names.js';
import { readdirSync } from 'node:fs';
import { sharedPeer } from '../helpers/peer.js';
import type { NativeMessageQueue } from '../../src/native.js';
import { SMALL_MQ } from '../helpers/small-queues.js';

describe('mq transport events', () => {
  const shared = sharedPeer();

  it('a sender waiting for room hears of it from the queue, with every timer of this process frozen', async () => {
    // The peer takes nothing for 300 ms, then echoes everything.
    const channel = await shared.session.openChannel({ transport: 'mq', mq: SMALL_MQ, metadata: { mode: 'lazy', startAfterMs: 300 } });
    let echoed = 0;
    channel.on('message', () => void echoed++);
    // 16-byte messages travel 36 to a queue message of SMALL_MQ: 1000 of them need more than its 10.
    const n = 1000;
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < n; i++) sends.push(channel.sendAsync(Buffer.alloc(16, i & 0xff)));
    expect(channel.writableLength).toBeGreaterThan(0); // the queue is full: the rest wait for room
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      await Promise.all(sends);
    } finally {
      vi.useRealTimers();
    }
    await vi.waitFor(() => expect(echoed).toBe(n), { timeout: 5000, interval: 10 });
    channel.close();
  }, 10_000);

  it('the messages of one tick cross in as few queue messages as fit, once the tick is over', async () => {
    // The peer takes nothing for 2 s (far longer than the steps below, even on a loaded machine); its queue
    // from us shows what arrived.
    const channel = await shared.session.openChannel({ transport: 'mq', mq: SMALL_MQ, metadata: { mode: 'lazy', startAfterMs: 2000 } });
    const out = (channel as unknown as { io: { out: NativeMessageQueue } }).io.out;
    let echoed = 0;
    channel.on('message', () => void echoed++);
    // 30 records of 16 bytes fit one queue message of SMALL_MQ (36 would); 50 need two.
    for (let i = 0; i < 30; i++) expect(channel.send(Buffer.alloc(16, i))).toBe(true);
    expect(out.attributes().currentMessages).toBe(0); // held until the tick is over
    await new Promise((resolve) => setImmediate(resolve));
    expect(out.attributes().currentMessages).toBe(1);
    for (let i = 0; i < 50; i++) channel.send(Buffer.alloc(16, i));
    expect(out.attributes().currentMessages).toBe(2); // the first 36 went when the 37th did not fit
    await new Promise((resolve) => setImmediate(resolve));
    expect(out.attributes().currentMessages).toBe(3);
    await vi.waitFor(() => expect(echoed).toBe(80), { timeout: 5000, interval: 10 });
    channel.close();
  });

  it(`queues too small for a record carrying a handle (under ${MQ_MIN_MESSAGE_SIZE} bytes) are refused before any system call`, async () => {
    const { session } = shared;
    // Queues this process made (the opener's names carry its pid); other test files make their own meanwhile.
    const queues = () => readdirSync('/dev/mqueue').filter((n) => n.includes(`.${process.pid}.`));
    const before = queues();
    await expect(session.openChannel({ transport: 'mq', mq: { messageSize: MQ_MIN_MESSAGE_SIZE - 1 } }))
      .rejects.toThrow(expect.objectContaining({ name: 'RangeError', message: expect.stringContaining('mq.messageSize') }));
    expect(queues().filter((n) => !before.includes(n))).toEqual([]);
    // The smallest allowed: anything larger than one handle's room goes by handle, and comes back.
    const channel = await session.openChannel({ transport: 'mq', mq: { maxMessages: 4, messageSize: MQ_MIN_MESSAGE_SIZE }, metadata: { mode: 'echo' } });
    expect(channel.maxReserve).toBe(HANDLE_BYTES);
    const reply = await channel.request(Buffer.alloc(100, 7), { timeout: 5000 });
    expect(Buffer.from(reply.bytes)).toEqual(Buffer.alloc(100, 7));
    reply.release();
    channel.close();
  });

  it('an accepter refuses queues made too small by the opener (it could not send a handle on them)', () => {
    const names = [uniqueObjectName('small'), uniqueObjectName('small')] as [string, string]; // this run's: the leak gate knows them
    const made = names.map((n) => native.mqOpen(n, { create: true, maxMessages: 1, messageSize: MQ_MIN_MESSAGE_SIZE - 4 }));
    try {
      expect(() => MqTransport.open(names, () => {}, () => {})).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    } finally {
      for (const q of made) q.close();
      for (const n of names) native.mqUnlink(n);
    }
  });

  it('a discard takes at most one queue of messages at a time: a peer refilling as fast as we read cannot hold the event loop', () => {
    const names = [uniqueObjectName('refill'), uniqueObjectName('refill')] as [string, string]; // this run's: the leak gate knows them
    const made = names.map((n) => native.mqOpen(n, { create: true, maxMessages: 4, messageSize: 64 }));
    const message = Buffer.alloc(MQ_RECORD_HEADER + 1);
    message.writeUInt32LE(1, 0); // an inline record of one byte
    message.writeUInt32LE(1, 8);
    const transport = MqTransport.open(names, () => {}, () => {}); // reads names[0], writes names[1]
    try {
      for (const [i, queue] of made.entries()) {
        for (let k = 0; k < 4; k++) queue.send(message);
        // The "peer": every record we are shown, it puts another one in the queue.
        let seen = 0;
        const refill = () => {
          seen++;
          queue.send(message);
        };
        if (i === 0) transport.discardInbound(refill);
        else transport.discardOutbound(refill);
        expect(seen).toBe(4);
      }
    } finally {
      transport.close();
      for (const q of made) q.close();
      for (const n of names) native.mqUnlink(n);
    }
  });

  it('a channel that stops taking messages stops watching its queue; all arrive, in order, once it takes them', async () => {
    // On our first message the peer sends a burst of 1-byte messages, 78 to a queue message of SMALL_MQ; its
    // queue to us holds 10 of those, the rest wait on its side. One delivery batch may still be read after the
    // listener leaves (it waits in the channel): the burst is larger than both together, so messages are left
    // waiting in the queue whatever the timing.
    const count = DELIVERY_BATCH + 10 * Math.floor(SMALL_MQ.messageSize! / (MQ_RECORD_HEADER + 1)) + 100;
    const channel = await shared.session.openChannel({ transport: 'mq', mq: SMALL_MQ, metadata: { mode: 'burst', count } });
    const io = (channel as unknown as { io: { watching: boolean } }).io;
    const got: number[] = [];
    const first = (m: { bytes: Uint8Array }) => {
      got.push(m.bytes[0]!);
      channel.off('message', first); // nobody takes messages from here on
    };
    channel.on('message', first);
    channel.send(Buffer.from('go'));
    await vi.waitFor(() => expect(got.length).toBe(1), { timeout: 5000, interval: 5 });
    // Messages keep waiting in the queue (readable), but nobody takes them: the watch must stop.
    await vi.waitFor(() => expect(io.watching).toBe(false), { timeout: 5000, interval: 5 });
    channel.on('message', (m) => got.push(m.bytes[0]!));
    await vi.waitFor(() => expect(got.length).toBe(count), { timeout: 5000, interval: 10 });
    expect(got).toEqual(Array.from({ length: count }, (_, i) => i & 0xff));
    channel.close();
  });
});

describe('mq drain policy', () => {
  it('drains until empty at first and while wake-ups find several messages', () => {
    const p = new MqDrainPolicy();
    expect(p.limit()).toBe(Infinity);
    for (let i = 0; i < 100; i++) {
      expect(p.limit()).toBe(Infinity);
      p.read(3, true);
    }
    expect(p.takesOne).toBe(false);
  });

  it(`takes one message per wake-up after ${SINGLE_AFTER} drains of one, and drains fully every ${PROBE_EVERY}th`, () => {
    const p = new MqDrainPolicy();
    for (let i = 0; i < SINGLE_AFTER; i++) {
      expect(p.limit()).toBe(Infinity);
      p.read(1, true);
    }
    expect(p.takesOne).toBe(true);
    const limits: number[] = [];
    for (let i = 0; i < 2 * PROBE_EVERY; i++) {
      const limit = p.limit();
      limits.push(limit);
      p.read(1, limit !== 1); // a probe finds one message, then the queue empty
    }
    expect(limits.filter((l) => l === Infinity)).toHaveLength(2);
    expect(limits.filter((l) => l === 1)).toHaveLength(2 * PROBE_EVERY - 2);
    expect(p.takesOne).toBe(true);
  });

  it('drains again as soon as a probe finds several messages waiting', () => {
    const p = new MqDrainPolicy();
    for (let i = 0; i < SINGLE_AFTER; i++) p.read(1, true);
    let limit = p.limit();
    for (let i = 0; i < PROBE_EVERY && limit === 1; i++) {
      p.read(1, false);
      limit = p.limit();
    }
    expect(limit).toBe(Infinity); // a probe
    p.read(10, true);
    expect(p.takesOne).toBe(false);
    expect(p.limit()).toBe(Infinity);
  });

  it('a read stopped before the queue was found empty does not count as a drain of one', () => {
    const p = new MqDrainPolicy();
    for (let i = 0; i < 3 * SINGLE_AFTER; i++) p.read(1, false);
    expect(p.takesOne).toBe(false);
  });
});
