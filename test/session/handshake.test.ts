import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortError, ClientSession, SessionServer, TimeoutError, Universe, type Session } from '../../src/index.js';
import { selfIdentity } from '../../src/cleanup/liveness.js';
import { AS_NOBODY, Child } from '../helpers/child.js';
import { frame } from '../helpers/frames.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';
import { PROTOCOL_VERSION } from '../../src/session/protocol.js';

const servers: SessionServer[] = [];
const children: Child[] = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(options: Record<string, unknown> = {}, overrides: Parameters<typeof testUniverse>[0] = {}) {
  const t = testUniverse(overrides);
  const universe = new Universe(t.definition);
  const server = await SessionServer.start({ universe, serverApp: t.serverApp, ...options });
  servers.push(server);
  return { t, universe, server };
}

/** A raw connection to the server's socket; resolves when the server closes it, with what it sent. */
function raw(path: string, write: (s: Socket) => void): Promise<{ received: Buffer }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect(path, () => write(s));
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => resolve({ received: Buffer.concat(chunks) }));
  });
}


function refusalCode(received: Buffer): string | undefined {
  if (received.length < 8 || received[4] !== 3) return undefined;
  return (JSON.parse(received.subarray(8, 8 + received.readUInt32LE(0)).toString()) as { code: string }).code;
}

