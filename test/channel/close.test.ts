/**
 * How channels end, between real processes: a close inside a handler, a close by the accepting app at once,
 * and what happens to messages sent by handle that nobody read.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SessionServer, Universe, type Session } from '../../src/index.js';
import type { TransportKind } from '../../src/channel/index.js';
import { Child } from '../helpers/child.js';
import { finishPeer, stopPeers, withPeer } from '../helpers/peer.js';
import { testUniverse } from '../helpers/universe.js';
import { SMALL_MQ } from '../helpers/small-queues.js';

const TRANSPORTS: TransportKind[] = ['shm', 'mq', 'socket'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const children: Child[] = [];
const servers: SessionServer[] = [];
afterEach(async () => {
  await stopPeers();
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});



describe.each(TRANSPORTS)('closing channels over %s', (transport) => {
  it('close() inside a message handler: nothing more is delivered, the session carries on', async () => {
    const { peer, session, serverApp } = await withPeer();
    let hosed: unknown;
    session.on('hosed', (err) => (hosed = err));
    const channel = await session.openChannel({ transport, metadata: { mode: 'burst', count: 50 }, mq: SMALL_MQ });
    let delivered = 0;
    const closed = new Promise<string>((resolve) => channel.once('close', resolve));
    channel.on('message', (m) => {
      delivered++;
      m.release();
      channel.close();
    });
    channel.send(Buffer.from('go')); // the peer answers with 50 messages in one go
    expect(await closed).toBe('local-close');
    await peer.waitFor('channel-close', (e) => e.mode === 'burst');
    await sleep(100);
    expect(delivered).toBe(1);
    expect(hosed).toBeUndefined();
    expect(session.state).toBe('open');
    const echo = await session.openChannel({ transport, metadata: { mode: 'echo' }, mq: SMALL_MQ });
    const reply = await echo.request(Buffer.from('still fine'), { timeout: 5000 });
    expect(Buffer.from(reply.bytes).toString()).toBe('still fine');
    await finishPeer(peer, session, serverApp);
  });

  it.each([
    ['', {}],
    [' (host with hasChannelListener)', { listenerCheck: true }],
  ])('an accepting app that closes the channel in its handler closes it for the opener too%s', async (_, extra) => {
    const { peer, session, serverApp } = await withPeer(extra);
    const channel = await session.openChannel({ transport, metadata: { mode: 'close-at-once' }, mq: SMALL_MQ });
    let reason: string | undefined;
    if (channel.state === 'open') channel.once('close', (r) => (reason = r));
    else reason = 'peer-closed';
    await vi.waitFor(() => expect(channel.state).toBe('closed'), { timeout: 3000, interval: 10 });
    expect(reason).toBe('peer-closed');
    expect(session.channels).not.toContain(channel);
    expect(() => channel.send(Buffer.from('x'))).toThrow(expect.objectContaining({ code: 'ECLOSED' }));
    expect(session.state).toBe('open');
    await finishPeer(peer, session, serverApp);
  });
});

describe.each(TRANSPORTS)('blocks sent by handle and never read, over %s', (transport) => {
  /**
   * The server (this process) opens a channel to a client process that takes it and never reads it, and sends
   * app-arena blocks by handle. The app arena outlives the session: a lend nobody takes back is a leak for
   * the server's whole life.
   */
  it.each(['the sender closes the channel', 'the receiver closes the channel', 'the receiver is SIGKILLed',
    'the sender closes the channel after filling it'])(
    'their lends are taken back when %s', async (how) => {
      const t = testUniverse();
      const server = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp });
      servers.push(server);
      const accepted: Session[] = [];
      server.on('session', (s) => accepted.push(s));
      const client = new Child('session-client.ts', [
        JSON.stringify({ definition: t.definition, clientApp: t.clientApp, serverApp: t.serverApp }),
      ]);
      children.push(client);
      client.send({ cmd: 'connect' });
      await client.waitFor('open');
      client.send({ cmd: 'accept-sink' });
      await client.waitFor('sinking');
      await vi.waitFor(() => expect(accepted.length).toBe(1));
      const session = accepted[0]!;
      const appArena = session.appArena; // the server's: it stays usable after the session ends
      const before = appArena.stats();

      const channel = await session.openChannel({ transport, mq: SMALL_MQ });
      await client.waitFor('sink-channel');
      // 8 fit an mq channel's 10-message queue even one to a message. Filling it instead (until it refuses) leaves
      // some accepted but held back by the transport (mq: the batch waiting for room), which never go out.
      const fill = how.endsWith('filling it');
      let count = 0;
      while (fill ? count < 20_000 : count < 8) {
        const block = appArena.alloc(1000 + (count % 8));
        block.bytes.fill(count & 0xff);
        const sent = channel.trySend(block); // false: not sent, not queued
        block.release(); // the lend keeps it alive for the receiver
        if (!sent) break;
        count++;
      }
      if (fill) expect(count, `${transport}: ${count} sent`).toBeLessThan(20_000);
      else expect(count).toBe(8);
      expect(appArena.stats().liveBlocks).toBe(before.liveBlocks + count);

      if (how.startsWith('the sender')) {
        channel.close();
      } else if (how.endsWith('closes the channel')) {
        client.send({ cmd: 'close-sinks' });
        await client.waitFor('sinks-closed');
      } else {
        client.process.kill('SIGKILL');
        await vi.waitFor(() => expect(channel.state).toBe('closed'), { timeout: 3000, interval: 10 });
      }
      await vi.waitFor(() => {
        const now = appArena.stats();
        expect(now.liveBlocks).toBe(before.liveBlocks);
        expect(now.inflightLends).toBe(before.inflightLends);
      }, { timeout: 3000, interval: 20 });
      if (!how.endsWith('SIGKILLed')) {
        await vi.waitFor(() => expect(channel.state).toBe('closed'), { timeout: 3000, interval: 10 });
        expect(session.state).toBe('open');
      }
    });
});
