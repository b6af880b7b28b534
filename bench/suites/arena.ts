/**
 * Arena alloc + free: pairs of `alloc(size)` + `free()` timed in batches (one clock read per batch, so the
 * clock's own ~40 ns does not dominate); median and p99 of the per-pair time over all batches.
 */
import { Arena } from '../../dist/index.js';
import { progress, uniqueName } from '../harness.js';
import { Recorder, type Summary } from '../stats.js';

export interface ArenaOptions {
  sizes: number[];
  batches: number;
  batch: number;
}

export interface ArenaResult {
  options: ArenaOptions;
  /** per size: µs per alloc + free pair */
  pairs: Record<string, Summary>;
}

export function runArena(o: ArenaOptions): ArenaResult {
  const name = `shmxbench.${uniqueName('a')}`;
  const arena = Arena.create(name, { maxBytes: 1 << 30, growChunk: 16 << 20 });
  const pairs: Record<string, Summary> = {};
  try {
    for (const size of o.sizes) {
      progress(`arena  alloc+free ${size} B`);
      for (let w = 0; w < 200; w++) for (let i = 0; i < o.batch; i++) arena.free(arena.alloc(size));
      const rec = new Recorder();
      for (let b = 0; b < o.batches; b++) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < o.batch; i++) arena.free(arena.alloc(size));
        rec.recordNs(Number(process.hrtime.bigint() - t0) / o.batch);
      }
      pairs[size] = rec.summary();
    }
  } finally {
    arena.close();
    Arena.unlink(name);
  }
  return { options: o, pairs };
}
