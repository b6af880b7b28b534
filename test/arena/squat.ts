/**
 * A real foreign user squatting arena segment names, for the arena and sweep tests (and their child fixture).
 * Names are created with `touch` in /dev/shm under uid 65534 (setpriv; needs root), so creation by us fails with
 * a real EEXIST on a file we cannot remove — what another local user can do to any name they can predict.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { loadNative } from '../../src/native.js';
import { AS_NOBODY } from '../helpers/child.js';

/** Creates `names` in /dev/shm as uid 65534. */
export function squatAsNobody(names: readonly string[]): void {
  if (names.length === 0) return;
  const r = spawnSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), 'touch', ...names.map((n) => `/dev/shm/${n}`)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`squatting as uid 65534 failed: ${r.stderr}`);
}

/** Removes squatted names (as root). */
export function removeSquatted(names: readonly string[]): void {
  for (const n of names) rmSync(`/dev/shm/${n}`, { force: true });
}

const DATA = /\.d([0-9]+)\.[0-9a-f]{16}$/;

/**
 * From now on, the first name this process picks for each data segment of arena `base` is created by uid 65534
 * an instant before our own create runs: the worst a squatter can do, which no prediction could do better.
 * Returns the squatted names and the function that stops it.
 */
export function squatFirstPicks(base: string): { squatted: string[]; stop(): void } {
  const binding = loadNative();
  const real = binding.shmCreate;
  const squatted: string[] = [];
  const seen = new Set<string>();
  binding.shmCreate = (name: string, size: number, mode: number): void => {
    const m = DATA.exec(name);
    if (name.startsWith(`${base}.d`) && m !== null && !seen.has(m[1]!)) {
      seen.add(m[1]!);
      squatAsNobody([name]);
      squatted.push(name);
    }
    real.call(binding, name, size, mode);
  };
  return { squatted, stop: () => void (binding.shmCreate = real) };
}
