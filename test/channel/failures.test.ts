import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClientSession, SessionServer, Universe, type Channel, type Session } from '../../src/index.js';
import type { TransportKind } from '../../src/channel/index.js';
import { native } from '../../src/native.js';
import { Child } from '../helpers/child.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';
import { SMALL_MQ } from '../helpers/small-queues.js';

const children: Child[] = [];
const servers: SessionServer[] = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function queueExists(name: string): boolean {
  try {
    native.mqOpen(name).close();
    return true;
  } catch {
    return false;
  }
}

describe.each<TransportKind>(['shm', 'mq', 'socket'])('channel failures over %s', (transport) => {
  it('a peer SIGKILLed mid-send closes the channel with peer-crashed and leaves nothing behind', async () => {
    const t = testUniverse();
    const server = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp });
    servers.push(server);
    const channels: Channel[] = [];
    let received = 0;
    server.on('session', (s) => s.on('channel', (c) => {
      channels.push(c);
      c.on('message', (m) => {
        received++;
        m.release();
      });
    }));
    const client = new Child('session-client.ts', [
      JSON.stringify({ definition: t.definition, clientApp: t.clientApp, serverApp: t.serverApp }),
    ]);
    children.push(client);
    client.send({ cmd: 'connect' });
    await client.waitFor('open');
    client.send({ cmd: 'stream', transport });
    await client.waitFor('streaming');
    await vi.waitFor(() => expect(received).toBeGreaterThan(1000), { timeout: 5000 });
    const channel = channels[0]!;
    const io = (channel as unknown as { io: { inq?: { name: string }; out?: { name: string } } }).io;
    const queues = transport === 'mq' ? [io.inq!.name, io.out!.name] : [];
    const closed = new Promise<string>((resolve) => channel.once('close', resolve));
    client.process.kill('SIGKILL');
    expect(await closed).toBe('peer-crashed');
    expect(channel.state).toBe('closed');
    expect(() => channel.send(Buffer.from('late'))).toThrow(expect.objectContaining({ code: 'ECLOSED' }));
    // The dead client created the queues; the survivor's sweep finds them through its ledger.
    await vi.waitFor(() => {
      for (const q of queues) expect(queueExists(q)).toBe(false);
    }, { timeout: 3000, interval: 20 });
    await vi.waitFor(async () => {
      const left = (await shmObjectsOf(t.serverApp)).filter((n) => !n.startsWith('shmx.aa.'));
      expect(left).toEqual([]);
    }, { timeout: 3000, interval: 20 });
  });

  const corruptions = transport === 'mq' ? ['short', 'empty', 'overrun'] : ['bad'];
  it.each(corruptions)('corruption from the peer (%s) faults only that session; the process and other sessions carry on', async (how) => {
    const t = testUniverse();
    const peer = new Child('channel-peer.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })]);
    children.push(peer);
    await peer.waitFor('listening');
    const universe = new Universe(t.definition);
    const victim: Session = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp });
    const bystander: Session = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp });
    const hosed = new Promise<{ code: string; reason: string }>((resolve) => victim.once('hosed', resolve));
    const bad = await victim.openChannel({ transport, metadata: { mode: 'corrupt', how }, mq: SMALL_MQ });
    const healthy = await bystander.openChannel({ transport, metadata: { mode: 'echo' }, mq: SMALL_MQ });
    bad.on('message', (m) => m.release());
    const badClosed = new Promise<string>((resolve) => bad.once('close', resolve));
    bad.send(Buffer.from('go'));
    const err = await hosed;
    expect(err.code).toBe('EHOSED');
    expect(err.reason).toBe('protocol-error');
    expect(await badClosed).toBe('protocol-error');
    const reply = await healthy.request(Buffer.from('still here'), { timeout: 5000 });
    expect(Buffer.from(reply.bytes).toString()).toBe('still here');
    await bystander.close();
    await peer.kill('SIGTERM');
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });
});
