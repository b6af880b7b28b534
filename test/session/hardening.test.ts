/**
 * Attacks from issue 8 on the session layer, each with real processes and, where the attacker is another local
 * user, a real foreign uid (setpriv): squatted names, a squatted instance lock, a flood of idle connections,
 * exec after HELLO; and the life-cycle races: the connect race, event order on SIGKILL, SIGSTOP/SIGCONT.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientSession, SessionServer, Universe, type Session } from '../../src/index.js';
import { selfIdentity } from '../../src/cleanup/liveness.js';
import { PROTOCOL_VERSION } from '../../src/session/protocol.js';
import { checkRunDirectory, defaultRunDirectory } from '../../src/session/run-directory.js';
import { Child, repoRoot } from '../helpers/child.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';

const asRoot = process.getuid?.() === 0;
const FOREIGN = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
const PYTHON = '/usr/bin/python3';

const children: Child[] = [];
const processes: ChildProcess[] = [];
const servers: SessionServer[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const p of processes.splice(0)) p.kill('SIGKILL');
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const c of cleanups.splice(0)) c();
});

async function startServer(t: ReturnType<typeof testUniverse>, options: Record<string, unknown> = {}) {
  const server = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp, ...options });
  servers.push(server);
  return server;
}

/** Runs a command as the foreign uid and waits for it. */
function asForeignUser(command: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(FOREIGN[0]!, [...FOREIGN.slice(1), ...command], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

/** A line-printing process (python fixture); resolves when it printed `line`. */
function spawnLines(argv: string[]): { proc: ChildProcess; printed: (line: string) => Promise<void> } {
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  processes.push(proc);
  const lines: string[] = [];
  const waiters: Array<[string, () => void]> = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const [want, resolve] of waiters) if (want === l) resolve();
  });
  return {
    proc,
    printed: (line) => (lines.includes(line) ? Promise.resolve() : new Promise((resolve) => waiters.push([line, resolve]))),
  };
}

describe('names nobody can squat', () => {
  it.skipIf(!asRoot)('names another user created first block neither a session, its app, nor its queues', async () => {
    const t = testUniverse();
    const me = selfIdentity();
    const start = me.startTime.toString(36);
    // What a predictable scheme (pid, start time, counter) would name next: session 1's arena, the app arena,
    // and this process's queue ledger — created first, as another user, in the world-writable /dev/shm.
    const squatted = [
      `shmx.sa.${t.serverApp}.${me.pid}.${start}.${t.clientApp}.1.arena.h`,
      `shmx.aa.${t.serverApp}.${me.pid}.${start}.${t.clientApp}.-.arena.h`,
      `shmx.lg.${t.serverApp}.${me.pid}.${start}.-.-.q`,
    ];
    cleanups.push(() => squatted.forEach((n) => rmSync(`/dev/shm/${n}`, { force: true })));
    expect(asForeignUser(['touch', ...squatted.map((n) => `/dev/shm/${n}`)]).status).toBe(0);
    const server = await startServer(t);
    server.on('session', (s: Session) => s.on('channel', () => {}));
    const session = await ClientSession.connect({ universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp });
    expect(session.state).toBe('open');
    // Every name the session uses carries a 64-bit random nonce.
    expect(session.sessionArena.name).toMatch(/\.1\.[0-9a-f]{16}\.arena$/);
    expect(session.appArena.name).toMatch(/\.-\.[0-9a-f]{16}\.arena$/);
    // An mq channel: its queues and this process's ledger get nonces too.
    const channel = await session.openChannel({ transport: 'mq', mq: { maxMessages: 1, messageSize: 64 } });
    expect((await shmObjectsOf(t.serverApp)).filter((n) => n.startsWith('shmx.lg.') && !squatted.includes(n))).toHaveLength(1);
    await channel.close();
    await session.close();
    await server.close();
    expect((await shmObjectsOf(t.serverApp)).filter((n) => !squatted.includes(n))).toEqual([]);
  });
});

