/**
 * Segments truncated under live sessions (issue 8, item 1). Another process shrinks the session arena's
 * header or data segment, the app arena's header, or the ledger, of one session while messages flow on a
 * channel. The side under test runs in this process: it must survive; the victim's session faults with
 * `protocol-error` caused by `ESEGMENTTRUNCATED` naming the segment (a ledger is rebuilt instead: nobody
 * faults); and a session of another client app beside it goes on exchanging messages.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';

import { ClientSession, SessionServer, Universe, type Channel, type Session } from '../../src/index.js';
import { readLedger } from '../../src/cleanup/ledger.js';
import { selfIdentity } from '../../src/cleanup/liveness.js';
import { creatorPrefix } from '../../src/cleanup/names.js';
import { Child } from '../helpers/child.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';

type Kind = 'session-header' | 'session-data' | 'app-header' | 'ledger';
type Side = 'server' | 'client';

const children: Child[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  await Promise.all(children.splice(0).map((c) => c.stop()));
});

/** One message there and back; rejects when the channel closes first or nothing comes back in 5 s. */
function roundTrip(channel: Channel, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('no echo within 5 s')), 5000);
    const onMessage = (m: { bytes: Uint8Array; release(): void }) => {
      const got = m.bytes[0];
      m.release();
      done(got === (n & 0xff) ? undefined : new Error(`echo ${got} for ${n & 0xff}`));
    };
    const onClose = () => done(new Error('channel closed'));
    const done = (err?: Error) => {
      clearTimeout(timer);
      channel.off('message', onMessage);
      channel.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    channel.on('message', onMessage);
    channel.once('close', onClose);
    channel.send(Buffer.alloc(64, n & 0xff));
  });
}

/** Traffic on one session until stopped or failed: a round trip, plus a large block in each arena (which
 *  touches both arenas' headers and data), per round. */
class Traffic {
  rounds = 0;
  error: unknown;
  private stopped = false;
  readonly done: Promise<void>;

  constructor(session: Session, channel: Channel) {
    this.done = (async () => {
      while (!this.stopped) {
        try {
          session.sessionArena.alloc(100_000).release();
          session.appArena.alloc(100_000).release();
          await roundTrip(channel, this.rounds);
          this.rounds++;
        } catch (err) {
          this.error = err;
          return;
        }
      }
    })();
  }

  async until(rounds: number): Promise<void> {
    const target = this.rounds + rounds;
    while (this.rounds < target) {
      if (this.error !== undefined) throw this.error;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.done;
  }
}

/** Sessions of two client apps (victim, innocent) between this process (`side`) and a peer process. */
async function setUp(side: Side, transport: 'shm' | 'mq') {
  const t = testUniverse({ extraApps: ['inn'] });
  const innocentApp = `inn${t.clientApp.slice(3)}`;
  t.definition.servers[0]!.acceptedClients.push(innocentApp);
  const universe = new Universe(t.definition);
  let victim: Session;
  let innocent: Session;
  if (side === 'server') {
    const server = await SessionServer.start({ universe, serverApp: t.serverApp });
    cleanups.push(() => server.close());
    const opened = new Map<string, Session>();
    const both = new Promise<void>((resolve) =>
      server.on('session', (s: Session) => {
        opened.set(s.peer.app, s);
        if (opened.size === 2) resolve();
      }),
    );
    for (const clientApp of [t.clientApp, innocentApp]) {
      const child = new Child('echo-client.ts', [JSON.stringify({ definition: t.definition, clientApp, serverApp: t.serverApp })]);
      children.push(child);
      await child.waitFor('open');
    }
    await both;
    victim = opened.get(t.clientApp)!;
    innocent = opened.get(innocentApp)!;
  } else {
    const peer = new Child('channel-peer.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })]);
    children.push(peer);
    await peer.waitFor('listening');
    victim = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp });
    innocent = await ClientSession.connect({ universe, clientApp: innocentApp, serverApp: t.serverApp });
    cleanups.push(() => victim.close(), () => innocent.close());
  }
  const hosed = new Map<Session, Error & { reason?: string; cause?: unknown }>();
  for (const s of [victim, innocent]) s.on('hosed', (err) => hosed.set(s, err));
  // Small queues: RLIMIT_MSGQUEUE is per user and machine-wide (about 9 default-sized queues in all).
  const open = (s: Session) => s.openChannel({ transport, metadata: { mode: 'echo' }, mq: { maxMessages: 2, messageSize: 512 } });
  const victimChannel = await open(victim);
  const innocentChannel = await open(innocent);
  return { t, victim, innocent, victimChannel, innocentChannel, hosed, open };
}

