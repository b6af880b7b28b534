import { afterEach, describe, expect, it } from 'vitest';
import { ClientSession, SessionServer, Universe, type Channel } from '../../src/index.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';

const servers: SessionServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('channels at scale', () => {
  it('1000 shm channels on one session with default settings, without a kernel object per channel', async () => {
    const t = testUniverse();
    const universe = new Universe(t.definition);
    const server = await SessionServer.start({ universe, serverApp: t.serverApp });
    servers.push(server);
    server.on('session', (s) => s.on('channel', (c) => c.on('message', (m) => void m.replyAsync(m.bytes))));
    const session = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp });
    const before = (await shmObjectsOf(t.serverApp)).length;
    const channels: Channel[] = [];
    for (let i = 0; i < 1000; i++) channels.push(await session.openChannel());
    const replies = await Promise.all(channels.map((c, i) => c.request(Buffer.from(String(i)), { timeout: 20_000 })));
    expect(replies.map((r) => Buffer.from(r.bytes).toString())).toEqual(channels.map((_, i) => String(i)));
    // 2000 rings live in the session arena's segments: a few dozen segments, not thousands of objects.
    const objects = (await shmObjectsOf(t.serverApp)).length;
    expect(objects - before).toBeLessThan(64);
    for (const c of channels) c.close();
    await session.close();
    expect((await shmObjectsOf(t.serverApp)).filter((n) => n.startsWith('shmx.sa.'))).toEqual([]);
  }, 60_000);
});
