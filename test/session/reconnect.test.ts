/**
 * Waiting for a server and reconnecting (src/session/reconnect.ts), with real server processes: one that starts
 * only after the client began waiting, one that is killed and started again; and the bounds — attempts, total
 * time, abort — that keep either from waiting forever. No timing assertions: counters and events only.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientSession, reconnecting, Universe, type Reconnecting, type RetryInfo, type Session } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { testUniverse } from '../helpers/universe.js';

const children: Child[] = [];
const sessions: Session[] = [];
const links: Reconnecting[] = [];
afterEach(async () => {
  await Promise.all(links.splice(0).map((l) => l.close()));
  await Promise.all(sessions.splice(0).map((s) => s.close()));
  await Promise.all(children.splice(0).map((c) => c.stop()));
});

/** Starts an echo server (test/fixtures/channel-peer.ts) and waits until it listens. */
async function startServer(t: ReturnType<typeof testUniverse>): Promise<Child> {
  const server = new Child('channel-peer.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })]);
  children.push(server);
  await server.waitFor('listening');
  return server;
}

/** A request over a fresh channel of `session` comes back: the session really works. */
async function roundTrip(session: Session): Promise<void> {
  const channel = await session.openChannel({ metadata: { mode: 'echo' } });
  const reply = await channel.request(Buffer.from('ping'));
  expect(Buffer.from(reply.bytes).toString()).toBe('ping');
  reply.release();
  await channel.close();
}

describe('connect({ retry })', () => {
  it('waits for a server that starts late', async () => {
    const t = testUniverse();
    const failures: RetryInfo[] = [];
    let server: Promise<Child> | undefined;
    const connecting = ClientSession.connect({
      universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp,
      retry: {
        initialDelayMs: 50, maxDelayMs: 200, totalTimeoutMs: 120_000,
        onRetry: (info) => {
          failures.push(info);
          server ??= startServer(t); // the server starts only once the client has found nobody
        },
      },
    });
    const session = await connecting;
    sessions.push(session);
    const peer = await server!;
    expect(failures.length).toBeGreaterThanOrEqual(1);
    expect(failures.every((f) => (f.error as { code?: string }).code === 'ENOSERVER')).toBe(true);
    expect(session.peer.pid).toBe(peer.pid);
    await roundTrip(session);
  });

  it('is bounded: the last error after maxAttempts, AbortError on abort, no retry for other codes', async () => {
    const t = testUniverse();
    const base = { universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp };
    let attempts = 0;
    const err = await ClientSession.connect({ ...base, retry: { maxAttempts: 3, initialDelayMs: 1, onRetry: () => attempts++ } })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENOSERVER' });
    expect(attempts).toBe(2); // three attempts, two pauses between them

    const controller = new AbortController();
    const aborted = ClientSession.connect({
      ...base, signal: controller.signal,
      retry: { totalTimeoutMs: Infinity, initialDelayMs: 1, maxDelayMs: 5, onRetry: (info) => info.attempt === 3 && controller.abort() },
    }).catch((e: unknown) => e);
    expect(await aborted).toMatchObject({ name: 'AbortError' });

    let retried = 0;
    const unknownClient = await ClientSession.connect({ ...base, clientApp: 'nobody', retry: { onRetry: () => retried++ } })
      .catch((e: unknown) => e);
    expect(unknownClient).toBeInstanceOf(Error);
    expect(retried).toBe(0);
    expect(() => ClientSession.connect({ ...base, retry: { factor: 0.5 } })).toThrow(RangeError);
  });
});

describe('reconnecting()', () => {
  it('follows a server that is killed and started again, and says so in events', async () => {
    const t = testUniverse();
    const first = await startServer(t);
    const link = reconnecting({
      universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp,
      retry: { initialDelayMs: 50, maxDelayMs: 200, totalTimeoutMs: 120_000 },
    });
    links.push(link);
    const events: string[] = [];
    link.on('disconnected', (reason) => events.push(`disconnected:${reason}`));
    link.on('retry', () => events.push('retry'));
    const [s1] = (await once(link, 'session')) as [Session];
    expect(s1.peer.pid).toBe(first.pid);
    await roundTrip(s1);

    await first.kill('SIGKILL'); // a crash: the client sees the peer gone
    await new Promise<void>((resolve) => link.once('retry', () => resolve())); // nobody there now
    const next = once(link, 'session');
    const second = await startServer(t);
    const [s2] = (await next) as [Session];
    expect(s2.peer.pid).toBe(second.pid);
    expect(link.session).toBe(s2);
    await roundTrip(s2);
    expect(events[0]).toBe('disconnected:peer-crashed');
    expect(events.slice(1).every((e) => e === 'retry')).toBe(true);

    await link.close();
    expect(link.isClosed).toBe(true);
    expect(s2.state).toBe('closed');
  });

  it('gives up after its bounds, with the last error, and closes', async () => {
    const t = testUniverse();
    const link = reconnecting({
      universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp,
      retry: { maxAttempts: 2, initialDelayMs: 1 },
    });
    links.push(link);
    const closed = once(link, 'close');
    const [err] = (await once(link, 'gave-up')) as [Error];
    expect(err).toMatchObject({ code: 'ENOSERVER' });
    await closed;
    expect(link.isClosed).toBe(true);
  });
});
