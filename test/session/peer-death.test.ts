import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClientSession, SessionServer, Universe, type Session } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';

const children: Child[] = [];
const servers: SessionServer[] = [];
afterEach(async () => {
  for (const c of children) if (c.process.signalCode === null && c.process.exitCode === null) c.process.kill('SIGCONT');
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function spawnClient(t: ReturnType<typeof testUniverse>): Child {
  const c = new Child('session-client.ts', [
    JSON.stringify({ definition: t.definition, clientApp: t.clientApp, serverApp: t.serverApp }),
  ]);
  children.push(c);
  return c;
}

/** A server in this process and a client child process with one open session; both sides returned. */
async function serverWithChildClient(options: Record<string, unknown> = {}) {
  const t = testUniverse();
  const server = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp, ...options });
  servers.push(server);
  const accepted = new Promise<Session>((resolve) => server.once('session', resolve));
  const c = spawnClient(t);
  c.send({ cmd: 'connect' });
  await c.waitFor('open');
  return { server, c, session: await accepted };
}

function hosed(session: Session): Promise<{ reason: string; at: number; code: string }> {
  return new Promise((resolve) => session.once('hosed', (err) => resolve({ reason: err.reason, at: Date.now(), code: err.code })));
}

describe('peer death', () => {
  it('server side: a SIGKILLed client hoses the session within 100 ms and its objects are gone', async () => {
    const { server, c, session } = await serverWithChildClient();
    const fired = hosed(session);
    const closed = new Promise<string>((resolve) => session.once('close', resolve));
    const killedAt = Date.now();
    c.process.kill('SIGKILL');
    const h = await fired;
    expect(h.code).toBe('EHOSED');
    expect(h.reason).toBe('peer-crashed');
    expect(h.at - killedAt).toBeLessThan(100);
    expect((await shmObjectsOf(server.serverApp)).filter((n) => n.startsWith('shmx.sa.'))).toEqual([]);
    expect(await closed).toBe('peer-crashed');
    expect(session.state).toBe('closed');
    expect(() => session.appArena).toThrow(expect.objectContaining({ code: 'EHOSED' }));
    expect(server.metrics.faulted).toBe(1);
  });

  it('client side: a SIGKILLed server hoses the session within 100 ms and everything it made is gone', async () => {
    const t = testUniverse();
    const srv = new Child('session-server.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })]);
    children.push(srv);
    await srv.waitFor('listening');
    const session = await ClientSession.connect({
      universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp,
    });
    expect(session.side).toBe('client');
    expect(session.peer.pid).toBe(srv.pid);
    const fired = hosed(session);
    const killedAt = Date.now();
    srv.process.kill('SIGKILL');
    const h = await fired;
    expect(h.reason).toBe('peer-crashed');
    expect(h.at - killedAt).toBeLessThan(100);
    // Session objects go at once; the dead server's app arena as soon as the kernel reports it dead.
    expect((await shmObjectsOf(t.serverApp)).filter((n) => n.startsWith('shmx.sa.'))).toEqual([]);
    await vi.waitFor(async () => expect(await shmObjectsOf(t.serverApp)).toEqual([]), { timeout: 1000, interval: 10 });
    expect(() => session.sessionArena).toThrow(expect.objectContaining({ code: 'EHOSED' }));
  });

  it('a server SIGKILLed while no session is open is swept by a client that talked to it before', async () => {
    const t = testUniverse();
    const srv = new Child('session-server.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })]);
    children.push(srv);
    await srv.waitFor('listening');
    const session = await ClientSession.connect({
      universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp, sweepIntervalMs: 100,
    });
    await session.close(); // graceful: no fault, so nothing is swept on that path
    expect((await shmObjectsOf(t.serverApp)).some((n) => n.startsWith('shmx.aa.'))).toBe(true);
    await srv.kill('SIGKILL'); // its app arena has no survivor to notice
    await vi.waitFor(async () => expect(await shmObjectsOf(t.serverApp)).toEqual([]), { timeout: 3000, interval: 50 });
  });

  it('a SIGSTOPped client is detected by the keep-alive within the idle timeout', async () => {
    const { c, session } = await serverWithChildClient({ keepAlive: { intervalMs: 50, timeoutMs: 300 } });
    // Alive and quiet: keep-alives keep it open past the timeout.
    await new Promise((r) => setTimeout(r, 500));
    expect(session.state).toBe('open');
    const fired = hosed(session);
    const stoppedAt = Date.now();
    c.process.kill('SIGSTOP');
    const h = await fired;
    expect(h.reason).toBe('keepalive-timeout');
    expect(h.at - stoppedAt).toBeGreaterThanOrEqual(250);
    expect(h.at - stoppedAt).toBeLessThan(300 + 50 + 250);
    c.process.kill('SIGCONT');
  });

  it('closing from both sides at once fires every close hook exactly once', async () => {
    const t = testUniverse();
    let hookCalls = 0;
    const server = await SessionServer.start({
      universe: new Universe(t.definition), serverApp: t.serverApp, onSessionClose: () => hookCalls++,
    });
    servers.push(server);
    for (let round = 0; round < 10; round++) {
      const accepted = new Promise<Session>((resolve) => server.once('session', resolve));
      const client = await ClientSession.connect({
        universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp,
      });
      const session = await accepted;
      const counts = { server: 0, client: 0, serverChild: 0, clientChild: 0 };
      session.adopt({ closeFromSession: () => counts.serverChild++ });
      client.adopt({ closeFromSession: () => counts.clientChild++ });
      session.on('close', () => counts.server++);
      client.on('close', () => counts.client++);
      await Promise.all([session.close(), client.close(), session.close()]);
      await new Promise((r) => setTimeout(r, 20));
      expect(counts).toEqual({ server: 1, client: 1, serverChild: 1, clientChild: 1 });
      expect(session.state).toBe('closed');
      expect(client.state).toBe('closed');
    }
    await new Promise((r) => setImmediate(r));
    expect(hookCalls).toBe(10);
    expect((await shmObjectsOf(t.serverApp)).filter((n) => n.startsWith('shmx.sa.'))).toEqual([]);
  });
});
