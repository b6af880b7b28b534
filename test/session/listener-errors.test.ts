/**
 * Listener errors are the session's, not the process's (issue 11 item 2): in a real child process, async
 * 'session', 'channel' and 'message' listeners that reject are counted as errors of their session, are logged,
 * never reach `unhandledRejection` (which ends a Node process by default) — and the session's
 * `maxConsecutiveErrors` policy decides its fate.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ClientSession, Universe, type Session } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';

let peer: Child | undefined;
let session: Session | undefined;
let serverApp: string;

afterEach(async () => {
  await session?.close();
  await peer?.stop();
  expect(await shmObjectsOf(serverApp)).toEqual([]);
  session = undefined;
  peer = undefined;
});

async function start(options: Record<string, unknown> = {}): Promise<{ connect: () => Promise<Session> }> {
  const t = testUniverse();
  serverApp = t.serverApp;
  peer = new Child('habits-peer.ts', [JSON.stringify({ definition: t.definition, serverApp, options, rejectIn: ['session', 'channel'] })]);
  await peer.waitFor('listening');
  return { connect: () => ClientSession.connect({ universe: new Universe(t.definition), clientApp: t.clientApp, serverApp }) };
}

const counts = async (s: Session) => {
  const channel = await s.openChannel({ metadata: { mode: 'reject' } });
  return { channel, ask: async () => JSON.parse(Buffer.from((await channel.request(Buffer.from([2]), { timeoutMs: 30_000 })).bytes).toString()) };
};

describe('a listener that rejects in a child process', () => {
  it('is counted as an error of its session; the process stays alive and the session serves on', async () => {
    const { connect } = await start();
    session = await connect();
    const { channel, ask } = await counts(session);
    for (let i = 0; i < 3; i++) channel.send(Buffer.from([1])); // each one rejects in the peer's async listener
    // The 'session' and 'channel' listeners rejected once each, the 'message' listener three times.
    expect(await ask()).toMatchObject({ errors: 5, state: 'open' });
    expect(peer!.running).toBe(true);
    expect(peer!.stderr).not.toMatch(/unhandled|UnhandledPromiseRejection/i);
  }, 60_000);

  it('faults the session by its policy (maxConsecutiveErrors), not the process', async () => {
    const { connect } = await start({ maxConsecutiveErrors: 4 });
    session = await connect();
    const closed = new Promise((resolve) => session!.once('close', resolve));
    const { channel } = await counts(session);
    for (let i = 0; i < 4; i++) channel.send(Buffer.from([1]));
    await closed;
    expect((await peer!.waitFor('session-close')).reason).toBe('limit-exceeded');
    // The process lives on and takes the next session.
    expect(peer!.running).toBe(true);
    session = await connect();
    expect(session.state).toBe('open');
  }, 60_000);
});
