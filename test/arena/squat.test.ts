/**
 * Arena growth a foreign user cannot block (issue 8): every data segment's name carries a nonce of its own,
 * recorded in the header's segment table. Another local user (uid 65534, through setpriv) pre-creates the names
 * the arena's visible base name would predict, and even the very name each process picks an instant before it
 * creates it: growth succeeds on both sides, each side maps exactly what the table names, and removal and the
 * sweeps find every segment of ours — and leave the squatter's files (which we cannot remove) alone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Arena, arenaCore } from '../../src/arena/arena.js';
import { listResources, sweepStale } from '../../src/cleanup/sweep.js';
import { formatResourceName, isArenaDataSegment, parseResourceName, scopePrefix } from '../../src/cleanup/names.js';
import { selfIdentity } from '../../src/cleanup/liveness.js';
import { native } from '../../src/native.js';
import { Child } from '../helpers/child.js';
import { uniqueApp } from '../helpers/names.js';
import { arenaChild, uniqueName } from './helpers.js';
import { removeSquatted, squatAsNobody, squatFirstPicks } from './squat.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The names the old scheme (`<base>.d<N>`, no nonce) would have used: predictable from the base alone. */
const predictable = (base: string, count: number) => Array.from({ length: count }, (_, i) => `${base}.d${i}`);

/** Opens a child that grows the arena under squatting; resolves with what it reports. */
async function childGrows(base: string, n: number, size: number): Promise<{ child: Child; squatted: string[]; segments: string[] }> {
  const child = arenaChild([base, 'squatted', String(n), String(size)]);
  cleanups.push(() => child.kill('SIGKILL'));
  const m = (await child.waitFor((e) => e.t === 'held')) as { squatted: string[]; segments: string[] };
  return { child, squatted: m.squatted, segments: m.segments };
}

/** Grows arena `base` from this process and from a child, both facing a squatter; checks both sides agree. */
async function growUnderSquatting(base: string): Promise<{ a: Arena; ours: string[]; foreign: string[] }> {
  const foreign = predictable(base, 12);
  squatAsNobody(foreign);
  cleanups.push(() => removeSquatted(foreign));
  const squat = squatFirstPicks(base);
  cleanups.push(() => squat.stop());
  // Segment 0 at creation, then one segment per large block: 64 KiB steps.
  const a = Arena.create(base, { maxBytes: 16 << 20, growChunk: 64 << 10, initialBytes: 64 << 10 });
  cleanups.push(() => a.close());
  const mine = [a.alloc(200_000), a.alloc(200_000)];
  const child = await childGrows(base, 2, 300_000); // the peer grows too, facing the same squatter
  mine.push(a.alloc(500_000)); // past the child's segments: we map them from the table's names
  squat.stop();
  foreign.push(...squat.squatted, ...child.squatted);
  const core = arenaCore(a);
  core.refreshSegments();
  const ours = core.segments.map((s) => s.name);
  expect(ours.length).toBeGreaterThanOrEqual(5);
  // Each process's first pick for each segment it created was taken, and it went on under a fresh nonce.
  expect(squat.squatted.length + child.squatted.length).toBe(ours.length);
  for (const name of ours) {
    expect(isArenaDataSegment(name, base)).toBe(true);
    expect(foreign).not.toContain(name);
  }
  // The child mapped the same names for the segments it saw (it read them from the table, or made them).
  expect(child.segments).toEqual(ours.slice(0, child.segments.length));
  for (const b of mine) b.bytes.fill(7);
  for (const b of mine) b.release();
  return { a, ours, foreign };
}

/** What a non-root owner (uid 65533) reports after growing arena `base` and removing it (`mode`). */
async function nonRootOwner(base: string, mode: 'destroy' | 'prefix'): Promise<{ segments: string[]; removed: string[] | number; left: string[] }> {
  const owner = new Child('arena-squat-owner.ts', [base, mode], { wrapper: ['setpriv', '--reuid=65533', '--regid=65533', '--clear-groups'] });
  cleanups.push(() => owner.kill('SIGKILL'));
  const m = (await owner.waitFor((e) => e.t === 'done' || e.t === 'error')) as Record<string, unknown>;
  expect(m).toMatchObject({ t: 'done' });
  return m as unknown as { segments: string[]; removed: string[] | number; left: string[] };
}

describe('arena growth past names another user created first', () => {
  it('grows on both sides, and destroy removes every segment of ours', async () => {
    const base = uniqueName('squat');
    const { a, ours, foreign } = await growUnderSquatting(base);
    expect(native.shmList(`${base}.`).sort()).toEqual([...ours, `${base}.h`, ...foreign].sort());
    a.destroy();
    // Root (this test) may remove the squatter's files too; nothing of ours may stay.
    for (const n of native.shmList(`${base}.`)) expect(foreign).toContain(n);
  }, 60_000);

  it('a non-root owner grows past squatted names, and its destroy and scope removal skip files it cannot remove', async () => {
    for (const mode of ['destroy', 'prefix'] as const) {
      const base = uniqueName('squat');
      // The old predictable names, a name of the data-segment form (as a squatted pick would be), an intruder.
      const foreign = [...predictable(base, 8), `${base}.d9.0123456789abcdef`, `${base}.zz`];
      squatAsNobody(foreign);
      cleanups.push(() => removeSquatted(foreign));
      const r = await nonRootOwner(base, mode);
      expect(r.segments.length).toBeGreaterThanOrEqual(3);
      for (const name of r.segments) expect(isArenaDataSegment(name, base)).toBe(true);
      if (mode === 'prefix') expect([...(r.removed as string[])].sort()).toEqual([...r.segments, `${base}.h`].sort());
      expect(r.left.sort()).toEqual([...foreign].sort());
    }
  }, 60_000);

  it('the sweep finds every data segment of a dead creator\'s arena by its name', async () => {
    const serverApp = uniqueApp('sq');
    // A creator identity that is not alive (this pid with another start time: a reused pid).
    const creator = { pid: process.pid, startTime: selfIdentity().startTime + 1 };
    const r = { kind: 'sa' as const, serverApp, creator, clientApp: 'cli', session: 1 };
    const base = formatResourceName({ ...r, part: 'arena' });
    cleanups.push(() => sweepStale({ serverApp }));
    const { a, ours } = await growUnderSquatting(base);
    for (const name of ours) expect(parseResourceName(name)).toMatchObject({ serverApp, part: expect.stringMatching(/^arena\.d[0-9]+\.[0-9a-f]{16}$/) });
    a.close();
    const listed = listResources(serverApp).map((f) => f.name);
    expect(listed.sort()).toEqual([...ours, `${base}.h`].sort()); // ours only: the squatter's files are not ours
    const report = sweepStale({ serverApp });
    expect(report.removed.map((f) => f.name).sort()).toEqual([...ours, `${base}.h`].sort());
    expect(report.failed).toEqual([]);
    expect(native.shmList(scopePrefix({ ...r, nonce: parseResourceName(base)!.nonce })).filter((n) => ours.includes(n))).toEqual([]);
  }, 60_000);
});
