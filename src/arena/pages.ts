/**
 * The page allocator: runs of whole 64 KiB units, tracked in the header's unit table. All functions here
 * run with the page lock held.
 *
 * A run is committed by writing its first unit's descriptor last (continuations first); it is uncommitted
 * by clearing the first descriptor first. So after a crash, lock recovery finds either a whole run or
 * orphan continuations, which it resets. A run never spans segments.
 */
import { readFileSync, statfsSync } from 'node:fs';
import { arenaDataSegmentName, createWithFreshNonce } from '../cleanup/names.js';
import { hasCode, ShmxError } from '../errors.js';
import { native } from '../native.js';
import type { ArenaCore } from './core.js';
import {
  desc,
  H_CLASS_HEADS,
  H_SEG_COUNT,
  H_SEG_NONCES,
  H_SEG_TABLE,
  KIND_CONT,
  KIND_LARGE,
  KIND_SHIFT,
  KIND_SLAB,
  MAX_SEGMENTS,
  S_NEXT,
  nonceWords,
  SEG_ENTRY_WORDS,
  SEG_NONCE_WORDS,
  U_AUX,
  U_DESC,
  U_GEN,
  U_STATE,
  UNIT,
  VALUE_MASK,
} from './layout.js';
import type { SizeClass } from './size-classes.js';
import { initSlab, type Slab } from './slab.js';

/**
 * First fit: the first unit of `k` free units inside one committed segment, or -1. Continuation units met
 * outside a run (which lock recovery resets) count as used.
 */
export function findRun(core: ArenaCore, k: number): number {
  core.refreshSegments();
  const hdr = core.hdr;
  for (const seg of core.segments) {
    if (seg.units < k) continue;
    let run = 0;
    let u = seg.firstUnit;
    const end = seg.endUnit;
    while (u < end) {
      const d = Atomics.load(hdr, core.unitWord(u, U_DESC));
      if (d === 0) {
        if (++run === k) return u - k + 1;
        u++;
        continue;
      }
      run = 0;
      const kind = d >>> KIND_SHIFT;
      const v = d & VALUE_MASK;
      if (kind === KIND_SLAB || kind === KIND_LARGE) {
        if (v < 1 || u + v > end) core.corrupt(`run at unit ${u} has length ${v}`);
        u += v;
      } else if (kind === KIND_CONT) {
        u++;
      } else {
        core.corrupt(`unit ${u} has descriptor kind ${kind}`);
      }
      if (end - u < k) break;
    }
  }
  return -1;
}

/** Commits a large block run of `k` units at `unit` held by us; returns its new generation. */
export function commitLarge(core: ArenaCore, unit: number, k: number, length: number): number {
  const hdr = core.hdr;
  for (let j = 1; j < k; j++) {
    Atomics.store(hdr, core.unitWord(unit + j, U_STATE), 0);
    Atomics.store(hdr, core.unitWord(unit + j, U_DESC), desc(KIND_CONT, j));
  }
  Atomics.store(hdr, core.unitWord(unit, U_STATE), core.bit);
  const gen = (Atomics.add(hdr, core.unitWord(unit, U_GEN), 1) + 1) | 0;
  Atomics.store(hdr, core.unitWord(unit, U_AUX), length - (k - 1) * UNIT);
  Atomics.store(hdr, core.unitWord(unit, U_DESC), desc(KIND_LARGE, k));
  return gen;
}

/** Returns a run of `k` units at `unit` to the free pool (first descriptor first). */
export function freeRun(core: ArenaCore, unit: number, k: number): void {
  const hdr = core.hdr;
  Atomics.store(hdr, core.unitWord(unit, U_DESC), 0);
  Atomics.store(hdr, core.unitWord(unit, U_STATE), 0);
  Atomics.store(hdr, core.unitWord(unit, U_AUX), 0);
  for (let j = 1; j < k; j++) Atomics.store(hdr, core.unitWord(unit + j, U_DESC), 0);
}

/** Builds a slab of class `cls` at `unit`, commits it and links it into the class list. */
export function commitSlab(core: ArenaCore, unit: number, cls: SizeClass): Slab {
  const hdr = core.hdr;
  const seg = core.segmentOf(unit);
  if (seg === undefined || unit + cls.units > seg.endUnit) return core.corrupt(`no segment for a slab at ${unit}`);
  initSlab(seg, unit, cls);
  for (let j = 1; j < cls.units; j++) {
    Atomics.store(hdr, core.unitWord(unit + j, U_STATE), 0);
    Atomics.store(hdr, core.unitWord(unit + j, U_DESC), desc(KIND_CONT, j));
  }
  Atomics.store(hdr, core.unitWord(unit, U_STATE), 0);
  Atomics.store(hdr, core.unitWord(unit, U_AUX), cls.index + 1);
  Atomics.store(hdr, core.unitWord(unit, U_DESC), desc(KIND_SLAB, cls.units));
  const slab = core.slabAt(unit);
  Atomics.store(slab.i32, slab.base + S_NEXT, Atomics.load(hdr, H_CLASS_HEADS + cls.index));
  Atomics.store(hdr, H_CLASS_HEADS + cls.index, unit + 1);
  return slab;
}