describe('handshake', () => {
  it('malformed, truncated, oversized and slow frames close only that connection', async () => {
    // The default deadline (2 s): a shorter one can refuse the healthy client itself on a loaded machine. The
    // drip below needs ~7 s for its frame, so it is cut off all the same.
    const { t, universe, server } = await setup({ handshakeTimeoutMs: 2000 });
    const healthy = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp });
    const me = selfIdentity();
    const hello = { protocol: PROTOCOL_VERSION, serverApp: t.serverApp, clientApp: t.clientApp, pid: me.pid, startTime: me.startTime, maxSocketMessage: 8192 };

    const garbage = await raw(server.socketPath, (s) => s.write(Buffer.from('GET / HTTP/1.1\r\n\r\n')));
    expect(refusalCode(garbage.received)).toBe('EPROTO');
    const oversized = await raw(server.socketPath, (s) => {
      const head = Buffer.alloc(8);
      head.writeUInt32LE(1 << 20, 0);
      head[4] = 1;
      s.write(head);
    });
    expect(refusalCode(oversized.received)).toBe('EPROTO');
    const badJson = await raw(server.socketPath, (s) => s.write(frame(1, '{"protocol":')));
    expect(refusalCode(badJson.received)).toBe('EPROTO');
    const wrongShape = await raw(server.socketPath, (s) => s.write(frame(1, JSON.stringify({ ...hello, pid: 'x' }))));
    expect(refusalCode(wrongShape.received)).toBe('EPROTO');
    const { maxSocketMessage: _dropped, ...withoutLimit } = hello; // this version must say what it accepts
    const noLimit = await raw(server.socketPath, (s) => s.write(frame(1, JSON.stringify(withoutLimit))));
    expect(refusalCode(noLimit.received)).toBe('EPROTO');
    const truncated = await raw(server.socketPath, (s) => s.write(frame(1, JSON.stringify(hello)).subarray(0, 20)));
    expect(refusalCode(truncated.received)).toBe('ETIMEDOUT');
    // A slowloris: one byte every 50 ms. The handshake deadline is for the whole HELLO, not reset by each byte,
    // so the server cuts it off before the frame is complete.
    const slowHello = frame(1, JSON.stringify(hello));
    let dripped = 0;
    const slow = await raw(server.socketPath, (s) => {
      const drip = setInterval(() => (dripped < slowHello.length && !s.destroyed ? s.write(slowHello.subarray(dripped, ++dripped)) : clearInterval(drip)), 50);
      s.on('close', () => clearInterval(drip));
    });
    expect(refusalCode(slow.received)).toBe('ETIMEDOUT');
    expect(dripped).toBeLessThan(slowHello.length);
    const wrongVersion = await raw(server.socketPath, (s) => s.write(frame(1, JSON.stringify({ ...hello, protocol: 99 }))));
    expect(refusalCode(wrongVersion.received)).toBe('EPROTOVERSION');
    const liar = await raw(server.socketPath, (s) => s.write(frame(1, JSON.stringify({ ...hello, pid: 1 }))));
    expect(refusalCode(liar.received)).toBe('ECREDENTIALS');

    expect(server.metrics.refusedByReason).toMatchObject({ EPROTO: 5, ETIMEDOUT: 2, EPROTOVERSION: 1, ECREDENTIALS: 1 });
    // The healthy session never noticed.
    expect(healthy.state).toBe('open');
    const block = healthy.sessionArena.alloc(64);
    block.bytes[0] = 7;
    block.release();
    await healthy.close();
    expect((await shmObjectsOf(t.serverApp)).filter((n) => n.startsWith('shmx.sa.'))).toEqual([]);
  });

  it('a client that vanishes mid-handshake leaves nothing: every step is rolled back', async () => {
    let opened = 0;
    const { t, server } = await setup({ onSessionOpen: () => opened++ });
    const me = selfIdentity();
    const hello = { protocol: PROTOCOL_VERSION, serverApp: t.serverApp, clientApp: t.clientApp, pid: me.pid, startTime: me.startTime, maxSocketMessage: 8192 };
    // HELLO, wait for WELCOME (the server made the arenas), then hang up instead of READY.
    await new Promise<void>((resolve) => {
      const s = connect(server.socketPath, () => s.write(frame(1, JSON.stringify(hello))));
      s.once('data', () => s.destroy());
      s.on('close', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(opened).toBe(0);
    expect(server.metrics.opened).toBe(0);
    // The session's own objects are gone; the app arena stays for other sessions until the server closes.
    expect((await shmObjectsOf(t.serverApp)).filter((n) => !n.startsWith('shmx.aa.'))).toEqual([]);
    await server.close();
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });

  it('timeout and abort are distinct errors', async () => {
    const t = testUniverse();
    const universe = new Universe(t.definition);
    // A socket that accepts and never answers.
    const held: Socket[] = [];
    const mute = createServer((s) => held.push(s));
    await new Promise<void>((r) => mute.listen(universe.socketPath(t.serverApp), r));
    try {
      const timedOut = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp, timeoutMs: 150 })
        .catch((e) => e);
      expect(timedOut).toBeInstanceOf(TimeoutError);
      expect(timedOut.code).toBe('ETIMEDOUT');
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const aborted = await ClientSession.connect({
        universe, clientApp: t.clientApp, serverApp: t.serverApp, timeoutMs: 5000, signal: controller.signal,
      }).catch((e) => e);
      expect(aborted).toBeInstanceOf(AbortError);
      expect(aborted).not.toBeInstanceOf(TimeoutError);
      expect(aborted.code).toBe('ABORT_ERR');
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => mute.close(r));
    }
  });

  it.skipIf(process.getuid?.() !== 0)('refuses a client running as the wrong user (setpriv)', async () => {
    const { t, server } = await setup({}, { client: { uid: 0 }, server: { permissions: 'unrestricted' } });
    const c = new Child(
      'session-client.ts',
      [JSON.stringify({ definition: t.definition, clientApp: t.clientApp, serverApp: t.serverApp })],
      { wrapper: AS_NOBODY, env: { ...process.env, HOME: '/tmp' } },
    );
    children.push(c);
    await c.waitFor('ready');
    c.send({ cmd: 'connect' });
    const e = await c.waitFor('error');
    expect(e.code).toBe('EUIDMISMATCH');
    expect(server.metrics.refusedByReason.EUIDMISMATCH).toBe(1);
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });

  it('connect resolves only once the server opened the session; a READY it refuses rejects connect', async () => {
    // maxSessions 1 and two connects at once: both HELLOs find room, so the second is mostly refused at READY,
    // after its WELCOME — the case where a client used to hold an "open" session the server had refused (it was
    // then hosed with protocol-error by the REFUSE). Whichever way each round goes: every session connect
    // resolves with is open on the server at that moment, and every other connect rejects with the refusal.
    const { t, universe, server } = await setup({ maxSessions: 1 });
    for (let round = 0; round < 10; round++) {
      const outcomes = await Promise.all([0, 1].map(() =>
        ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp }).then(
          (session) => ({ session, openOnServer: server.openSessions.some((s) => s.id === session.id) }),
          (err: Error & { code?: string }) => ({ code: err.code }),
        )));
      const opened = outcomes.filter((o) => 'session' in o);
      expect(opened.map((o) => o.openOnServer)).toEqual([true]);
      expect(outcomes.filter((o) => 'code' in o).map((o) => o.code)).toEqual(['ESESSIONLIMIT']);
      const [only] = opened;
      expect(only.session.state).toBe('open');
      await only.session.close();
      await vi.waitFor(() => expect(server.openSessions).toEqual([]), { timeout: 10_000 }); // liveness bound
    }
    expect(server.metrics.refusedByReason.ESESSIONLIMIT).toBe(10);
  });

  it('refuses a client whose executable is not the one the universe names', async () => {
    const { t, universe, server } = await setup({}, { client: { executablePath: '/usr/bin/not-node' } });
    const err = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp }).catch((e) => e);
    expect(err.code).toBe('EEXECUTABLE');
    expect(server.metrics.refusedByReason.EEXECUTABLE).toBe(1);
    const ok = await setup({}, { client: { executablePath: process.execPath } });
    const session: Session = await ClientSession.connect({
      universe: ok.universe, clientApp: ok.t.clientApp, serverApp: ok.t.serverApp,
    });
    await session.close();
  });

  it('rejects bad options before any connection', () => {
    const t = testUniverse();
    const universe = new Universe(t.definition);
    expect(() => ClientSession.connect({ universe, clientApp: 'nope', serverApp: t.serverApp })).toThrow(RangeError);
    expect(() => ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: 'nope' })).toThrow(RangeError);
    expect(() => ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp, timeoutMs: -1 }))
      .toThrow(RangeError);
    expect(() => new Universe({ apps: [{ name: 'Bad Name' }], servers: [] })).toThrow(RangeError);
  });
});