describe('the instance lock and the run directory', () => {
  it.skipIf(!asRoot)('another user can take neither the abstract name of old nor the lock file', async () => {
    const t = testUniverse();
    const runDirectory = t.definition.servers[0]!.runDirectory!;
    // The old lock: an abstract socket name anyone may bind. And the new one: a file in the run directory.
    const squatter = spawnLines([...FOREIGN, PYTHON, '-c', [
      'import socket, fcntl, sys',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
      // Node binds the whole 108-byte sun_path (the name padded with NULs): so does the squatter.
      `s.bind(b'\\0shmx.server.0.${t.serverApp}'.ljust(108, b'\\0')); s.listen(1)`,
      'try:',
      `    f = open('${runDirectory}/${t.serverApp}.lock', 'w'); fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True)`,
      'except OSError as e:',
      '    print(e.__class__.__name__, flush=True)',
      'import time; time.sleep(30)',
    ].join('\n')]);
    await squatter.printed('PermissionError');
    const server = await startServer(t);
    expect(server.socketPath.startsWith(runDirectory)).toBe(true);
    // One live server per app still holds.
    const second = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp }).catch((e: Error) => e);
    expect(second).toMatchObject({ code: 'ESERVERRUNNING' });
    // The lock file goes with the server that held it (a crashed server's stays, harmlessly: nobody holds it).
    expect(existsSync(`${runDirectory}/${t.serverApp}.lock`)).toBe(true);
    await server.close();
    expect(existsSync(`${runDirectory}/${t.serverApp}.lock`)).toBe(false);
  });

  it.skipIf(!asRoot)('an unsafe run directory gives EUNSAFEDIR naming the rule it breaks', () => {
    const base = `/tmp/shmx-test/unsafe-${process.pid}`;
    mkdirSync(base, { recursive: true, mode: 0o755 });
    cleanups.push(() => rmSync(base, { recursive: true, force: true }));
    const dir = (name: string, mode: number, uid = 0) => {
      const path = `${base}/${name}`;
      mkdirSync(path, { mode });
      chmodSync(path, mode);
      chownSync(path, uid, uid);
      return path;
    };
    const unsafe = (path: string) => {
      try {
        checkRunDirectory(path);
      } catch (err) {
        return err as Error & { code: string };
      }
      return null;
    };
    expect(unsafe(dir('foreign', 0o700, 65534))).toMatchObject({ code: 'EUNSAFEDIR', message: expect.stringMatching(/owned by uid 65534/) });
    expect(unsafe(dir('group', 0o770))).toMatchObject({ message: expect.stringMatching(/writable by its group \(mode 0770\)/) });
    expect(unsafe(dir('world', 0o777))).toMatchObject({ message: expect.stringMatching(/writable by everyone \(mode 0777\) without the sticky bit/) });
    symlinkSync(dir('target', 0o700), `${base}/link`);
    expect(unsafe(`${base}/link`)).toMatchObject({ message: expect.stringMatching(/symbolic link/) });
    expect(unsafe(dir('sticky', 0o1777))).toBeNull(); // like /tmp
    expect(unsafe(dir('private', 0o700))).toBeNull();
  });

  it('the default run directory is per user, created private', async () => {
    const uid = process.getuid?.() ?? 0;
    const saved = process.env['XDG_RUNTIME_DIR'];
    try {
      delete process.env['XDG_RUNTIME_DIR'];
      expect(defaultRunDirectory({ permissions: 'user' })).toMatch(new RegExp(`/shmx-${uid}$`));
      expect(defaultRunDirectory({ permissions: 'user', uid: 4321 })).toMatch(/\/shmx-4321$/);
      const xdg = `/tmp/shmx-test/xdg-${process.pid}`;
      mkdirSync(xdg, { recursive: true, mode: 0o700 });
      cleanups.push(() => rmSync(xdg, { recursive: true, force: true }));
      process.env['XDG_RUNTIME_DIR'] = xdg;
      expect(defaultRunDirectory({ permissions: 'user' })).toBe(`${xdg}/shmx`);
      // Other users cannot reach a private runtime directory: group and unrestricted levels use the tmpdir.
      expect(defaultRunDirectory({ permissions: 'group' })).toMatch(new RegExp(`/shmx-${uid}$`));
      const t = testUniverse({ server: { runDirectory: undefined } });
      const server = await startServer(t);
      expect(server.socketPath).toBe(`${xdg}/shmx/${t.serverApp}.sock`);
      expect(spawnSync('stat', ['-c', '%a', `${xdg}/shmx`], { encoding: 'utf8' }).stdout.trim()).toBe('700');
    } finally {
      if (saved === undefined) delete process.env['XDG_RUNTIME_DIR'];
      else process.env['XDG_RUNTIME_DIR'] = saved;
    }
  });
});

