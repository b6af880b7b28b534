import { chownSync, mkdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClientSession, SessionServer, Universe, type Channel, type Session } from '../../src/index.js';
import { selfIdentity } from '../../src/cleanup/liveness.js';
import { AS_NOBODY, Child } from '../helpers/child.js';
import { frame } from '../helpers/frames.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';
import { PROTOCOL_VERSION } from '../../src/session/protocol.js';

const children: Child[] = [];
const servers: SessionServer[] = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(t: ReturnType<typeof testUniverse>, options: Record<string, unknown> = {}) {
  const server = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp, ...options });
  servers.push(server);
  return server;
}


/** Sends HELLO on a raw connection and resolves with the WELCOME payload (the socket stays open). */
function helloOnly(path: string, t: ReturnType<typeof testUniverse>): Promise<{ socket: Socket; welcome: Record<string, unknown> }> {
  const me = selfIdentity();
  return new Promise((resolve) => {
    const socket = connect(path, () => socket.write(frame(1, JSON.stringify({
      protocol: PROTOCOL_VERSION, serverApp: t.serverApp, clientApp: t.clientApp, pid: me.pid, startTime: me.startTime, maxSocketMessage: 8192,
    }))));
    socket.on('error', () => {});
    socket.once('data', (d: Buffer) => resolve({ socket, welcome: JSON.parse(d.subarray(8, 8 + d.readUInt32LE(0)).toString()) }));
  });
}

describe('session robustness', () => {
  it('a READY with malformed wake-up facts is refused at once; nothing leaks, others go on', async () => {
    const t = testUniverse();
    const server = await start(t);
    const { socket, welcome } = await helloOnly(server.socketPath, t);
    expect(String(welcome.sessionArena)).toMatch(/^shmx\.sa\./);
    const refused = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    // A doorbell outside this session and a handle that is no handle: the channel layer refuses both.
    socket.write(frame(4, JSON.stringify({ wakeup: { bell: 'shmx.bell.other.1.1.client.x', control: {} } })));
    const reply = await refused;
    expect(reply[4]).toBe(3); // REFUSE
    expect(JSON.parse(reply.subarray(8, 8 + reply.readUInt32LE(0)).toString()).code).toBe('EPROTO');
    socket.destroy();
    expect((await shmObjectsOf(t.serverApp)).filter((n) => n.startsWith('shmx.sa.'))).toEqual([]);
    const session = await ClientSession.connect({ universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp });
    expect(session.state).toBe('open');
    await session.close();
  });

  it('a failed handshake does not take the app arena away from live sessions', async () => {
    const t = testUniverse();
    const server = await start(t);
    const universe = new Universe(t.definition);
    const { socket } = await helloOnly(server.socketPath, t); // creates the app arena, then never finishes
    const live = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp });
    socket.destroy(); // the first handshake fails and rolls back
    await new Promise((r) => setTimeout(r, 50));
    const block = live.appArena.alloc(100);
    block.bytes[0] = 42;
    const [accepted] = server.openSessions;
    const seen = accepted!.appArena.borrow(live.appArena.lend(block));
    expect(seen.bytes[0]).toBe(42);
    seen.release();
    block.release();
    await live.close();
  });

  it('refuses oversized control frames without buffering them, faulting only that session', async () => {
    const t = testUniverse();
    const server = await start(t);
    const universe = new Universe(t.definition);
    const accepted = new Promise<Session>((resolve) => server.once('session', resolve));
    const client = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp });
    const session = await accepted;
    const hosed = new Promise<string>((resolve) => session.once('hosed', (e) => resolve(e.reason)));
    const head = Buffer.alloc(8);
    head.writeUInt32LE(300 << 20, 0); // a 300 MiB PING: no control frame may be that large
    head[4] = 5;
    (client as unknown as { parts: { socket: Socket } }).parts.socket.write(head);
    expect(await hosed).toBe('protocol-error');
  });

  it('opens init channels as part of connect', async () => {
    const t = testUniverse();
    const server = await start(t);
    const received: Channel[] = [];
    server.on('session', (s) => s.on('channel', (c) => {
      received.push(c);
      c.on('message', (m) => void m.replyAsync(m.bytes));
    }));
    const session = await ClientSession.connect({
      universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp,
      initChannels: [{ metadata: { role: 'a' } }, { metadata: { role: 'b' }, transport: 'socket' }],
    });
    expect(session.channels.map((c) => [c.init, c.metadata, c.transport])).toEqual([
      [true, { role: 'a' }, 'shm'], [true, { role: 'b' }, 'socket'],
    ]);
    expect(received.map((c) => c.init)).toEqual([true, true]);
    const reply = await session.channels[1]!.request(Buffer.from('ping'), { timeout: 2000 });
    expect(Buffer.from(reply.bytes).toString()).toBe('ping');
    await session.close();
  });

  it('reclaims the app-arena blocks of a SIGKILLed client once it is dead', async () => {
    const t = testUniverse();
    const server = await start(t);
    const holder = new Child('session-app-holder.ts', [JSON.stringify({ ...t, count: 20 })]);
    children.push(holder);
    await holder.waitFor('holding');
    const [session] = server.openSessions;
    const arena = session!.appArena;
    expect(arena.stats().liveBlocks).toBe(20);
    holder.process.kill('SIGKILL');
    await vi.waitFor(() => expect(arena.stats().liveBlocks).toBe(0), { timeout: 3000, interval: 20 });
  });

  it.skipIf(process.getuid?.() !== 0)('refuses a run directory another user owns', async () => {
    const t = testUniverse();
    const dir = t.definition.servers[0]!.runDirectory!;
    mkdirSync(dir, { recursive: true });
    chownSync(dir, 65534, 65534);
    const err = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp }).catch((e) => e);
    expect(err.code).toBe('EUNSAFEDIR');
  });

  it.skipIf(process.getuid?.() !== 0)('a client does not trust a server of another user unless the universe names it', async () => {
    const t = testUniverse({ server: { permissions: 'unrestricted' } });
    chownSync(t.definition.servers[0]!.runDirectory!, 65534, 65534);
    const srv = new Child('session-server.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })], {
      wrapper: AS_NOBODY, env: { ...process.env, HOME: '/tmp' },
    });
    children.push(srv);
    await srv.waitFor('listening');
    const err = await ClientSession.connect({ universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp })
      .catch((e) => e);
    expect(err.code).toBe('ESERVERIDENTITY');
    // Named in the universe, the same server is trusted.
    const named = { ...t.definition, servers: [{ ...t.definition.servers[0]!, uid: 65534 }] };
    const session = await ClientSession.connect({ universe: new Universe(named), clientApp: t.clientApp, serverApp: t.serverApp });
    expect(session.peer.uid).toBe(65534);
    await session.close();
    srv.send({ cmd: 'close-server' });
    await srv.waitFor('closed');
  });
});
