/**
 * Quotas (src/session/quotas.ts): a greedy or hostile session gets EQUOTA from its own calls, or its own session
 * faulted with `limit-exceeded`; other sessions, client apps and server apps go on.
 */
import { statfsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { ClientSession, SessionServer, Universe, type Channel, type Session, type ShmxError } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { frame } from '../helpers/frames.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';

const MiB = 1 << 20;
const children: Child[] = [];
const servers: SessionServer[] = [];
const sessions: Session[] = [];
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

type T = ReturnType<typeof testUniverse>;

/** A server in this process that echoes every request on every channel. */
async function start(t: T, options: Record<string, unknown> = {}): Promise<SessionServer> {
  const server = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp, ...options });
  servers.push(server);
  server.on('session', (s) => s.on('channel', (c) => c.on('message', (m) => void m.replyAsync(m.bytes))));
  return server;
}

async function connect(t: T, clientApp = t.clientApp, extra: Record<string, unknown> = {}): Promise<Session> {
  const session = await ClientSession.connect({ universe: new Universe(t.definition), clientApp, serverApp: t.serverApp, ...extra });
  sessions.push(session);
  return session;
}

/** A greedy client process of `t`'s client app, connected. */
async function greedy(t: T, quotas?: Record<string, unknown>): Promise<Child> {
  const child = new Child('quota-client.ts', [JSON.stringify({ ...t, quotas })]);
  children.push(child);
  await child.waitFor('ready');
  child.send({ cmd: 'connect' });
  await child.waitFor('open');
  return child;
}

/** A universe whose server also accepts a second, innocent client app. */
function twoClientApps(): T & { innocentApp: string } {
  const t = testUniverse({ extraApps: ['inn'] });
  const innocentApp = t.definition.apps[1]!.name;
  t.definition.servers[0]!.acceptedClients.push(innocentApp);
  return { ...t, innocentApp };
}

/** Allocates `bytes` in 256 KiB blocks, fills them, sends each as a request on `channel` and checks the echo. */
async function innocentWork(session: Session, channel: Channel, bytes: number): Promise<void> {
  for (const arena of [session.sessionArena, session.appArena]) {
    const held = [];
    for (let n = 0; n < bytes; n += 256 << 10) {
      const block = arena.alloc(256 << 10);
      block.bytes.fill(n & 0xff);
      held.push(block);
    }
    for (const b of held) b.release();
  }
  for (let i = 0; i < 20; i++) {
    const reply = await channel.request(Buffer.from(`innocent ${i}`), { timeout: 5000 });
    expect(Buffer.from(reply.bytes).toString()).toBe(`innocent ${i}`);
  }
}

