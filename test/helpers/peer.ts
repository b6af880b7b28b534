/**
 * A peer process (a shmx server from test/fixtures/, channel-peer.ts unless told) and a session to it from the
 * test process. Register {@link stopPeers} in afterEach, or end a long-lived one with {@link finishPeer}.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { ClientSession, Universe, type ConnectOptions, type Session } from '../../src/index.js';
import { Child } from './child.js';
import { shmObjectsOf, testUniverse } from './universe.js';

const children: Child[] = [];
const sessions: Session[] = [];

/** What the session to the peer is opened with, on top of its universe and apps. */
type SessionOptions = Omit<ConnectOptions, 'universe' | 'clientApp' | 'serverApp'>;

/** Starts a peer (`extra` goes to the fixture) and opens a session to it. */
export async function withPeer(
  extra: Record<string, unknown> = {},
  fixture = 'channel-peer.ts',
  sessionOptions: SessionOptions = {},
): Promise<{ peer: Child; session: Session; serverApp: string }> {
  const t = testUniverse();
  const peer = new Child(fixture, [JSON.stringify({ definition: t.definition, serverApp: t.serverApp, ...extra })]);
  children.push(peer);
  await peer.waitFor('listening');
  const session = await ClientSession.connect({ ...sessionOptions, universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp });
  sessions.push(session);
  return { peer, session, serverApp: t.serverApp };
}

/** Ends the peer gracefully and checks that nothing of its app is left. */
export async function finishPeer(peer: Child, session: Session, serverApp: string): Promise<void> {
  await session.close();
  await peer.kill('SIGTERM');
  expect(await shmObjectsOf(serverApp)).toEqual([]);
}

/**
 * One peer and session for the whole file (or describe block): started in beforeAll, ended with
 * {@link finishPeer} in afterAll. Read `session` from the returned object inside tests.
 */
export function sharedPeer(...args: Parameters<typeof withPeer>): { readonly session: Session } {
  let started: Awaited<ReturnType<typeof withPeer>> | undefined;
  beforeAll(async () => {
    started = await withPeer(...args);
  });
  afterAll(async () => {
    if (started !== undefined) await finishPeer(started.peer, started.session, started.serverApp);
  });
  return {
    get session(): Session {
      if (started === undefined) throw new Error('sharedPeer: the session exists only once beforeAll ran');
      return started.session;
    },
  };
}

/** Closes what the test left open: sessions, then peer processes. */
export async function stopPeers(): Promise<void> {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
  await Promise.all(children.splice(0).map((c) => c.stop()));
}