function full(core: ArenaCore, message: string, cause?: unknown): never {
  throw new ShmxError('EARENAFULL', `arena ${core.name}: ${message}`, { resource: core.name, cause });
}

/**
 * Bytes a new segment may take: free space of /dev/shm and the kernel's MemAvailable, whichever is smaller
 * (null when unknown). Checked before posix_fallocate because on a tmpfs as large as RAM, reserving more
 * than memory can hold does not fail with ENOSPC — the OOM killer ends the process first.
 */
export function shmRoom(): number | null {
  let room: number | null = null;
  try {
    const st = statfsSync('/dev/shm');
    room = st.bavail * st.bsize;
  } catch {
    // not Linux-like: rely on posix_fallocate
  }
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'latin1'));
    if (m !== null) room = Math.min(room ?? Infinity, Number(m[1]) * 1024);
  } catch {
    // no /proc
  }
  return room;
}

/** Out of memory/space while creating a segment → EARENAFULL; anything else is rethrown as is. (A failed
 *  shmCreate leaves nothing behind: the addon unlinks what it made.) */
function spaceError(core: ArenaCore, name: string, err: unknown): never {
  const code = err instanceof ShmxError ? err.code : undefined;
  if (code === 'ENOSPC' || code === 'ENOMEM' || code === 'EFBIG' || code === 'EDQUOT') {
    full(core, `cannot reserve segment ${name} (${code})`, err);
  }
  throw err;
}

/**
 * Creates the next data segment with room for at least `k` units (max(growUnits, k), or exactly k for the
 * first segment of a new arena, clipped to maxBytes) and commits it in the segment table. Returns the first
 * unit of the new segment (all free).
 *
 * The segment's name carries a fresh nonce (`<base>.d<N>.<nonce>`), recorded in the table before the entry is
 * committed: the arena's base name is visible in /dev/shm, so a name without one could be created first by
 * any local user, and growth would fail for good (a non-root creator cannot unlink another user's file in the
 * sticky /dev/shm). A name found taken (EEXIST) is not ours to touch: a fresh nonce is drawn instead. A
 * segment left by a grower that died before committing is removed with the arena's names (prefix removal).
 */
export function grow(core: ArenaCore, k: number, exact = false): number {
  core.refreshSegments();
  const hdr = core.hdr;
  const index = core.segments.length;
  const remaining = core.maxUnits - core.segEnd;
  const overCeiling = index >= MAX_SEGMENTS || k > remaining;
  const units = overCeiling ? 0 : Math.min(exact ? k : Math.max(core.growUnits, k), remaining);
  // The owner's limits (session quotas) come first: a refusal there is theirs to word.
  core.options.beforeGrow?.({
    arena: core.name, neededBytes: k * UNIT, growBytes: units * UNIT, reservedBytes: core.segEnd * UNIT,
    maxBytes: core.maxUnits * UNIT, overCeiling,
  });
  if (index >= MAX_SEGMENTS) full(core, `all ${MAX_SEGMENTS} segments are in use`);
  if (k > remaining) full(core, `maxBytes reached (${core.maxUnits * UNIT} bytes)`);
  // Never create a segment for an arena that was destroyed: nobody would unlink it.
  if (!core.headerExists()) core.destroyed();
  const room = shmRoom();
  if (room !== null && units * UNIT > room) {
    full(core, `segment ${index} needs ${units * UNIT} bytes, only ${room} are available in /dev/shm and memory`);
  }
  const { name, nonce } = createWithFreshNonce(`arena ${core.name} segment ${index}`, (n) => {
    const segment = arenaDataSegmentName(core.name, index, n);
    try {
      native.shmCreate(segment, units * UNIT, core.mode);
    } catch (err) {
      if (hasCode(err, 'EEXIST')) throw err; // taken: the next try draws a new nonce
      spaceError(core, segment, err);
    }
    return { name: segment, nonce: n };
  });
  if (!core.headerExists()) {
    native.shmUnlink(name); // destroyed while we created it
    core.destroyed();
  }
  const first = core.segEnd;
  const [hi, lo] = nonceWords(nonce);
  Atomics.store(hdr, H_SEG_NONCES + index * SEG_NONCE_WORDS, hi);
  Atomics.store(hdr, H_SEG_NONCES + index * SEG_NONCE_WORDS + 1, lo);
  Atomics.store(hdr, H_SEG_TABLE + index * SEG_ENTRY_WORDS, first);
  Atomics.store(hdr, H_SEG_TABLE + index * SEG_ENTRY_WORDS + 1, units);
  Atomics.store(hdr, H_SEG_COUNT, index + 1);
  core.refreshSegments();
  return first;
}
