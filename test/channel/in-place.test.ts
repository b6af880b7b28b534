/**
 * Large copied payloads are read in place (issue 9 item 6): the sender's copy into the session arena is the only
 * one; the receiver's message is a view of that block, held until `release()`, its garbage collection or the
 * session's close — and past a quarter of the session arena held that way (half, for one payload held alone), a
 * private copy (so an app that keeps messages can never starve the sender's spills). Real processes: the peer echoes what it gets.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import type { Channel, Message, Session } from '../../src/index.js';
import { finishPeer, stopPeers, withPeer } from '../helpers/peer.js';

afterEach(() => stopPeers());

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const KiB = 1024;

function payload(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return b;
}

/** Sends `bytes` and resolves with the echo, as a message nobody released yet. */
function echoOf(channel: Channel, bytes: Uint8Array): Promise<Message> {
  const got = new Promise<Message>((resolve) => channel.once('message', resolve));
  if (!channel.send(bytes)) throw new Error('backpressure in a test that sends one message at a time');
  return got;
}

const live = (session: Session) => session.sessionArena.stats().liveBlocks;

/** A small round trip: once it is back, the peer has finished with everything sent before (it echoes in order). */
async function settle(channel: Channel): Promise<void> {
  (await echoOf(channel, Buffer.from('settle'))).release();
}

