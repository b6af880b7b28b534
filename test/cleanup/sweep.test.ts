import { afterEach, describe, expect, it } from 'vitest';
import {
  arenaDataSegmentName, createRecordedQueue, createWithFreshNonce, formatResourceName, parseResourceName, removeRecordedQueue, selfIdentity,
  freshNonce, sweepStale,
} from '../../src/cleanup/index.js';
import { native } from '../../src/native.js';
import { Child } from '../helpers/child.js';
import { uniqueApp } from '../helpers/names.js';

describe('resource names', () => {
  it('format and parse are inverse, and reject what would be ambiguous', () => {
    const r = {
      kind: 'sa' as const, serverApp: 'billing', creator: { pid: 4242, startTime: 987654 }, clientApp: 'web-1',
      session: 35, nonce: '0123456789abcdef', part: 'arena.d0',
    };
    const name = formatResourceName(r);
    expect(name).toBe('shmx.sa.billing.4242.l62u.web-1.z.0123456789abcdef.arena.d0');
    expect(parseResourceName(name)).toEqual(r);
    const n = '0123456789abcdef';
    expect(parseResourceName(`shmx.zz.billing.1.1.-.-.${n}.x`)).toBeNull();
    expect(parseResourceName(`shmx.sa.Billing.1.1.-.-.${n}.x`)).toBeNull();
    expect(parseResourceName(`shmx.sa.billing.0.1.-.-.${n}.x`)).toBeNull();
    expect(parseResourceName(`other.sa.billing.1.1.-.-.${n}.x`)).toBeNull();
    expect(parseResourceName('shmx.sa.billing.1.1.-.-.x')).toBeNull(); // no nonce
    expect(parseResourceName('shmx.sa.billing.1.1.-.-.0123456789ABCDEF.x')).toBeNull(); // not a nonce
    expect(parseResourceName(`shmx.sa.billing.1.1.-.-.${n}`)).toBeNull(); // no part
    expect(() => formatResourceName({ ...r, serverApp: 'a.b' })).toThrow(RangeError);
    expect(() => formatResourceName({ ...r, part: 'x/y' })).toThrow(RangeError);
    expect(() => formatResourceName({ ...r, nonce: 'guessable' })).toThrow(RangeError);
  });

  it('every name gets a fresh nonce, and the longest fits POSIX NAME_MAX and the addon\'s 250 bytes', () => {
    const base = { kind: 'mq' as const, serverApp: 'b', creator: { pid: 1, startTime: 1 }, clientApp: null, session: null, part: 'q' };
    const nonces = new Set(Array.from({ length: 1000 }, () => parseResourceName(formatResourceName(base))!.nonce));
    expect(nonces.size).toBe(1000);
    const longest = formatResourceName({
      kind: 'sa', serverApp: 'a'.repeat(32), creator: { pid: 4_194_304, startTime: Number.MAX_SAFE_INTEGER },
      clientApp: 'c'.repeat(32), session: Number.MAX_SAFE_INTEGER, part: `c${2 ** 32}.a`,
    });
    expect(Buffer.byteLength(longest)).toBeLessThanOrEqual(151);
    // A real segment and a real queue under the longest names (an arena's 64th data segment, a channel's queue).
    const segment = arenaDataSegmentName(`${longest.slice(0, longest.lastIndexOf('.c'))}.arena`, 63, freshNonce());
    expect(Buffer.byteLength(segment)).toBeLessThan(250);
    native.shmCreate(segment, 4096, 0o600);
    expect(native.shmUnlink(segment)).toBe(true);
    native.mqOpen(longest, { create: true, exclusive: true, maxMessages: 1, messageSize: 64 }).close();
    expect(native.mqUnlink(longest)).toBe(true);
  });

  it('createWithFreshNonce retries on EEXIST with a new nonce, and gives up with a clear error', () => {
    const seen: string[] = [];
    const made = createWithFreshNonce('thing', (nonce) => {
      seen.push(nonce);
      if (seen.length < 3) throw Object.assign(new Error('taken'), { code: 'EEXIST' });
      return nonce;
    });
    expect(seen).toHaveLength(3);
    expect(new Set(seen).size).toBe(3);
    expect(made).toBe(seen[2]);
    expect(() => createWithFreshNonce('thing', () => {
      throw Object.assign(new Error('taken'), { code: 'EEXIST' });
    })).toThrow(expect.objectContaining({ code: 'EEXIST', message: expect.stringMatching(/thing: 8 fresh random names/) }));
    expect(() => createWithFreshNonce('thing', () => {
      throw Object.assign(new Error('no room'), { code: 'ENOSPC' });
    })).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
  });
});

describe('sweeps', () => {
  // A test that fails half-way still removes what it made: its queue owner dies and its app is swept.
  const owners: Child[] = [];
  const apps: string[] = [];
  afterEach(async () => {
    await Promise.all(owners.splice(0).map((c) => c.kill('SIGKILL')));
    for (const serverApp of apps.splice(0)) sweepStale({ serverApp });
  });

  it('removes the queues of a SIGKILLed process through its ledger, without /dev/mqueue', async () => {
    const serverApp = uniqueApp('swp');
    apps.push(serverApp);
    const owner = new Child('cleanup-queue-owner.ts', [serverApp]);
    owners.push(owner);
    const { names } = (await owner.waitFor('created')) as unknown as { names: string[] };
    // Live creator: a sweep must not touch its queues.
    expect(sweepStale({ serverApp }).removed).toEqual([]);
    for (const n of names) native.mqOpen(n).close();
    await owner.kill('SIGKILL');
    const report = sweepStale({ serverApp });
    expect(report.removed.filter((r) => r.type === 'mq').map((r) => r.name).sort()).toEqual([...names].sort());
    expect(report.removed.filter((r) => r.parsed.kind === 'lg')).toHaveLength(1);
    for (const n of names) expect(() => native.mqOpen(n)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(sweepStale({ serverApp }).removed).toEqual([]);
  });

  it('a ledger removes itself when its last queue is removed', () => {
    const serverApp = uniqueApp('led');
    const name = formatResourceName({
      kind: 'mq', serverApp, creator: selfIdentity(), clientApp: null, session: null, part: 'q',
    });
    createRecordedQueue(serverApp, name).close();
    expect(native.shmList(`shmx.lg.${serverApp}.`)).toHaveLength(1);
    removeRecordedQueue(serverApp, name);
    expect(native.shmList(`shmx.lg.${serverApp}.`)).toEqual([]);
  });
});
