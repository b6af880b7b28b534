import { afterEach, describe, expect, it } from 'vitest';
import {
  createRecordedQueue, formatResourceName, parseResourceName, removeRecordedQueue, selfIdentity, sweepStale,
} from '../../src/cleanup/index.js';
import { native } from '../../src/native.js';
import { Child } from '../helpers/child.js';
import { uniqueApp } from '../helpers/names.js';

describe('resource names', () => {
  it('format and parse are inverse, and reject what would be ambiguous', () => {
    const r = {
      kind: 'sa' as const, serverApp: 'billing', creator: { pid: 4242, startTime: 987654 }, clientApp: 'web-1',
      session: 35, part: 'arena.d0',
    };
    const name = formatResourceName(r);
    expect(name).toBe('shmx.sa.billing.4242.l62u.web-1.z.arena.d0');
    expect(parseResourceName(name)).toEqual(r);
    expect(parseResourceName('shmx.zz.billing.1.1.-.-.x')).toBeNull();
    expect(parseResourceName('shmx.sa.Billing.1.1.-.-.x')).toBeNull();
    expect(parseResourceName('shmx.sa.billing.0.1.-.-.x')).toBeNull();
    expect(parseResourceName('other.sa.billing.1.1.-.-.x')).toBeNull();
    expect(() => formatResourceName({ ...r, serverApp: 'a.b' })).toThrow(RangeError);
    expect(() => formatResourceName({ ...r, part: 'x/y' })).toThrow(RangeError);
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