describe('large copied payloads', () => {
  it('arrive as a view of the arena block, held until release()', async () => {
    const { peer, session, serverApp } = await withPeer();
    const channel = await session.openChannel({ metadata: { mode: 'echo' } });
    const before = live(session);
    const sent = payload(300 * KiB, 1);
    const m = await echoOf(channel, sent);
    await settle(channel);
    expect(m.bytes.buffer).toBeInstanceOf(SharedArrayBuffer); // in place, not a copy
    expect(Buffer.isBuffer(m.bytes)).toBe(true); // a Buffer, as small copied payloads are
    expect(m.block).toBeUndefined(); // still a copied message to the app
    expect(Buffer.compare(m.bytes, sent)).toBe(0);
    expect(live(session)).toBe(before + 1); // our hold keeps the sender's block
    m.release();
    m.release(); // idempotent
    expect(live(session)).toBe(before);
    // Small payloads stay private copies.
    const small = await echoOf(channel, payload(100, 2));
    expect(small.bytes.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    await finishPeer(peer, session, serverApp);
  });

  it('are let go when the message is garbage-collected, and when the session closes', async () => {
    const { peer, session, serverApp } = await withPeer();
    const channel = await session.openChannel({ metadata: { mode: 'echo' } });
    const before = live(session);
    await (async () => {
      const m = await echoOf(channel, payload(200 * KiB, 3));
      await settle(channel);
      expect(m.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(live(session)).toBe(before + 1);
    })(); // dropped without release()
    for (let i = 0; i < 200 && live(session) > before; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10)); // finalizers run from the event loop
    }
    expect(live(session)).toBe(before);
    const kept = await echoOf(channel, payload(200 * KiB, 4));
    await settle(channel);
    expect(live(session)).toBe(before + 1);
    await finishPeer(peer, session, serverApp); // closing with a hold: released, nothing left
    kept.release(); // after the close: a no-op, never a throw
  });

  it('past a quarter of the session arena held in place, arrive as private copies', async () => {
    const arenaBytes = 8 * 1024 * KiB; // in-place budget: 2 MiB
    const { peer, session, serverApp } = await withPeer({ options: { sessionArena: { maxBytes: arenaBytes } } });
    const channel = await session.openChannel({ metadata: { mode: 'echo' } });
    const before = live(session);
    const kept: Message[] = [];
    for (let i = 0; i < 6; i++) {
      const sent = payload(600 * KiB, 10 + i);
      const m = await echoOf(channel, sent);
      expect(Buffer.compare(m.bytes, sent)).toBe(0);
      kept.push(m);
    }
    await settle(channel);
    const inPlace = kept.map((m) => m.bytes.buffer instanceof SharedArrayBuffer);
    expect(inPlace).toEqual([true, true, true, false, false, false]); // 3 × 600 KiB ≤ 2 MiB < 4 × 600 KiB
    expect(live(session)).toBe(before + 3);
    for (const m of kept) m.release();
    expect(live(session)).toBe(before);
    await finishPeer(peer, session, serverApp);
  });

  it('one payload larger than that quarter, held alone, arrives in place up to half the session arena', async () => {
    const arenaBytes = 8 * 1024 * KiB; // quarter 2 MiB, half 4 MiB
    const { peer, session, serverApp } = await withPeer({ options: { sessionArena: { maxBytes: arenaBytes } } });
    const channel = await session.openChannel({ metadata: { mode: 'echo' } });
    const big = payload(3 * 1024 * KiB, 30);
    const held = await echoOf(channel, big);
    expect(Buffer.compare(held.bytes, big)).toBe(0);
    expect(held.bytes.buffer).toBeInstanceOf(SharedArrayBuffer); // alone: in place, no fresh 3 MiB buffer
    // Next to it, even a small spill no longer fits the quarter: a private copy.
    const next = await echoOf(channel, payload(100 * KiB, 31));
    expect(next.bytes.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    held.release();
    // Over half the arena: a private copy even alone, so the sender keeps room for a message as large.
    const huge = payload(4 * 1024 * KiB + 4 * KiB, 32);
    const copied = await echoOf(channel, huge);
    expect(Buffer.compare(copied.bytes, huge)).toBe(0);
    expect(copied.bytes.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    await finishPeer(peer, session, serverApp);
  });

  it('over the socket transport, a payload over maxSocketMessage (8 KiB by default) is read in place too', async () => {
    const { peer, session, serverApp } = await withPeer();
    const channel = await session.openChannel({ transport: 'socket', metadata: { mode: 'echo' } });
    const sent = payload(1024 * KiB, 22);
    const m = await echoOf(channel, sent);
    expect(Buffer.compare(m.bytes, sent)).toBe(0);
    expect(m.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    m.release();
    const inline = payload(8 * KiB, 23); // the largest carried on the socket itself
    const back = await echoOf(channel, inline);
    expect(Buffer.compare(back.bytes, inline)).toBe(0);
    expect(back.bytes.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    await finishPeer(peer, session, serverApp);
  });

  it('over the socket transport, a side that raised maxSocketMessage sends inline only what the peer accepts', async () => {
    // This side accepts 1 GiB inline; the peer, with the default, 8 KiB: both learned it in the handshake.
    const { peer, session, serverApp } = await withPeer({}, 'channel-peer.ts', { channels: { maxSocketMessage: 2 ** 30 + 4096 } });
    const channel = await session.openChannel({ transport: 'socket', metadata: { mode: 'echo' } });
    const sent = payload(1024 * KiB, 24);
    const m = await echoOf(channel, sent); // inline, the peer would have faulted the session (frame over its limit)
    expect(Buffer.compare(m.bytes, sent)).toBe(0);
    expect(session.state).toBe('open');
    m.release();
    await finishPeer(peer, session, serverApp);
  });

  it('over the socket transport carrying large bodies inline, one is handed over in the buffer it was received into', async () => {
    const channels = { maxSocketMessage: 2 ** 30 + 4096 }; // both sides
    const { peer, session, serverApp } = await withPeer({ options: { channels } }, 'channel-peer.ts', { channels });
    const channel = await session.openChannel({ transport: 'socket', metadata: { mode: 'echo' } });
    const sent = payload(1024 * KiB, 20);
    const m = await echoOf(channel, sent);
    expect(Buffer.compare(m.bytes, sent)).toBe(0);
    // A copy would be a buffer of its own (offset 0); the received frame has its header before the body.
    expect(m.bytes.byteOffset).toBeGreaterThan(0);
    expect(m.bytes.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    const small = payload(1000, 21);
    expect(Buffer.compare((await echoOf(channel, small)).bytes, small)).toBe(0);
    await finishPeer(peer, session, serverApp);
  });
});
