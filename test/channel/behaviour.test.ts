import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, ClientSession, TimeoutError, Universe, type Session } from '../../src/index.js';
import type { Channel, TransportKind } from '../../src/channel/index.js';
import { Child } from '../helpers/child.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';
import { SMALL_MQ } from '../helpers/small-queues.js';

const TRANSPORTS: TransportKind[] = ['shm', 'mq', 'socket'];

describe.each(TRANSPORTS)('channel behaviour over %s', (transport) => {
  let peer: Child;
  let session: Session;
  let t: ReturnType<typeof testUniverse>;

  beforeAll(async () => {
    t = testUniverse();
    peer = new Child('channel-peer.ts', [JSON.stringify({
      definition: t.definition, serverApp: t.serverApp,
      // A 1 GiB allocation blocks each side's event loop for a while: keep-alive must allow it.
      options: { sessionArena: { maxBytes: 1.5 * 2 ** 30, initialBytes: 4 << 20 }, keepAlive: { timeoutMs: 30_000 } },
    })]);
    await peer.waitFor('listening');
    session = await ClientSession.connect({ universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp });
  });

  afterAll(async () => {
    await session?.close();
    await peer.kill('SIGTERM'); // graceful: the server removes its app arenas
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });

  const open = (metadata: object = { mode: 'echo' }, extra: object = {}) =>
    session.openChannel({ transport, metadata, mq: SMALL_MQ, ...extra });

  it('keeps order under load: no loss, no duplication', async () => {
    const channel = await open();
    const n = transport === 'mq' ? 3000 : 20000;
    const seen: number[] = [];
    const done = new Promise<void>((resolve) => channel.on('message', (m) => {
      seen.push(new DataView(m.bytes.buffer, m.bytes.byteOffset).getUint32(0, true));
      if (seen.length === n) resolve();
    }));
    for (let i = 0; i < n; i++) {
      const msg = Buffer.alloc(8 + (i % 57));
      msg.writeUInt32LE(i, 0);
      await channel.sendAsync(msg);
    }
    await done;
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => i));
    channel.close();
  });

  it('wraps around with odd sizes and every byte intact', async () => {
    const channel = await open({ mode: 'echo' }, { ringCapacity: 4096 });
    const sizes = Array.from({ length: 400 }, (_, i) => 1 + ((i * 7919) % 1500));
    const received: Buffer[] = [];
    const done = new Promise<void>((resolve) => channel.on('message', (m) => {
      received.push(Buffer.from(m.bytes));
      if (received.length === sizes.length) resolve();
    }));
    const sent = sizes.map((size, i) => Buffer.alloc(size, (i * 31) & 0xff));
    for (const s of sent) await channel.sendAsync(s);
    await done;
    received.forEach((r, i) => expect(r.equals(sent[i]!)).toBe(true));
    channel.close();
  });

  it('queues past a full transport, says false at the high-water mark, never drops, then drains', async () => {
    const channel = await open({ mode: 'lazy', startAfterMs: 300 }, { ringCapacity: 4096 });
    let accepted = 0;
    while (channel.send(Buffer.alloc(100, accepted & 0xff))) {
      accepted++;
      if (accepted > 100_000) throw new Error('never said false');
    }
    accepted++; // the send that said false was queued too
    expect(channel.writableNeedDrain).toBe(true);
    expect(channel.writableLength).toBeGreaterThanOrEqual(channel.writableHighWaterMark);
    expect(channel.trySend(Buffer.alloc(1))).toBe(false); // nothing is written or queued while sends wait
    let echoed = 0;
    const allBack = new Promise<void>((resolve) => channel.on('message', (m) => {
      expect(m.bytes[0]).toBe(echoed & 0xff);
      if (++echoed === accepted + 1) resolve();
    }));
    await new Promise<void>((resolve) => channel.once('drain', resolve));
    expect(channel.writableLength).toBe(0);
    await channel.sendAsync(Buffer.alloc(100, accepted & 0xff));
    await allBack;
    channel.close();
  });

  it('sends a 1 GiB block by handle: the peer reads the same memory', async () => {
    const channel = await open({ mode: 'checksum' });
    const size = 2 ** 30;
    const block = session.sessionArena.alloc(size);
    let expected = 0;
    for (let i = 0; i < size; i += 4096) {
      block.bytes[i] = (i >>> 12) & 0xff;
      expected = (expected + ((i >>> 12) & 0xff)) >>> 0;
    }
    const reply = await channel.request(block, { timeout: 20_000 });
    expect(Buffer.from(reply.bytes).readUInt32LE(0)).toBe(expected);
    expect(Buffer.from(reply.bytes).readDoubleLE(4)).toBe(size);
    block.release();
    channel.close();
  }, 60_000);

  it('matches many requests in flight; each ends exactly once by reply, timeout, abort or close', async () => {
    const channel = await open({ mode: 'late', delayMs: 100 });
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => channel.request(Buffer.from(`q${i}`), { timeout: 5000 })),
    );
    expect(replies.map((r) => Buffer.from(r.bytes).toString())).toEqual(Array.from({ length: 50 }, (_, i) => `q${i}`));

    const timedOut = await channel.request(Buffer.from('slow'), { timeout: 20 }).catch((e) => e);
    expect(timedOut).toBeInstanceOf(TimeoutError);
    const controller = new AbortController();
    const aborted = channel.request(Buffer.from('abort me'), { signal: controller.signal }).catch((e) => e);
    controller.abort();
    expect(await aborted).toBeInstanceOf(AbortError);
    // the late replies to the timed-out and aborted requests arrive and are dropped quietly
    await new Promise((r) => setTimeout(r, 200));
    const closing = channel.request(Buffer.from('never answered'), { timeout: 5000 }).catch((e) => e);
    channel.close();
    expect(await closing).toMatchObject({ code: 'ECLOSED' });
    expect(channel.pendingRequests).toBe(0);
  });

  it('iterates with for await', async () => {
    const channel = await open();
    for (let i = 0; i < 5; i++) channel.send(Buffer.from([i]));
    const got: number[] = [];
    for await (const m of channel) {
      got.push(m.bytes[0]!);
      if (got.length === 5) break;
    }
    expect(got).toEqual([0, 1, 2, 3, 4]);
    channel.close();
  });

  it('opens hundreds of channels on one session', async () => {
    // mq: RLIMIT_MSGQUEUE (800 KiB per user by default, no exemption for root) bounds queues by their size.
    const count = transport === 'mq' ? 100 : 300;
    const channels: Channel[] = await Promise.all(
      Array.from({ length: count }, () =>
        open({ mode: 'echo' }, { ringCapacity: 4096, mq: { maxMessages: 2, messageSize: 128 } })),
    );
    const replies = await Promise.all(channels.map((c, i) => c.request(Buffer.from(String(i)), { timeout: 10_000 })));
    expect(replies.map((r) => Buffer.from(r.bytes).toString())).toEqual(channels.map((_, i) => String(i)));
    let closes = 0;
    for (const c of channels) c.once('close', () => closes++);
    for (const c of channels) c.close();
    expect(closes).toBe(count);
  });
});
