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

/**
 * The session's 'hosed' and 'close' events in the order they came (`hosed:<reason>`, `close:<reason>`);
 * `closed` resolves with that list at 'close'. How fast a death is seen is a figure of the soak
 * (`npm run soak`, "death detection"), not of a unit test on a shared machine: here, what was seen and in
 * which order.
 */
function watch(session: Session): { events: string[]; codes: string[]; closed: Promise<string[]> } {
  const events: string[] = [];
  const codes: string[] = [];
  const closed = new Promise<string[]>((resolve) => {
    session.on('hosed', (err) => {
      events.push(`hosed:${err.reason}`);
      codes.push(err.code);
    });
    session.on('close', (reason) => {
      events.push(`close:${reason}`);
      resolve(events);
    });
  });
  return { events, codes, closed: livenessBound(closed, "'close'") };
}

/** Liveness bound, not a timing check: 10 s for what should take milliseconds, else the test fails. */
const LIVENESS_MS = 10_000;
function livenessBound<T>(promise: Promise<T>, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${what} within ${LIVENESS_MS} ms`)), LIVENESS_MS).unref()),
  ]);
}

describe('peer death', () => {
  it('server side: a SIGKILLed client hoses the session (peer-crashed, then close) and its objects are gone', async () => {
    // Keep-alive timeout far past LIVENESS_MS: only the socket's EOF can be what reports the death.
    const { server, c, session } = await serverWithChildClient({ keepAlive: { intervalMs: 1000, timeoutMs: 120_000 } });
    const seen = watch(session);
    c.process.kill('SIGKILL');
    expect(await seen.closed).toEqual(['hosed:peer-crashed', 'close:peer-crashed']);
    expect(seen.codes).toEqual(['EHOSED']);
    expect((await shmObjectsOf(server.serverApp)).filter((n) => n.startsWith('shmx.sa.'))).toEqual([]);
    expect(session.state).toBe('closed');
    expect(() => session.appArena).toThrow(expect.objectContaining({ code: 'EHOSED' }));
    expect(server.metrics.faulted).toBe(1);
  });

  it('client side: a SIGKILLed server hoses the session (peer-crashed, then close) and everything it made is gone', async () => {
    const t = testUniverse();
    // The keep-alive (the server's, told to the client in WELCOME) times out far past LIVENESS_MS: only
    // the socket's EOF can be what reports the death.
    const keepAlive = { intervalMs: 1000, timeoutMs: 120_000 };
    const srv = new Child('session-server.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp, options: { keepAlive } })]);
    children.push(srv);
    await srv.waitFor('listening');
    const session = await ClientSession.connect({
      universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp,
    });
    expect(session.side).toBe('client');
    expect(session.peer.pid).toBe(srv.pid);
    const seen = watch(session);
    srv.process.kill('SIGKILL');
    expect(await seen.closed).toEqual(['hosed:peer-crashed', 'close:peer-crashed']);
    expect(seen.codes).toEqual(['EHOSED']);
    // Session objects go at once (before 'close'); the dead server's app arena as soon as the kernel reports it
    // dead (LIVENESS_MS is a liveness bound for that).
    expect((await shmObjectsOf(t.serverApp)).filter((n) => n.startsWith('shmx.sa.'))).toEqual([]);
    await vi.waitFor(async () => expect(await shmObjectsOf(t.serverApp)).toEqual([]), { timeout: LIVENESS_MS, interval: 10 });
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
    await vi.waitFor(async () => expect(await shmObjectsOf(t.serverApp)).toEqual([]), { timeout: LIVENESS_MS, interval: 50 });
  });

  it('a SIGSTOPped client is detected by the keep-alive (keepalive-timeout); a quiet live one is not', async () => {
    // The timeout is 20 intervals so that a loaded machine delaying a few pings does not end a live session.
    const { c, session } = await serverWithChildClient({ keepAlive: { intervalMs: 100, timeoutMs: 2000 } });
    // Alive and quiet: keep-alives keep it open past the timeout.
    await new Promise((r) => setTimeout(r, 3000));
    expect(session.state).toBe('open');
    const seen = watch(session);
    c.process.kill('SIGSTOP');
    // A stopped process keeps its socket open: only the keep-alive can see it, and says so.
    expect(await seen.closed).toEqual(['hosed:keepalive-timeout', 'close:keepalive-timeout']);
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