describe('handshakes', () => {
  it.skipIf(!asRoot)('a flood of idle connections from another user does not refuse a legitimate client', async () => {
    const t = testUniverse({ server: { permissions: 'unrestricted' } });
    const server = await startServer(t, { maxSessions: 4 });
    const flood = spawnLines([...FOREIGN, PYTHON, `${repoRoot}/test/fixtures/idle-flood.py`, server.socketPath, '200']);
    await flood.printed('flooding');
    const universe = new Universe(t.definition);
    const sessions: Session[] = [];
    for (let i = 0; i < 4; i++) {
      sessions.push(await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp }));
    }
    expect(sessions.every((s) => s.state === 'open')).toBe(true);
    // Open sessions, not handshakes, count against maxSessions: the fifth is refused for that reason.
    const fifth = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp }).catch((e: Error) => e);
    expect(fifth).toMatchObject({ code: 'ESESSIONLIMIT' });
    expect(server.metrics.refusedByReason.EHANDSHAKELIMIT ?? 0).toBeGreaterThan(0); // the flood churned itself
    await Promise.all(sessions.map((s) => s.close()));
  });

  it.skipIf(!asRoot)('a client that execs another binary between HELLO and READY is refused', async () => {
    const python = '/usr/bin/python3.11';
    const t = testUniverse({ client: { executablePath: python } });
    const server = await startServer(t);
    const refused = new Promise<{ code: string }>((resolve) => server.once('refused', resolve));
    const opened: Session[] = [];
    server.on('session', (s: Session) => opened.push(s));
    const client = spawnLines([python, `${repoRoot}/test/fixtures/exec-after-hello.py`, server.socketPath, t.serverApp,
      t.clientApp, String(PROTOCOL_VERSION)]);
    await client.printed('welcome');
    await client.printed('ready-sent');
    const refusal = await refused;
    // (bash may itself exec its last command, sleep, before READY is read: either way not the binary of HELLO.)
    expect(refusal, JSON.stringify(refusal)).toMatchObject({
      code: 'EEXECUTABLE', reason: expect.stringMatching(/ran \/usr\/bin\/python3\.11 at HELLO and runs \/usr\/bin\/(bash|sleep) at READY/),
    });
    expect(opened).toEqual([]);
    expect((await shmObjectsOf(t.serverApp)).filter((n) => n.startsWith('shmx.sa.'))).toEqual([]);
  });
});

