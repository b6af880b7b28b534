/**
 * The socket transport over the session socket: the frames of one tick leave in one write, each with the bytes it
 * had when it was sent (the caller may reuse its buffer at once); what a read brings is delivered from that read's
 * callback; credit for a consumed message goes out before the app's answer to it.
 */
import { describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import type { Message } from '../../src/index.js';
import { SOCKET_MESSAGE_COST, SOCKET_WINDOW, SocketTransport } from '../../src/channel/socket-transport.js';
import { BodyKind, tagOf } from '../../src/channel/envelope.js';
import { encodeHandle } from '../../src/arena/index.js';
import { finishPeer, sharedPeer, withPeer } from '../helpers/peer.js';

const shared = sharedPeer();

/** Counts the writes the shared.session socket hands to the kernel (Node's stream calls _write or _writev per write). */
function countWrites(socket: Socket): { count: () => number; restore: () => void } {
  const s = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
  const write = s._write;
  const writev = s._writev;
  let n = 0;
  s._write = function (this: unknown, ...args: unknown[]) {
    n++;
    return write.apply(this, args);
  };
  s._writev = function (this: unknown, ...args: unknown[]) {
    n++;
    return writev.apply(this, args);
  };
  return { count: () => n, restore: () => { s._write = write; s._writev = writev; } };
}

describe('socket channel sends', () => {
  it('the messages of one tick leave in one write, each with the bytes it had when sent', async () => {
    const channel = await shared.session.openChannel({ transport: 'socket' }); // the peer echoes
    await channel.request(Buffer.from('warm up'));
    const echoed: number[] = [];
    const all = new Promise<void>((resolve) => channel.on('message', (m: Message) => {
      echoed.push(m.bytes[0]!);
      if (echoed.length === 100) resolve();
    }));
    const socket = (shared.session as unknown as { parts: { socket: Socket } }).parts.socket;
    const writes = countWrites(socket);
    const reused = Buffer.alloc(16);
    try {
      for (let i = 0; i < 100; i++) {
        reused[0] = i; // one buffer for every send: each message must carry what it held then
        expect(channel.send(reused)).toBe(true);
      }
      await new Promise((r) => process.nextTick(r));
      expect(writes.count()).toBe(1);
    } finally {
      writes.restore();
    }
    await all;
    expect(echoed).toEqual(Array.from({ length: 100 }, (_, i) => i));
    channel.close();
  });
});

describe('socket channel sends carrying large bodies inline (maxSocketMessage raised on both sides)', () => {
  const channels = { maxSocketMessage: 2 ** 30 + 4096 };

  it('a large message carries the bytes it had when sent, though the kernel took only part of it at once', async () => {
    const { peer, session, serverApp } = await withPeer({ options: { channels } }, 'channel-peer.ts', { channels });
    const channel = await session.openChannel({ transport: 'socket' }); // the peer echoes
    const n = 8;
    const echoed: Uint8Array[] = [];
    const all = new Promise<void>((resolve) => channel.on('message', (m: Message) => {
      echoed.push(m.bytes);
      if (echoed.length === n) resolve();
    }));
    const reused = Buffer.alloc(1 << 20); // far more than a Unix socket's buffer: most of it waits to be written
    for (let i = 0; i < n; i++) {
      reused.fill(i + 1); // one buffer for every send, refilled at once
      if (!channel.send(reused)) await new Promise<void>((r) => channel.once('drain', () => r()));
    }
    await all;
    expect(echoed.every((b) => b.buffer instanceof ArrayBuffer)).toBe(true); // inline, not through the arena
    const uniform = (b: Uint8Array, v: number) => b.length === reused.length && b.every((x) => x === v);
    expect(echoed.map((b, i) => uniform(b, i + 1))).toEqual(Array.from({ length: n }, () => true));
    await finishPeer(peer, session, serverApp);
  });
});

describe('socket channel delivery', () => {
  it('delivers what a read of the shared.session socket brought from that read\'s callback, not an event-loop turn later', async () => {
    const channel = await shared.session.openChannel({ transport: 'socket' }); // the peer echoes
    await channel.request(Buffer.from('warm up'));
    const counters = (shared.session as unknown as { mux: { delivery: { counters: { loopTurns: number } } } }).mux.delivery.counters;
    const turns = counters.loopTurns;
    const n = 50;
    for (let i = 0; i < n; i++) await channel.request(Buffer.from([i]));
    // Each reply came in a read of the socket; none needed a setImmediate (a run past its 1 ms budget may).
    expect(counters.loopTurns - turns).toBeLessThan(n / 2);
    channel.close();
  });
});

describe('socket transport credit', () => {
  it('returns the credit of a message before delivering it, so it precedes the app\'s answer', () => {
    const wire: string[] = [];
    const t = new SocketTransport(2 ** 30, {
      send: () => wire.push('data'),
      socketWritable: () => true,
      sendCredit: (bytes) => wire.push(`credit ${bytes}`),
      sendWantCredit: () => wire.push('want'),
    });
    const body = new Uint8Array(SOCKET_WINDOW / 2);
    t.push(0, 1, body);
    t.push(0, 2, new Uint8Array(8)); // small: its credit waits for more
    t.read(10, (_tag, requestId) => wire.push(`deliver ${requestId}`));
    expect(wire).toEqual([`credit ${body.length + 64}`, 'deliver 1', 'deliver 2']);
  });

  it('hands a body over uncopied when it is most of its read, and copies one that shares its read with others', () => {
    const t = new SocketTransport(2 ** 30, {
      send: () => 0,
      socketWritable: () => true,
      sendCredit: () => 0,
      sendWantCredit: () => 0,
    });
    const read = (n: number) => new Uint8Array(new ArrayBuffer(n)); // Node gives each read a buffer of its own size
    t.push(0, 1, read(4096 + 24).subarray(24)); // a request read alone
    t.push(0, 2, read(64 * 100).subarray(64, 128)); // one of a burst of a hundred
    t.push(0, 3, read(200 * 1024).subarray(24, 24 + 64 * 1024)); // large: kept whatever shares its read
    const owned: Array<boolean | undefined> = [];
    t.read(10, (_tag, _requestId, _body, isOwned) => owned.push(isOwned));
    expect(owned).toEqual([true, false, true]);
  });

  it('counts a spilled payload by its length, so a receiver that does not consume holds back spills too', () => {
    const wire: string[] = [];
    const t = new SocketTransport(8192, {
      send: () => wire.push('data'),
      socketWritable: () => true,
      sendCredit: (bytes) => wire.push(`credit ${bytes}`),
      sendWantCredit: () => wire.push('want'),
    });
    const spilled = (length: number) => encodeHandle({ arena: '00000000000000ab', offset: 0, length, generation: 1 });
    const tag = tagOf(BodyKind.Spilled);
    expect(t.write(tag, 0, spilled(SOCKET_WINDOW / 2))).toBe(true);
    expect(t.write(tag, 0, spilled(SOCKET_WINDOW / 2))).toBe(false); // the handles alone would be 96 bytes each
    expect(wire).toEqual(['data', 'want']);
    // The receiving side counts the same: the first is within its window, the second would pass it.
    const r = new SocketTransport(8192, { send: () => 0, socketWritable: () => true, sendCredit: () => 0, sendWantCredit: () => 0 });
    r.push(tag, 0, spilled(SOCKET_WINDOW / 2));
    expect(() => r.push(tag, 0, spilled(SOCKET_WINDOW / 2 + 1))).toThrow(/window/);
    // One larger than the window goes alone and counts a window at most (a credit is 32 bits).
    const credits: number[] = [];
    const big = new SocketTransport(8192, { send: () => 0, socketWritable: () => true, sendCredit: (b) => credits.push(b), sendWantCredit: () => 0 });
    big.push(tag, 0, spilled(2 ** 40));
    big.read(1, () => {});
    big.onWantCredit();
    expect(credits).toEqual([32 + SOCKET_MESSAGE_COST + SOCKET_WINDOW]);
  });
});
