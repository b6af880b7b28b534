/**
 * Opening channels against a peer that is slow, not ready, short of resources — and whose wishes about
 * spinning are its own business. Real processes: the peer is test/fixtures/channel-peer.ts.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientSession, SessionServer, TimeoutError, Universe, type Session } from '../../src/index.js';
import type { TransportKind } from '../../src/channel/index.js';
import { finishPeer, stopPeers, withPeer } from '../helpers/peer.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';
import { SMALL_MQ } from '../helpers/small-queues.js';

const TRANSPORTS: TransportKind[] = ['shm', 'mq', 'socket'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sessions: Session[] = [];
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
  await stopPeers();
});



/** `promise`'s outcome, or 'pending' if it has none within `ms`. */
function outcome<T>(promise: Promise<T>, ms: number): Promise<T | Error | 'pending'> {
  return Promise.race([promise.catch((e: Error) => e), sleep(ms).then(() => 'pending' as const)]);
}


describe.each(TRANSPORTS)('opening channels over %s', (transport) => {
  it('an accept that comes after the open timed out: TimeoutError, the late channel is closed, the session lives', async () => {
    const { peer, session, serverApp } = await withPeer();
    let hosed: unknown;
    session.on('hosed', (err) => (hosed = err));
    const control = await session.openChannel({ metadata: { mode: 'block' } });
    const stall = Buffer.alloc(4);
    stall.writeUInt32LE(600, 0);
    control.send(stall); // the peer's event loop stops for 600 ms
    await sleep(100);
    const err = await session.openChannel({ transport, metadata: { mode: 'sink' }, timeoutMs: 150, mq: SMALL_MQ }).catch((e) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.code).toBe('ETIMEDOUT');
    // The peer wakes, accepts — and is told to close the channel nobody waits for any more.
    const late = await peer.waitFor('channel', (e) => e.mode === 'sink');
    expect(await peer.waitFor('channel-close', (e) => e.id === late.id)).toMatchObject({ reason: 'peer-closed' });
    expect(hosed).toBeUndefined();
    expect(session.state).toBe('open');
    const reply = await control.request(Buffer.alloc(4), { timeout: 5000 });
    expect(reply.bytes.length).toBe(4);
    await finishPeer(peer, session, serverApp);
  });
});

describe.each(TRANSPORTS)('refused opens over %s', (transport) => {
  it.each([false, true])('a peer without a channel handler refuses with EREFUSED (host check: %s)', async (check) => {
    const t = testUniverse();
    const server = await SessionServer.start({ universe: new Universe(t.definition), serverApp: t.serverApp });
    server.on('session', (s) => {
      if (check) {
        const host = (s as unknown as { mux: { host: { hasChannelListener?: () => boolean } } }).mux.host;
        host.hasChannelListener ??= () => s.listenerCount('channel') > 0;
      }
    });
    try {
      const session = await ClientSession.connect({ universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp });
      sessions.push(session);
      await sleep(100); // both sides' channel layers are up (each has its control block)
      const before = session.sessionArena.stats().liveBlocks;
      const err = await session.openChannel({ transport, mq: SMALL_MQ }).catch((e) => e);
      expect(err.code).toBe('EREFUSED');
      expect(err.message).toContain('no passive-open handler');
      // the refused channel's ring is freed by both sides
      await sleep(50);
      expect(session.sessionArena.stats().liveBlocks).toBe(before);
      expect(session.state).toBe('open');
      await session.close();
    } finally {
      await server.close();
    }
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });
});

describe('opening channels the peer never answers', () => {
  it('times out when the peer never accepts, and fails at once when the session closes', async () => {
    const { peer, session, serverApp } = await withPeer({ noAccept: true });
    // 3 s is a liveness bound only (the open must end, not hang); that it was the caller's own 200 ms deadline
    // which ended it is in the error, and the session lives on.
    const timedOut = await outcome(session.openChannel({ timeoutMs: 200 }), 3000);
    expect(timedOut).toBeInstanceOf(TimeoutError);
    expect((timedOut as TimeoutError).message).toContain('not accepted within 200 ms');
    expect(session.state).toBe('open');
    const pending = session.openChannel({ timeoutMs: 60_000 }).catch((e: Error) => e);
    await sleep(50);
    await session.close();
    expect(await outcome(pending, 1000)).toMatchObject({ code: 'ECLOSED' });
    await finishPeer(peer, session, serverApp);
  });
});

