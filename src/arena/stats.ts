/**
 * Arena statistics, computed by scanning the state words (the truth), not from the accelerators. Exact when
 * no process is allocating concurrently; a consistent-enough snapshot otherwise.
 */
import type { ArenaCore } from './core.js';
import { H_LOCK_STEALS, H_RECOVERIES, HOLDER_MASK, MAX_SLOTS, SLOT_PID, U_STATE, UNIT } from './layout.js';
import { forEachRun } from './recovery.js';
import { slotBase } from './slots.js';

/** A snapshot of an arena's accounting (all processes). */
export interface ArenaStats {
  /** Bytes of all data segments (what the arena has reserved from /dev/shm). */
  reservedBytes: number;
  /** Capacity of every live block: size class for small blocks, whole units for large ones. */
  inUseBytes: number;
  /** Capacity of every free block in slabs plus every free unit. */
  freeBytes: number;
  /** reservedBytes − inUseBytes − freeBytes: slab headers, per-block words, slab tail padding. */
  overheadBytes: number;
  /** The largest block that can be allocated without growing (a free unit run or a free slab block). */
  largestFreeBlock: number;
  /** Blocks whose state word is not 0 (held or with lends in flight). */
  liveBlocks: number;
  /** Live blocks held by more than one process slot at once. */
  borrowedBlocks: number;
  /** Lends handed out and not yet borrowed, summed over all blocks. */
  inflightLends: number;
  /** Data segments. */
  segments: number;
  /** Slabs (of all classes). */
  slabs: number;
  /** Bytes of the header segment (segment table, slots, unit table). */
  headerBytes: number;
  /** Process slots claimed (open Arena instances, plus dead ones not yet recovered). */
  slotsInUse: number;
  /** Times a dead process's page lock was stolen, since the arena was created. */
  lockSteals: number;
  /** Dead slots recovered, since the arena was created. */
  recoveries: number;
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export function computeStats(core: ArenaCore): ArenaStats {
  const st: ArenaStats = {
    reservedBytes: 0,
    inUseBytes: 0,
    freeBytes: 0,
    overheadBytes: 0,
    largestFreeBlock: 0,
    liveBlocks: 0,
    borrowedBlocks: 0,
    inflightLends: 0,
    segments: 0,
    slabs: 0,
    headerBytes: core.hdr.byteLength,
    slotsInUse: 0,
    lockSteals: Atomics.load(core.hdr, H_LOCK_STEALS),
    recoveries: Atomics.load(core.hdr, H_RECOVERIES),
  };
  for (let i = 0; i < MAX_SLOTS; i++) if (Atomics.load(core.hdr, slotBase(i) + SLOT_PID) !== 0) st.slotsInUse++;
  const hdr = core.hdr;
  const count = (s: number, capacity: number): void => {
    if (s === 0) {
      st.freeBytes += capacity;
      if (capacity > st.largestFreeBlock) st.largestFreeBlock = capacity;
      return;
    }
    st.liveBlocks++;
    st.inUseBytes += capacity;
    st.inflightLends += s >>> 24;
    if (popcount(s & HOLDER_MASK) > 1) st.borrowedBlocks++;
  };
  let runStart = -1;
  let runEnd = -1;
  const closeRun = (): void => {
    if (runStart >= 0) {
      const bytes = (runEnd - runStart) * UNIT;
      if (bytes > st.largestFreeBlock) st.largestFreeBlock = bytes;
    }
    runStart = -1;
  };
  forEachRun(
    core,
    (slab) => {
      closeRun();
      st.slabs++;
      for (let idx = 0; idx < slab.count; idx++) count(Atomics.load(slab.i32, slab.stateW + idx), slab.size);
    },
    (unit, units) => {
      closeRun();
      const s = Atomics.load(hdr, core.unitWord(unit, U_STATE));
      // A LARGE run in state 0 is a free that died half-way: unusable until lock recovery returns it.
      if (s === 0) st.inUseBytes += units * UNIT;
      else count(s, units * UNIT);
    },
    (unit, d) => {
      if (d !== 0) {
        closeRun();
        return;
      }
      st.freeBytes += UNIT;
      if (runStart < 0 || runEnd !== unit) {
        closeRun();
        runStart = unit;
      }
      runEnd = unit + 1;
    },
  );
  closeRun();
  for (const seg of core.segments) {
    st.reservedBytes += seg.units * UNIT;
    st.segments++;
  }
  st.overheadBytes = st.reservedBytes - st.inUseBytes - st.freeBytes;
  return st;
}