describe('session life cycle', () => {
  it('connect never resolves with a closed session when the server goes away right after WELCOME', async () => {
    const t = testUniverse();
    const server = await startServer(t);
    const universe = new Universe(t.definition);
    // The server's side of each connection ends the instant WELCOME is written, as if the server died there: it
    // neither reads nor undoes anything more (its handshake deadline cleans up later, as a sweep would).
    // Every other run dies 20 ms later, after READY arrived unread. Either way it never answered READY, so
    // connect rejects (it resolves only on the server's answer); were it to resolve, the session must be open and
    // its end must reach a listener attached at once.
    let run = 0;
    const write = Socket.prototype.write;
    Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
      const result = (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      if (Buffer.isBuffer(chunk) && chunk.length >= 8 && chunk[4] === 2) {
        this.removeAllListeners('data');
        this.removeAllListeners('close');
        if (run % 2 === 0) this.destroy();
        else setTimeout(() => this.destroy(), 20);
      }
      return result;
    } as typeof write;
    let resolved = 0;
    try {
      for (run = 0; run < 60; run++) {
        const outcome = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp }).then(
          (session) => {
            // The caller's first look: the session must be open, and its end must reach a listener attached now.
            expect(session.state).toBe('open');
            resolved++;
            const events: string[] = [];
            session.on('hosed', () => events.push('hosed'));
            return new Promise<string[]>((resolve) => session.once('close', () => resolve([...events, 'close'])));
          },
          (err: Error & { code?: string }) => err.code,
        );
        if (Array.isArray(outcome)) expect(outcome).toEqual(['hosed', 'close']);
        else expect(['ECONNRESET', 'ENOENT']).toContain(outcome);
      }
    } finally {
      Socket.prototype.write = write;
    }
    await server.close();
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
    expect(resolved).toBe(0); // no answer to READY, no session

  });

  it('on a SIGKILLed peer, hosed comes before close, on both sides', async () => {
    // The client sees its server die.
    const t = testUniverse();
    const serverChild = new Child('session-server.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })]);
    children.push(serverChild);
    await serverChild.waitFor('listening');
    const session = await ClientSession.connect({ universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp });
    const order: string[] = [];
    session.on('hosed', (err) => order.push(`hosed:${err.reason}`));
    const closed = new Promise<void>((resolve) => session.once('close', (reason) => (order.push(`close:${reason}`), resolve())));
    await serverChild.kill('SIGKILL');
    await closed;
    expect(order).toEqual(['hosed:peer-crashed', 'close:peer-crashed']);

    // The server sees its client die.
    const t2 = testUniverse();
    const server = await startServer(t2);
    const serverOrder: string[] = [];
    const serverClosed = new Promise<void>((resolve) => server.once('session', (s: Session) => {
      s.on('hosed', (err) => serverOrder.push(`hosed:${err.reason}`));
      s.once('close', (reason) => (serverOrder.push(`close:${reason}`), resolve()));
    }));
    const c = new Child('session-client.ts', [JSON.stringify({ definition: t2.definition, clientApp: t2.clientApp, serverApp: t2.serverApp })]);
    children.push(c);
    await c.waitFor('ready');
    c.send({ cmd: 'connect' });
    await c.waitFor('open');
    await c.kill('SIGKILL');
    await serverClosed;
    expect(serverOrder).toEqual(['hosed:peer-crashed', 'close:peer-crashed']);
  });

  it('a server stopped past the keep-alive timeout and resumed: keepalive-timeout on the healthy side, never a protocol error, and the resumed side does not blame its peer', async () => {
    const t = testUniverse();
    const serverChild = new Child('session-server.ts', [JSON.stringify({
      definition: t.definition, serverApp: t.serverApp, options: { keepAlive: { intervalMs: 100, timeoutMs: 600 } },
    })]);
    children.push(serverChild);
    await serverChild.waitFor('listening');
    const session = await ClientSession.connect({ universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp });
    await serverChild.waitFor('session');
    const hosed = new Promise<string>((resolve) => session.once('hosed', (err) => resolve(err.reason)));
    serverChild.process.kill('SIGSTOP');
    const reason = await hosed;
    serverChild.process.kill('SIGCONT');
    expect(reason).toBe('keepalive-timeout');
    // The resumed server reads what waited in its socket (the client's end) before it judges anyone.
    const serverSide = await serverChild.waitFor('close');
    expect(serverSide.reason).toBe('peer-crashed');
  });
});
