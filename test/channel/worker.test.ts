import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientSession, Universe, type Session } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';
import { moduleWorker } from '../../src/module-worker.js';

describe('channels in worker_threads', () => {
  let peer: Child;
  let session: Session;
  let t: ReturnType<typeof testUniverse>;

  beforeAll(async () => {
    t = testUniverse();
    peer = new Child('channel-peer.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })]);
    await peer.waitFor('listening');
    session = await ClientSession.connect({ universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp });
  });

  afterAll(async () => {
    await session?.close();
    await peer.kill('SIGTERM');
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });

  it('a Worker sends and receives a block by handle through the bridge: the same memory, no copy', async () => {
    const channel = await session.openChannel({ metadata: { mode: 'echo' } });
    const port = session.channelToWorker(channel);
    const worker = moduleWorker(new URL('../fixtures/channel-worker.ts', import.meta.url), {
      workerData: { port }, transferList: [port],
    });
    const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(result).toEqual({
      shared: true, same: true, seesWrite: true, isBlock: true, text: 'from the worker', early: 'early', closed: 'local-close',
    });
    expect(channel.state).toBe('closed');
    await worker.terminate();
    // Every block the Worker and the peer held went back.
    expect(session.sessionArena.stats().liveBlocks).toBeLessThan(10);
  });

  it('WorkerChannel calls take signal (AbortError) and timeoutMs (TimeoutError) while they wait for room', async () => {
    const channel = await session.openChannel({ metadata: { mode: 'sink' }, ringCapacity: 4096 });
    const port = session.channelToWorker(channel);
    const worker = moduleWorker(new URL('../fixtures/channel-worker-abort.ts', import.meta.url), {
      workerData: { port }, transferList: [port],
    });
    const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(result).toEqual({
      aborted: { name: 'AbortError', code: 'ABORT_ERR' },
      timedOut: { name: 'TimeoutError', code: 'ETIMEDOUT' },
      request: { name: 'TimeoutError', code: 'ETIMEDOUT' },
    });
    await worker.terminate();
  });

  it.each([false, true])('holds a flooding peer back while the Worker does not take messages, then delivers all in order (message views: %s)', async (messageViews) => {
    // A 4 KiB ring wraps hundreds of times: a message that aliased the ring would show another one's number.
    const channel = await session.openChannel({ metadata: { mode: 'flood' }, messageViews, ringCapacity: 4096 });
    const port = session.channelToWorker(channel);
    const total = 20000;
    const worker = moduleWorker(new URL('../fixtures/channel-worker-flood.ts', import.meta.url), {
      workerData: { port, total }, transferList: [port],
    });
    const result = await new Promise<{ waitingWhileIdle: number; count: number; inOrder: boolean }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(result.waitingWhileIdle).toBeGreaterThan(0);
    expect(result.waitingWhileIdle).toBeLessThanOrEqual(256); // the bridge's window, not the whole flood
    expect(result).toMatchObject({ count: total, inOrder: true });
    await worker.terminate();
  });

  it('closes the channel when the Worker goes away without closing it', async () => {
    const channel = await session.openChannel({ metadata: { mode: 'echo' } });
    const port = session.channelToWorker(channel);
    const worker = moduleWorker(new URL('../fixtures/channel-worker-idle.ts', import.meta.url), {
      workerData: { port }, transferList: [port],
    });
    await new Promise((resolve) => worker.once('message', resolve));
    const closed = new Promise<string>((resolve) => channel.once('close', resolve));
    await worker.terminate();
    expect(await closed).toBe('local-close');
  });

  it('refuses a channel that already has a listener on this thread', async () => {
    const channel = await session.openChannel({ metadata: { mode: 'echo' } });
    channel.on('message', () => {});
    expect(() => session.channelToWorker(channel)).toThrow(TypeError);
    channel.close();
  });
});
