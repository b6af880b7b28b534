import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClientSession, SessionServer, Universe, type Session } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';

const children: Child[] = [];
const servers: SessionServer[] = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('sessions at scale', () => {
  it('200 open/close cycles leave nothing behind', async () => {
    const t = testUniverse();
    const universe = new Universe(t.definition);
    const server = await SessionServer.start({
      universe, serverApp: t.serverApp, sessionArena: { maxBytes: 1 << 20, initialBytes: 1 << 16 },
    });
    servers.push(server);
    for (let i = 0; i < 200; i++) {
      const s = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp });
      s.sessionArena.alloc(100).release();
      await s.close(i % 2 === 0 ? 'local-close' : undefined);
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(server.metrics.opened).toBe(200);
    expect(server.metrics.active).toBe(0);
    expect((await shmObjectsOf(t.serverApp)).filter((n) => n.startsWith('shmx.sa.'))).toEqual([]);
    await server.close();
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });

  it('64 concurrent sessions from another process, then a server shutdown, leave nothing behind', async () => {
    const t = testUniverse();
    const server = await SessionServer.start({
      universe: new Universe(t.definition), serverApp: t.serverApp,
      sessionArena: { maxBytes: 1 << 20, initialBytes: 1 << 16 },
      // 64 handshakes at once on a loaded machine may take longer than the default 2 s deadline.
      handshakeTimeoutMs: 20_000,
    });
    servers.push(server);
    const accepted: Session[] = [];
    server.on('session', (s) => accepted.push(s));
    const c = new Child('session-client.ts', [
      JSON.stringify({ definition: t.definition, clientApp: t.clientApp, serverApp: t.serverApp }),
    ]);
    children.push(c);
    for (let i = 0; i < 64; i++) c.send({ cmd: 'connect' });
    await c.waitFor('open', (e) => e.index === 63, 30_000);
    expect(c.events.filter((e) => e.event === 'error')).toEqual([]);
    // A client is open once it sent READY; the server opens its side when READY arrives, a moment later.
    await vi.waitFor(() => expect(server.metrics.active).toBe(64), { timeout: 5000, interval: 10 });
    expect(new Set(accepted.map((s) => s.id)).size).toBe(64);
    await server.close();
    await c.waitFor('close', () => c.events.filter((e) => e.event === 'close').length === 64);
    expect(c.events.filter((e) => e.event === 'close').every((e) => e.reason === 'server-shutdown')).toBe(true);
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });
});
