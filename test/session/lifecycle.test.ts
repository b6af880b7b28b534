import { afterEach, describe, expect, it } from 'vitest';
import { ClientSession, SessionServer, Universe, type Session } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';

const children: Child[] = [];
const servers: SessionServer[] = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function client(t: ReturnType<typeof testUniverse>, extra: Record<string, unknown> = {}): Child {
  const c = new Child('session-client.ts', [
    JSON.stringify({ definition: t.definition, clientApp: t.clientApp, serverApp: t.serverApp, ...extra }),
  ]);
  children.push(c);
  return c;
}

async function startServer(t: ReturnType<typeof testUniverse>, options: Record<string, unknown> = {}) {
  const server = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp, ...options });
  servers.push(server);
  return server;
}

describe('session lifecycle between two processes', () => {
  it('opens, shares arenas, and closes from the client with hooks exactly once, children first', async () => {
    const t = testUniverse();
    const order: string[] = [];
    const server = await startServer(t, {
      onSessionOpen: (s: Session) => order.push(`open:${s.peer.app}`),
      onSessionClose: (_s: Session, reason: string) => order.push(`hook-close:${reason}`),
    });
    const accepted = new Promise<Session>((resolve) => server.once('session', resolve));
    const c = client(t);
    await c.waitFor('ready');
    c.send({ cmd: 'connect' });
    const opened = await c.waitFor('open');
    const session = await accepted;
    expect(session.state).toBe('open');
    expect(session.side).toBe('server');
    expect(session.peer).toMatchObject({ app: t.clientApp, pid: c.pid, uid: process.getuid!() });
    expect(opened.id).toBe(session.id);
    const child = { closeFromSession: (r: string) => order.push(`child:${r}`) };
    session.adopt(child);
    session.on('close', (reason) => order.push(`session:${reason}`));

    // zero-copy: the client writes into the session arena, the server borrows the same bytes
    c.send({ cmd: 'write-session', text: 'hello from the client' });
    const written = await c.waitFor('written');
    const block = session.sessionArena.borrow(written.handle as never);
    expect(Buffer.from(block.bytes).toString()).toBe('hello from the client');
    block.release();

    c.send({ cmd: 'close' });
    await c.waitFor('closed');
    await new Promise<void>((resolve) => (session.state === 'closed' ? resolve() : session.once('close', () => resolve())));
    expect(order).toEqual([`open:${t.clientApp}`, 'child:peer-closed', 'session:peer-closed', 'hook-close:peer-closed']);
    expect(server.metrics).toMatchObject({ opened: 1, active: 0 });
    expect(server.metrics.closedByReason['peer-closed']).toBe(1);
    expect(() => session.sessionArena).toThrow(expect.objectContaining({ code: 'ECLOSED' }));
    const clientClose = await c.waitFor('close');
    expect(clientClose.reason).toBe('local-close');
    // session-scope objects are gone; the app arena stays until the server closes
    const left = await shmObjectsOf(t.serverApp);
    expect(left.filter((n) => n.startsWith('shmx.sa.'))).toEqual([]);
    expect(left.filter((n) => n.startsWith('shmx.aa.')).length).toBeGreaterThan(0);
    await server.close();
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });

  it('gives the session\'s memory back at a graceful close, even where views of it are still held', async () => {
    const t = testUniverse();
    const universe = new Universe(t.definition);
    await startServer(t);
    const session = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp });
    const block = session.sessionArena.alloc(2 << 20);
    const kept = block.bytes; // a view somebody forgot to drop
    kept.fill(0xab);
    block.release();
    await session.close();
    // The pages were punched out before the names went away: the stale view holds no data (and no RAM).
    expect(kept[0]).toBe(0);
    expect(kept[(2 << 20) - 1]).toBe(0);
  });

  it('fails at once with ENOSERVER when no server listens', async () => {
    const t = testUniverse();
    // "At once" = not waiting for a server to come: with a 60 s deadline of its own, the connect must end with
    // ENOSERVER (not TimeoutError); 30 s is only a liveness bound.
    const err = await Promise.race([
      ClientSession.connect({
        universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp, timeoutMs: 60_000,
      }).catch((e) => e),
      new Promise((r) => setTimeout(r, 30_000, 'still connecting after 30 s')),
    ]);
    expect(err).toMatchObject({ code: 'ENOSERVER' });
  });

  it('refuses a second server of the same app while the first lives, in another process', async () => {
    const t = testUniverse();
    await startServer(t);
    const other = new Child('session-server.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })]);
    children.push(other);
    const e = await other.waitFor('start-error');
    expect(e.code).toBe('ESERVERRUNNING');
  });

  it('starts cleanly over a SIGKILLed predecessor and sweeps its objects', async () => {
    const t = testUniverse();
    const first = new Child('session-server.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })]);
    children.push(first);
    await first.waitFor('listening');
    const c = client(t);
    c.send({ cmd: 'connect' });
    await c.waitFor('open');
    const before = await shmObjectsOf(t.serverApp);
    expect(before.some((n) => n.includes(`.${first.pid}.`))).toBe(true);
    await c.stop();
    await first.kill('SIGKILL');
    const server = await startServer(t);
    expect((await shmObjectsOf(t.serverApp)).filter((n) => n.includes(`.${first.pid}.`))).toEqual([]);
    const c2 = client(t);
    c2.send({ cmd: 'connect' });
    await c2.waitFor('open');
    expect(server.metrics.opened).toBe(1);
  });

  it('shares app-arena data across sessions of one client app, removed when the server closes', async () => {
    const t = testUniverse();
    const server = await startServer(t);
    const c1 = client(t);
    c1.send({ cmd: 'connect' });
    await c1.waitFor('open');
    c1.send({ cmd: 'write-app', text: 'kept across sessions' });
    const { handle } = await c1.waitFor('written');
    c1.send({ cmd: 'close' });
    await c1.waitFor('closed');
    const c2 = client(t);
    c2.send({ cmd: 'connect' });
    await c2.waitFor('open');
    c2.send({ cmd: 'read-app', handle });
    expect((await c2.waitFor('read')).text).toBe('kept across sessions');
    c2.send({ cmd: 'close' });
    await c2.waitFor('closed');
    expect((await shmObjectsOf(t.serverApp)).some((n) => n.startsWith('shmx.aa.'))).toBe(true);
    await server.close();
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });

  it('refuses over maxSessions at once with ESESSIONLIMIT', async () => {
    const t = testUniverse();
    const server = await startServer(t, { maxSessions: 1 });
    const c1 = client(t);
    c1.send({ cmd: 'connect' });
    await c1.waitFor('open');
    // Never queued: c2 (60 s deadline of its own) is refused while c1's session is still open, not served once
    // c1 goes and not timed out; 30 s (from c2's connect, once its process is up) is only a liveness bound.
    const c2 = client(t, { timeoutMs: 60_000 });
    await c2.waitFor('ready');
    c2.send({ cmd: 'connect' });
    const e = await c2.waitFor('error', undefined, 30_000);
    expect(e.code).toBe('ESESSIONLIMIT');
    expect(server.openSessions.map((s) => s.state)).toEqual(['open']);
    expect(server.metrics.refusedByReason.ESESSIONLIMIT).toBe(1);
  });

  it('refuses a client app the server does not accept', async () => {
    const t = testUniverse({ extraApps: ['stranger'] });
    const stranger = t.definition.apps[1]!.name;
    const server = await startServer(t);
    const c = client(t, { clientApp: stranger });
    c.send({ cmd: 'connect' });
    expect((await c.waitFor('error')).code).toBe('EAPPNOTACCEPTED');
    expect(server.metrics.refusedByReason.EAPPNOTACCEPTED).toBe(1);
  });

  it('shuts down: closes every session with server-shutdown and leaves nothing behind', async () => {
    const t = testUniverse();
    const server = await startServer(t);
    const clients = [client(t), client(t), client(t)];
    for (const c of clients) c.send({ cmd: 'connect' });
    await Promise.all(clients.map((c) => c.waitFor('open')));
    await server.close();
    for (const c of clients) expect((await c.waitFor('close')).reason).toBe('server-shutdown');
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
    expect(server.metrics.closedByReason['server-shutdown']).toBe(3);
  });
});