describe('spin mode is each side\'s own choice', () => {
  it('an opener that spins does not make the accepter spin; the accepter can opt in', async () => {
    const { peer, session, serverApp } = await withPeer();
    // The peer's delivery counters (parks: went to sleep on its doorbell; spinTurns: stayed awake polling).
    const probe = await session.openChannel({ metadata: { mode: 'counters' } });
    const counters = async () => JSON.parse(Buffer.from((await probe.request(Buffer.alloc(0), { timeout: 5000 })).bytes).toString()) as
      { parks: number; spinTurns: number };

    const mine = await session.openChannel({ metadata: { mode: 'echo' }, spin: true });
    expect(mine.spin).toBe(true);
    for (let i = 0; i < 20; i++) await mine.request(Buffer.from([i]), { timeout: 5000 });
    const before = await counters();
    await sleep(300);
    const after = await counters();
    // Idle: it parked again after each exchange and never stayed awake polling.
    expect(after.spinTurns).toBe(before.spinTurns);
    expect(after.parks).toBeGreaterThan(before.parks);
    expect(before.spinTurns).toBe(0);
    mine.close();

    const theirs = await session.openChannel({ metadata: { mode: 'spin' } }); // the peer calls setSpin(true)
    expect(theirs.spin).toBe(false);
    await theirs.request(Buffer.from('warm up'), { timeout: 5000 });
    const spinning = await counters();
    await sleep(300);
    const later = await counters();
    // Awake: it polls turn after turn and does not park at all while its spinning channel is open.
    expect(later.spinTurns).toBeGreaterThan(spinning.spinTurns);
    expect(later.parks).toBe(spinning.parks);
    theirs.close();
    probe.close();
    await finishPeer(peer, session, serverApp);
  });
});

describe('an accepter short of resources', () => {
  it('refuses an mq channel it cannot open (EMFILE) without faulting the session', async () => {
    const { peer, session, serverApp } = await withPeer();
    let hosed: unknown;
    session.on('hosed', (err) => (hosed = err));
    const echo = await session.openChannel({ transport: 'mq', metadata: { mode: 'echo' }, mq: SMALL_MQ });
    // No descriptor left in the peer: its next open fails with EMFILE.
    const fds = readdirSync(`/proc/${peer.pid}/fd`).map(Number).sort((a, b) => a - b);
    let lowestFree = 0;
    while (fds.includes(lowestFree)) lowestFree++;
    const hard = /Max open files\s+\S+\s+(\S+)/.exec(readFileSync(`/proc/${peer.pid}/limits`, 'utf8'))![1]!;
    const original = /Max open files\s+(\S+)/.exec(readFileSync(`/proc/${peer.pid}/limits`, 'utf8'))![1]!;
    execFileSync('prlimit', ['--pid', String(peer.pid), `--nofile=${lowestFree}:${hard}`]);
    let err: Error & { code?: string; cause?: { code?: string } };
    try {
      err = await session.openChannel({ transport: 'mq', metadata: { mode: 'echo' }, mq: SMALL_MQ }).catch((e) => e);
    } finally {
      execFileSync('prlimit', ['--pid', String(peer.pid), `--nofile=${original}:${hard}`]);
    }
    expect(err.code).toBe('EREFUSED');
    expect(err.message).toContain('EMFILE');
    expect(err.cause?.code).toBe('EMFILE');
    expect(hosed).toBeUndefined();
    expect(session.state).toBe('open');
    const reply = await echo.request(Buffer.from('still here'), { timeout: 5000 });
    expect(Buffer.from(reply.bytes).toString()).toBe('still here');
    const again = await session.openChannel({ transport: 'mq', metadata: { mode: 'echo' }, mq: SMALL_MQ });
    expect(Buffer.from((await again.request(Buffer.from('ok'), { timeout: 5000 })).bytes).toString()).toBe('ok');
    await finishPeer(peer, session, serverApp);
  });
});