describe('quotas', () => {
  it('a greedy client gets EQUOTA at its session and app arena ceilings; another client app and another server app go on', async () => {
    const t = twoClientApps();
    const other = testUniverse(); // another server app, default quotas
    await start(t, {
      sessionArena: { maxBytes: 4 * MiB, initialBytes: 256 << 10, growChunk: MiB },
      appArena: { maxBytes: 4 * MiB, initialBytes: MiB },
    });
    await start(other);
    const innocent = await connect(t, t.innocentApp);
    const elsewhere = await connect(other);
    const innocentChannel = await innocent.openChannel();
    const elsewhereChannel = await elsewhere.openChannel();

    const hog = await greedy(t);
    hog.send({ cmd: 'alloc-until', arena: 'session', size: 256 << 10 });
    const session = await hog.waitFor('alloc-stopped');
    expect(session).toMatchObject({ code: 'EQUOTA', quota: 'sessionArena.maxBytes', limit: 4 * MiB });
    expect(session.bytes).toBeGreaterThanOrEqual(3 * MiB); // it got what its quota holds, not less
    expect((session.quotas as { sessionArena: { reservedBytes: number } }).sessionArena.reservedBytes).toBe(4 * MiB);
    hog.send({ cmd: 'alloc-until', arena: 'app', size: 256 << 10 });
    expect(await hog.waitFor('alloc-stopped', (e) => e !== session)).toMatchObject({
      code: 'EQUOTA', quota: 'appArena.maxBytes', limit: 4 * MiB,
    });

    // The greedy session is not punished for asking: it still talks. The others allocate and talk as before.
    hog.send({ cmd: 'free-all' });
    await hog.waitFor('freed');
    hog.send({ cmd: 'echo', count: 5 });
    await hog.waitFor('echoed');
    await innocentWork(innocent, innocentChannel, 2 * MiB);
    await innocentWork(elsewhere, elsewhereChannel, 8 * MiB);
    expect(innocent.state).toBe('open');
    expect(elsewhere.state).toBe('open');
    hog.send({ cmd: 'close' });
    await hog.waitFor('closed');
  });

  it('channels per session: the opener refuses itself with EQUOTA, on both sides; the session goes on', async () => {
    const t = testUniverse();
    const server = await start(t, { quotas: { channelsPerSession: 3 } });
    const accepted = new Promise<Session>((resolve) => server.once('session', resolve));
    const client = await connect(t, t.clientApp, { quotas: { channels: 2 } });
    const serverSide = await accepted;
    const mine: Channel[] = [];
    client.on('channel', () => {});

    // Client opens: its limit is the lower of the server's 3 and its own 2.
    mine.push(await client.openChannel(), await client.openChannel());
    const third = await client.openChannel().catch((e: unknown) => e);
    expect(third).toMatchObject({ code: 'EQUOTA', quota: 'quotas.channels', limit: 2 });
    expect(client.quotas.channels).toMatchObject({ opened: 2, limit: 2 });

    // Server opens: its own check allows 3 per side, the client refuses the third (its own limit of 2).
    await serverSide.openChannel();
    await serverSide.openChannel();
    const refused = await serverSide.openChannel().catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'EQUOTA', quota: 'quotas.channels', limit: 2 });
    expect(serverSide.quotas.channels).toMatchObject({ opened: 2, peerOpened: 2, limit: 3 });

    // Closing one gives room again; the session never faulted.
    await mine[0]!.close();
    mine[1] = await client.openChannel();
    expect(client.state).toBe('open');
    expect(serverSide.state).toBe('open');
    const reply = await mine[1].request(Buffer.from('still here'), { timeout: 5000 });
    expect(Buffer.from(reply.bytes).toString()).toBe('still here');
  });

  it('channels per session: a peer that bypasses its check has its own session faulted with limit-exceeded', async () => {
    const t = twoClientApps();
    const server = await start(t, { quotas: { channelsPerSession: 4 } });
    const innocent = await connect(t, t.innocentApp);
    const innocentChannel = await innocent.openChannel();
    const faulted = new Promise<string>((resolve) =>
      server.on('session', (s) => s.on('hosed', (err) => resolve(err.reason))));
    const closed = new Promise<string>((resolve) => server.on('session', (s) => s.on('close', resolve)));
    const hostile = await greedy(t);
    hostile.send({ cmd: 'open-until' });
    expect(await hostile.waitFor('opens-stopped')).toMatchObject({ count: 4, code: 'EQUOTA', quota: 'quotas.channelsPerSession', limit: 4, state: 'open' });
    hostile.send({ cmd: 'raw-opens', count: 1, firstId: 1001 }); // a fifth, behind the opener's check
    expect(await faulted).toBe('limit-exceeded');
    expect(await hostile.waitFor('hosed')).toMatchObject({ reason: 'peer-crashed' });
    expect(await closed).toBe('limit-exceeded');
    expect(server.metrics.closedByReason['limit-exceeded']).toBe(1);
    await innocentWork(innocent, innocentChannel, MiB);
    expect(server.openSessions.map((s) => s.peer.app)).toEqual([t.innocentApp]);
  });

  it('a server that opens past the limit it announced faults the client\'s session (limit-exceeded)', async () => {
    const t = testUniverse();
    const server = await start(t, { quotas: { channelsPerSession: 2 } });
    const accepted = new Promise<Session>((resolve) => server.once('session', resolve));
    const client = await connect(t);
    client.on('channel', () => {});
    const serverSide = await accepted;
    await serverSide.openChannel();
    await serverSide.openChannel();
    expect(await serverSide.openChannel().catch((e: unknown) => e)).toMatchObject({ code: 'EQUOTA', quota: 'quotas.channelsPerSession' });
    const hosed = new Promise<ShmxError & { reason: string }>((resolve) => client.once('hosed', resolve));
    // A third OPEN behind the server's own check, as a server that ignores its quota would send it.
    const head = Buffer.alloc(8);
    head[0] = 2; // OPEN
    head.writeUInt32LE(1000, 4); // even: a server's channel id
    (serverSide as unknown as { parts: { socket: Socket } }).parts.socket.write(
      frame(16, Buffer.concat([head, Buffer.from(JSON.stringify({ transport: 'socket', metadata: null, init: false }))])));
    const err = await hosed;
    expect(err.reason).toBe('limit-exceeded');
    expect(err.cause).toMatchObject({ code: 'EQUOTA', quota: 'quotas.channelsPerSession', limit: 2 });
  });

  it('channels server-wide: over quotas.totalChannels an open is refused with EQUOTA, sessions go on', async () => {
    const t = testUniverse();
    const server = await start(t, { quotas: { totalChannels: 3 } });
    const a = await connect(t);
    const b = await connect(t);
    await a.openChannel();
    await a.openChannel();
    const kept = await b.openChannel();
    expect(await b.openChannel().catch((e: unknown) => e)).toMatchObject({ code: 'EQUOTA', quota: 'quotas.totalChannels', limit: 3 });
    expect(server.quotas.totalChannels).toEqual({ used: 3, limit: 3 });
    const reply = await kept.request(Buffer.from('ok'), { timeout: 5000 });
    expect(Buffer.from(reply.bytes).toString()).toBe('ok');
    expect([a.state, b.state]).toEqual(['open', 'open']);
  });

  it('the server-wide byte budget refuses new sessions and the server\'s own growth with EQUOTA; open sessions go on', async () => {
    const t = testUniverse();
    const server = await start(t, {
      sessionArena: { maxBytes: 16 * MiB, initialBytes: 256 << 10, growChunk: MiB },
      appArena: { maxBytes: 4 * MiB, initialBytes: MiB },
      quotas: { totalBytes: 8 * MiB },
    });
    const calm = await connect(t);
    const calmChannel = await calm.openChannel();
    const accepted = new Promise<Session>((resolve) => server.on('session', (s) => s.peer.pid !== process.pid && resolve(s)));
    const hog = await greedy(t);
    const hogOnServer = await accepted;
    // The client grows its session arena within its own ceiling (the budget is the server's to enforce)...
    hog.send({ cmd: 'alloc-until', arena: 'session', size: 256 << 10, upTo: 7 * MiB });
    expect(await hog.waitFor('alloc-stopped')).toMatchObject({ bytes: 7 * MiB });
    expect(server.quotas.totalBytes.used).toBeGreaterThan(8 * MiB);
    // ...the server may not grow any arena past its budget...
    let serverErr: unknown;
    const held = [];
    try {
      for (;;) held.push(hogOnServer.sessionArena.alloc(MiB));
    } catch (err) {
      serverErr = err;
    }
    for (const b of held) b.release();
    expect(serverErr).toMatchObject({ code: 'EQUOTA', quota: 'quotas.totalBytes', limit: 8 * MiB });
    // ...and refuses new sessions at once.
    const refused = await connect(t).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'EQUOTA' });
    expect((refused as Error).message).toContain('quotas.totalBytes');
    expect(server.metrics.refusedByReason.EQUOTA).toBe(1);
    // Open sessions go on; once the greedy one is gone, the budget has room again.
    const reply = await calmChannel.request(Buffer.from('calm'), { timeout: 5000 });
    expect(Buffer.from(reply.bytes).toString()).toBe('calm');
    hog.send({ cmd: 'close' });
    await hog.waitFor('closed');
    await new Promise((r) => setTimeout(r, 50));
    const later = await connect(t);
    expect(later.state).toBe('open');
  });

  it('a session arena grown past its ceiling behind the arena\'s back faults that session only (limit-exceeded)', async () => {
    const t = twoClientApps();
    const server = await start(t, {
      sessionArena: { maxBytes: 2 * MiB, initialBytes: 256 << 10, growChunk: MiB },
      quotas: { checkIntervalMs: 50 },
    });
    const innocent = await connect(t, t.innocentApp);
    const innocentChannel = await innocent.openChannel();
    const faulted = new Promise<string>((resolve) =>
      server.on('session', (s) => s.on('hosed', (err) => resolve(err.reason))));
    const hostile = await greedy(t);
    hostile.send({ cmd: 'grow-hostile', bytes: 2 * MiB });
    await hostile.waitFor('grown');
    expect(await faulted).toBe('limit-exceeded');
    await hostile.waitFor('hosed');
    expect(server.quotas.sessionsFaulted).toBe(1);
    // Its segments, the planted one included, are gone; the innocent session's remain and work.
    const left = await shmObjectsOf(t.serverApp);
    expect(left.filter((n) => n.includes(`.${t.clientApp}.`) && n.startsWith('shmx.sa.'))).toEqual([]);
    await innocentWork(innocent, innocentChannel, MiB);
  });

  it('defaults: 1024 channels per side, 16384 per server, half of /dev/shm, the 256 MiB session arena; bad values are refused up front', async () => {
    const t = testUniverse();
    const server = await start(t);
    const accepted = new Promise<Session>((resolve) => server.once('session', resolve));
    const client = await connect(t);
    const serverSide = await accepted;
    const st = statfsSync('/dev/shm');
    expect(server.quotas).toMatchObject({
      channelsPerSession: 1024,
      totalChannels: { used: 0, limit: 16384 },
      totalBytes: { limit: Math.floor((st.blocks * st.bsize) / 2) },
      sessionsFaulted: 0,
    });
    expect(server.quotas.totalBytes.used).toBeGreaterThan(MiB); // the app arena and the session arena
    for (const side of [client, serverSide]) {
      expect(side.quotas).toEqual({
        channels: { opened: 0, peerOpened: 0, limit: 1024, peerLimit: 1024 },
        sessionArena: { reservedBytes: 256 << 10, maxBytes: 256 * MiB },
      });
    }
    const universe = new Universe(t.definition);
    await expect(SessionServer.start({ universe, serverApp: t.serverApp, quotas: { channelsPerSession: 0 } })).rejects.toThrow(RangeError);
    await expect(SessionServer.start({ universe, serverApp: t.serverApp, quotas: { totalBytes: 1.5 } })).rejects.toThrow(RangeError);
    expect(() => ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp, quotas: { channels: -1 } }))
      .toThrow(RangeError);
  });
});
