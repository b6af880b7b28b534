/**
 * Arena alloc + free: pairs of `alloc(size)` + `free()` timed in batches (one clock read per batch, so the
 * clock's own ~40 ns does not dominate); median and p99 of the per-pair time over all batches — in one process,
 * with leak tracking on, and while a peer process allocates and frees random 16…4112-byte blocks in the same
 * arena as fast as it can. Also: the first allocation that needs a new segment of `growBytes` (its pages are
 * reserved with posix_fallocate, which blocks the event loop meanwhile).
 */
import { Arena } from '../../dist/index.js';
import { heartbeat } from '../checks.js';
import { Peer, progress, uniqueName } from '../harness.js';
import type { RoleServed } from '../peer.js';
import { Recorder, type Summary } from '../stats.js';

export interface ArenaOptions {
  sizes: number[];
  batches: number;
  batch: number;
  growBytes: number;
}

export interface ArenaResult {
  options: ArenaOptions;
  /** per size: µs per alloc + free pair, one process */
  pairs: Record<string, Summary>;
  /** the same while a peer churns the arena */
  withPeer: Record<string, Summary>;
  /** 256 B with trackLeaks: true */
  tracked: Summary;
  /** the peer's alloc-or-free operations per second meanwhile */
  peerOpsPerSecond: number;
  /** ms for the first alloc(growBytes) in a fresh arena */
  growMs: number;
}

/** The peer: opens the arena and allocates/frees random small blocks until stopped. */
async function arenaChurn(config: { name: string }): Promise<RoleServed> {
  const arena = Arena.open(config.name);
  const held: ReturnType<Arena['alloc']>[] = [];
  let ops = 0;
  let running = true;
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const turn = () => {
    if (!running) return;
    for (let i = 0; i < 20_000; i++) {
      if (held.length > 64 || (held.length > 0 && rand() < 0.5)) arena.free(held.splice(Math.floor(rand() * held.length), 1)[0]!);
      else held.push(arena.alloc(16 + Math.floor(rand() * 4096)));
      ops++;
    }
    setImmediate(turn);
  };
  setImmediate(turn);
  return {
    commands: { ops: () => ({ ops, at: performance.now() }) },
    close() {
      running = false;
      for (const b of held.splice(0)) arena.free(b);
      arena.close();
    },
  };
}

export const ARENA_ROLES: Record<string, (config: never) => Promise<RoleServed>> = { 'arena-churn': arenaChurn };

function pairTime(arena: Arena, size: number, o: ArenaOptions): Summary {
  for (let w = 0; w < 200; w++) for (let i = 0; i < o.batch; i++) arena.free(arena.alloc(size));
  const rec = new Recorder();
  for (let b = 0; b < o.batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < o.batch; i++) arena.free(arena.alloc(size));
    rec.recordMs((performance.now() - t0) / o.batch);
  }
  heartbeat.beats++;
  return rec.summary();
}

export async function runArena(o: ArenaOptions): Promise<ArenaResult> {
  const name = `shmxbench.${uniqueName('a')}`;
  const arena = Arena.create(name, { maxBytes: 1 << 30, growChunk: 16 << 20 });
  const tracking = Arena.open(name, { trackLeaks: true });
  const pairs: Record<string, Summary> = {};
  const withPeer: Record<string, Summary> = {};
  let tracked: Summary;
  let peerOpsPerSecond = NaN;
  try {
    for (const size of o.sizes) {
      progress(`arena  alloc+free ${size} B`);
      pairs[size] = pairTime(arena, size, o);
    }
    tracked = pairTime(tracking, 256, o);
    const peer = await Peer.start('arena-churn', { name });
    try {
      const first = await peer.request<{ ops: number; at: number }>('ops');
      for (const size of o.sizes) {
        progress(`arena  alloc+free ${size} B, with a peer allocating`);
        withPeer[size] = pairTime(arena, size, o);
      }
      const last = await peer.request<{ ops: number; at: number }>('ops');
      peerOpsPerSecond = ((last.ops - first.ops) / (last.at - first.at)) * 1000;
    } finally {
      await peer.stop();
    }
  } finally {
    tracking.close();
    arena.close();
    Arena.unlink(name);
  }
  progress(`arena  first alloc of ${o.growBytes} B in a fresh arena`);
  const growName = `shmxbench.${uniqueName('g')}`;
  const grow = Arena.create(growName, { maxBytes: o.growBytes * 2, growChunk: o.growBytes * 2 });
  let growMs: number;
  try {
    const t0 = performance.now();
    const block = grow.alloc(o.growBytes);
    growMs = performance.now() - t0;
    grow.free(block);
  } finally {
    grow.close();
    Arena.unlink(growName);
  }
  return { options: o, pairs, withPeer, tracked: tracked!, peerOpsPerSecond, growMs };
}
