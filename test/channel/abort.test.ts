/**
 * Cancellation on every async call (issue 11 item 3): each takes `signal` (AbortError, code ABORT_ERR) and the
 * ones with a time limit take `timeoutMs` (TimeoutError, code ETIMEDOUT) — two distinct errors — and what was
 * given up is undone: an aborted send is not sent, an aborted open leaves no channel, an aborted start leaves no
 * server. The peer is a real process (test/fixtures/habits-peer.ts).
 */
import { existsSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, ClientSession, SessionServer, TimeoutError, Universe, type Channel, type Session } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';
import { SMALL_MQ } from '../helpers/small-queues.js';

let peer: Child;
let session: Session;
let serverApp: string;
let universe: Universe;
let clientApp: string;

beforeAll(async () => {
  const t = testUniverse();
  ({ serverApp, clientApp } = t);
  universe = new Universe(t.definition);
  peer = new Child('habits-peer.ts', [JSON.stringify({ definition: t.definition, serverApp })]);
  await peer.waitFor('listening');
  session = await ClientSession.connect({ universe, clientApp, serverApp });
});

afterAll(async () => {
  await session?.close();
  await peer?.stop();
  expect(await shmObjectsOf(serverApp)).toEqual([]);
});

const numbered = (seq: number): Buffer => {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(seq, 0);
  return b;
};

const isAbort = (err: unknown) => err instanceof AbortError && (err as AbortError).code === 'ABORT_ERR' && !(err instanceof TimeoutError);
const isTimeout = (err: unknown) => err instanceof TimeoutError && (err as TimeoutError).code === 'ETIMEDOUT' && !(err instanceof AbortError);

/** A channel whose peer reads nothing for a while: its transport fills. */
async function backedUp(): Promise<{ channel: Channel; sent: number }> {
  const channel = await session.openChannel({ transport: 'mq', metadata: { mode: 'verify', startAfterMs: 1500 }, mq: SMALL_MQ });
  let sent = 0;
  while (channel.trySend(numbered(sent))) sent++;
  return { channel, sent };
}

describe('sendAsync', () => {
  it('aborted or timed out while it waits for room: rejected, and never sent', async () => {
    const { channel, sent } = await backedUp();
    const controller = new AbortController();
    const aborted = channel.sendAsync(numbered(1_000_000), { signal: controller.signal }).catch((e) => e);
    const timedOut = channel.sendAsync(numbered(2_000_000), { timeoutMs: 50 }).catch((e) => e);
    controller.abort();
    expect(isAbort(await aborted)).toBe(true);
    expect(isTimeout(await timedOut)).toBe(true);
    expect(channel.writableLength).toBe(0);
    await channel.sendAsync(numbered(sent)); // goes out once the peer reads: the two given up never do
    const counted = JSON.parse(Buffer.from((await channel.request(Buffer.alloc(4), { timeoutMs: 30_000 })).bytes).toString());
    expect(counted).toEqual({ received: sent + 1, misordered: 0 });
    channel.close();
  }, 30_000);

  it('an already aborted signal rejects before anything is sent', async () => {
    const channel = await session.openChannel({ metadata: { mode: 'verify' } });
    const err = await channel.sendAsync(numbered(0), { signal: AbortSignal.abort() }).catch((e) => e);
    expect(isAbort(err)).toBe(true);
    await expect(channel.sendAsync(numbered(0), { timeoutMs: -1 })).rejects.toThrow(RangeError);
    const counted = JSON.parse(Buffer.from((await channel.request(Buffer.alloc(4))).bytes).toString());
    expect(counted.received).toBe(0);
    channel.close();
  });
});

describe('request', () => {
  it('timeoutMs gives TimeoutError, signal gives AbortError; a request that never got room is not sent', async () => {
    const { channel } = await backedUp();
    const controller = new AbortController();
    const aborted = channel.request(numbered(0), { signal: controller.signal }).catch((e) => e);
    controller.abort();
    expect(isAbort(await aborted)).toBe(true);
    expect(isTimeout(await channel.request(numbered(0), { timeoutMs: 50 }).catch((e) => e))).toBe(true);
    expect(channel.writableLength).toBe(0); // both taken out of the queue
    channel.close();
  }, 30_000);
});

describe('openChannel', () => {
  it('aborted: AbortError; a channel the peer accepts afterwards is closed at once', async () => {
    const controller = new AbortController();
    const opening = session.openChannel({ metadata: { mode: 'verify' }, signal: controller.signal }).catch((e) => e);
    controller.abort();
    expect(isAbort(await opening)).toBe(true);
    await expect(session.openChannel({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    // The session goes on; the abandoned channel is gone here once the peer's accept came in.
    const next = await session.openChannel({ metadata: { mode: 'verify' } });
    expect(session.channels.map((c) => c.id)).toEqual([next.id]);
    next.close();
  });
});

describe('iterators', () => {
  it('channel.messages({ signal }) ends its loop with AbortError', async () => {
    const channel = await session.openChannel({ metadata: { mode: 'verify' } });
    const controller = new AbortController();
    const loop = (async () => {
      for await (const m of channel.messages({ signal: controller.signal })) m.release();
    })().catch((e) => e);
    setImmediate(() => controller.abort());
    expect(isAbort(await loop)).toBe(true);
    channel.close();
  });

  it('server.sessions({ signal }) ends its loop with AbortError', async () => {
    const t = testUniverse();
    const server = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp });
    const controller = new AbortController();
    const loop = (async () => {
      for await (const s of server.sessions({ signal: controller.signal })) void s;
    })().catch((e) => e);
    setImmediate(() => controller.abort());
    expect(isAbort(await loop)).toBe(true);
    await server.close();
  });
});

describe('SessionServer.start', () => {
  it('aborted before or during the start: AbortError, and nothing is left (the app can start again)', async () => {
    const t = testUniverse();
    const u = new Universe(t.definition);
    await expect(SessionServer.start({ universe: u, serverApp: t.serverApp, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    const controller = new AbortController();
    const starting = SessionServer.start({ universe: u, serverApp: t.serverApp, signal: controller.signal }).catch((e) => e);
    controller.abort();
    expect(isAbort(await starting)).toBe(true);
    expect(existsSync(u.socketPath(t.serverApp))).toBe(false);
    const server = await SessionServer.start({ universe: u, serverApp: t.serverApp }); // the lock was released
    await server.close();
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });
});

describe('ClientSession.connect', () => {
  it('a server that never answers: TimeoutError past timeoutMs, AbortError on abort', async () => {
    const t = testUniverse();
    const u = new Universe(t.definition);
    // A socket that accepts and says nothing: the handshake never completes.
    const accepted: Socket[] = [];
    const silent = createServer((socket) => accepted.push(socket.on('error', () => {})));
    await new Promise<void>((resolve) => silent.listen(u.socketPath(t.serverApp), resolve));
    try {
      const options = { universe: u, clientApp: t.clientApp, serverApp: t.serverApp };
      const timedOut = await ClientSession.connect({ ...options, timeoutMs: 100 }).catch((e) => e);
      expect(isTimeout(timedOut)).toBe(true);
      const controller = new AbortController();
      const connecting = ClientSession.connect({ ...options, signal: controller.signal }).catch((e) => e);
      setImmediate(() => controller.abort());
      expect(isAbort(await connecting)).toBe(true);
    } finally {
      for (const socket of accepted) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