/** The segment of `kind` that belongs to the victim, as this process names it. */
function target(kind: Kind, victim: Session, serverApp: string): string {
  switch (kind) {
    case 'session-header':
      return `${victim.sessionArena.name}.h`;
    case 'session-data':
      // The first data segment (the channel rings live there); its name ends in a nonce of its own.
      return readdirSync('/dev/shm').find((n) => n.startsWith(`${victim.sessionArena.name}.d0.`))!;
    case 'app-header':
      return `${victim.appArena.name}.h`;
    case 'ledger': {
      // This process's ledger of the app: its name ends in a nonce, so find it by what comes before.
      const prefix = creatorPrefix({ kind: 'lg', serverApp, creator: selfIdentity(), clientApp: null, session: null });
      const found = readdirSync('/dev/shm').filter((n) => n.startsWith(prefix));
      if (found.length !== 1) throw new Error(`expected one ledger ${prefix}*, found ${found.length}`);
      return found[0]!;
    }
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sides: Side[] = ['server', 'client'];
const kinds: Kind[] = ['session-header', 'session-data', 'app-header'];

describe.each(sides)('a segment truncated under the %s side', (side) => {
  it.each(kinds)('%s: only the victim session faults (ESEGMENTTRUNCATED); the innocent one goes on', async (kind) => {
    const { t, victim, innocent, victimChannel, innocentChannel, hosed } = await setUp(side, 'shm');
    const victimTraffic = new Traffic(victim, victimChannel);
    const innocentTraffic = new Traffic(innocent, innocentChannel);
    await Promise.all([victimTraffic.until(20), innocentTraffic.until(20)]);

    const segment = target(kind, victim, t.serverApp);
    execFileSync('truncate', ['-s', '0', `/dev/shm/${segment}`]); // another process shrinks it

    await until('the victim session faults', () => hosed.has(victim));
    const err = hosed.get(victim)!;
    expect(err.reason).toBe('protocol-error');
    expect(err.cause).toMatchObject({ code: 'ESEGMENTTRUNCATED', resource: segment });
    expect(victim.state === 'faulted' || victim.state === 'closed').toBe(true);
    await victimTraffic.stop();

    // The innocent session of the other client app goes on, on the channel it had and on a new one.
    await innocentTraffic.until(20);
    expect(hosed.has(innocent)).toBe(false);
    expect(innocent.state).toBe('open');
    const fresh = await innocent.openChannel({ metadata: { mode: 'echo' } });
    await roundTrip(fresh, 7);
    await innocentTraffic.stop();
    expect(innocentTraffic.error).toBeUndefined();
    await innocent.close();
    for (const c of cleanups.splice(0).reverse()) await c();
    await Promise.all(children.splice(0).map((c) => c.stop()));
    await until('nothing of the app is left', async () => (await shmObjectsOf(t.serverApp)).length === 0);
  });

  it('ledger: it is rebuilt from what this process knows; no session faults, queues are still listed', async () => {
    const { t, victim, innocent, victimChannel, innocentChannel, hosed, open } = await setUp(side, 'mq');
    const victimTraffic = new Traffic(victim, victimChannel);
    const innocentTraffic = new Traffic(innocent, innocentChannel);
    await Promise.all([victimTraffic.until(20), innocentTraffic.until(20)]);
    const ledger = target('ledger', victim, t.serverApp);
    const before = readLedger(ledger);
    expect(before).toHaveLength(4); // two queues per mq channel, both opened from this side

    execFileSync('truncate', ['-s', '0', `/dev/shm/${ledger}`]);
    expect(readLedger(ledger)).toEqual([]); // what a sweep would find if this process died now
    const third = await open(victim); // records two more queues: the ledger faults and is rebuilt
    await roundTrip(third, 3);
    const after = readLedger(ledger);
    expect(after).toHaveLength(6);
    expect(after).toEqual(expect.arrayContaining(before));

    await Promise.all([victimTraffic.until(20), innocentTraffic.until(20)]);
    expect(hosed.size).toBe(0);
    await Promise.all([victimTraffic.stop(), innocentTraffic.stop()]);
    expect(victimTraffic.error).toBeUndefined();
    expect(innocentTraffic.error).toBeUndefined();
    for (const c of cleanups.splice(0).reverse()) await c();
    await Promise.all(children.splice(0).map((c) => c.stop()));
    await until('nothing of the app is left', async () => (await shmObjectsOf(t.serverApp)).length === 0);
  });
});
