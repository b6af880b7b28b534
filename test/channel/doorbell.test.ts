/**
 * Doorbells only the peer can ring: an unrelated local user (a real foreign uid, via setpriv) who finds a
 * session's doorbell name — they are listed in /proc/net/unix — and floods it gets every datagram refused by
 * the kernel, cannot connect to it, and costs the session nothing: its doorbell counters (wake-ups and
 * datagrams taken) do not move. The peer's own rings still arrive.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { DoorbellCounters, NativeDoorbell } from '../../src/native.js';
import { repoRoot } from '../helpers/child.js';
import { finishPeer, stopPeers, withPeer } from '../helpers/peer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FOREIGN = ['--reuid', '65534', '--regid', '65534', '--clear-groups'];

afterEach(async () => {
  await stopPeers();
});

function bellOf(session: unknown): NativeDoorbell {
  return (session as { mux: { wakeup: { bell: NativeDoorbell } } }).mux.wakeup.bell;
}

describe('doorbells', () => {
  it('a foreign uid cannot ring a session\'s doorbell, nor connect to it; the peer still can', async () => {
    const { peer, session, serverApp } = await withPeer();
    const channel = await session.openChannel({ metadata: { mode: 'echo' } });
    await channel.request(Buffer.from('warm up'), { timeout: 5000 });
    const bell = bellOf(session);
    expect(bell.counters.connected).toBe(true);
    // The attacker's view: the name is in /proc/net/unix.
    expect(readFileSync('/proc/net/unix', 'utf8')).toContain(`@${bell.name}`);
    await sleep(100); // both sides idle
    const before: DoorbellCounters = { ...bell.counters };
    const out = execFileSync('setpriv', [...FOREIGN, '/usr/bin/python3', `${repoRoot}/test/fixtures/bell-flood.py`, bell.name, '20000'],
      { encoding: 'utf8' });
    const result = JSON.parse(out) as { sends: Record<string, number>; connect: string };
    expect(result).toEqual({ sends: { EPERM: 20000 }, connect: 'EPERM' });
    await sleep(100);
    expect(bell.counters).toEqual(before); // not one wake-up, not one datagram
    // The peer's rings still get through: an idle exchange wakes us.
    const reply = await channel.request(Buffer.from('still here'), { timeout: 5000 });
    expect(Buffer.from(reply.bytes).toString()).toBe('still here');
    expect(bell.counters.datagrams).toBeGreaterThan(before.datagrams);
    channel.close();
    await finishPeer(peer, session, serverApp);
  });

  it('the same uid, not the peer, cannot ring it either', async () => {
    const { peer, session, serverApp } = await withPeer();
    const channel = await session.openChannel({ metadata: { mode: 'echo' } }); // the peer's hello has come
    const bell = bellOf(session);
    expect(bell.counters.connected).toBe(true);
    const out = execFileSync('/usr/bin/python3', [`${repoRoot}/test/fixtures/bell-flood.py`, bell.name, '100'], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ sends: { EPERM: 100 }, connect: 'EPERM' });
    channel.close();
    await finishPeer(peer, session, serverApp);
  });
});
