/**
 * Recovery: everything that repairs shared state after a process died.
 *
 * - Lock recovery (after stealing the page lock from a dead holder): validate the unit table, reset
 *   continuation units no committed run covers, free LARGE runs whose state is 0 (a free that died between
 *   its CAS and clearing the run), and rebuild every class's slab list from the unit table.
 * - Slot recovery (a dead slot): claim it (claim word pid → RECOVERING | our pid, one CAS; a dead
 *   recoverer's claim is taken over — the scan is idempotent), clear its holder bit from every block
 *   (freeing blocks that reach 0), rebuild hint bitmaps and free counts, then free the slot. Runs under the
 *   page lock, which also steals the lock if the dead process held it.
 *
 * Close uses the same scan with its own bit.
 */
import type { ArenaCore } from './core.js';
import {
  H_CLASS_HEADS,
  H_RECOVERIES,
  KIND_CONT,
  KIND_LARGE,
  KIND_SHIFT,
  KIND_SLAB,
  MAX_SLOTS,
  PID_MASK,
  S_NEXT,
  SLOT_PID,
  SLOT_RECOVERING,
  U_DESC,
  U_STATE,
  VALUE_MASK,
} from './layout.js';
import { freeRun } from './pages.js';
import { CLASS_COUNT } from './size-classes.js';
import { slabMarkFree, slabRebuildHints, type Slab } from './slab.js';
import { freeSlot, ownerAlive, pidAlive, slotBase, slotStart } from './slots.js';

/** Calls `onSlab` / `onLarge` for every committed run, validating run lengths and segment bounds. */
export function forEachRun(
  core: ArenaCore,
  onSlab: (slab: Slab) => void,
  onLarge: (unit: number, units: number) => void,
  onOther?: (unit: number, d: number) => void,
  mappedOnly = false,
): void {
  // A closing instance holds blocks only in segments it mapped; others may be unlinked already.
  if (!mappedOnly) core.refreshSegments();
  const hdr = core.hdr;
  for (const seg of core.segments) {
    const end = seg.endUnit;
    let u = seg.firstUnit;
    while (u < end) {
      const d = Atomics.load(hdr, core.unitWord(u, U_DESC));
      const kind = d >>> KIND_SHIFT;
      const v = d & VALUE_MASK;
      if (kind === KIND_SLAB || kind === KIND_LARGE) {
        if (v < 1 || u + v > end) core.corrupt(`run at unit ${u} has length ${v}`);
        if (kind === KIND_SLAB) onSlab(core.slabAt(u));
        else onLarge(u, v);
        u += v;
      } else {
        onOther?.(u, d);
        u++;
      }
    }
  }
}

/** Clears `bit` from every block state word (page lock held); blocks reaching 0 are freed. */
export function clearBitEverywhere(core: ArenaCore, bit: number, mappedOnly = false): void {
  const hdr = core.hdr;
  forEachRun(
    core,
    (slab) => {
      const i32 = slab.i32;
      for (let idx = 0; idx < slab.count; idx++) {
        const sw = slab.stateW + idx;
        let s = Atomics.load(i32, sw);
        while ((s & bit) !== 0) {
          const ns = s & ~bit;
          const r = Atomics.compareExchange(i32, sw, s, ns);
          if (r === s) {
            if (ns === 0) slabMarkFree(slab, idx);
            break;
          }
          s = r;
        }
      }
    },
    (unit, units) => {
      const sw = core.unitWord(unit, U_STATE);
      let s = Atomics.load(hdr, sw);
      while ((s & bit) !== 0) {
        const ns = s & ~bit;
        const r = Atomics.compareExchange(hdr, sw, s, ns);
        if (r === s) {
          if (ns === 0) freeRun(core, unit, units);
          break;
        }
        s = r;
      }
    },
    undefined,
    mappedOnly,
  );
}

/** Rebuilds every slab's hint bitmap and free count from its state words. */
export function rebuildAllHints(core: ArenaCore): void {
  forEachRun(core, slabRebuildHints, () => {});
}

/** Lock recovery: see the module comment. Page lock held. */
export function lockRecovery(core: ArenaCore): void {
  const hdr = core.hdr;
  const lists: number[][] = Array.from({ length: CLASS_COUNT }, () => []);
  core.refreshSegments();
  for (const seg of core.segments) {
    const end = seg.endUnit;
    let u = seg.firstUnit;
    while (u < end) {
      const dw = core.unitWord(u, U_DESC);
      const d = Atomics.load(hdr, dw);
      const kind = d >>> KIND_SHIFT;
      const v = d & VALUE_MASK;
      if (kind === KIND_SLAB || kind === KIND_LARGE) {
        if (v < 1 || u + v > end) core.corrupt(`run at unit ${u} has length ${v}`);
        for (let j = 1; j < v; j++) {
          if (Atomics.load(hdr, core.unitWord(u + j, U_DESC)) !== ((KIND_CONT << KIND_SHIFT) | j)) {
            core.corrupt(`run at unit ${u} misses continuation ${u + j}`);
          }
        }
        if (kind === KIND_SLAB) lists[core.slabAt(u).cls.index]!.push(u);
        else if (Atomics.load(hdr, core.unitWord(u, U_STATE)) === 0) freeRun(core, u, v);
        u += v;
      } else if (kind === KIND_CONT || kind === 0) {
        // an orphan continuation (a run that was never committed or was half freed), or a free unit
        if (d !== 0) Atomics.store(hdr, dw, 0);
        if (Atomics.load(hdr, core.unitWord(u, U_STATE)) !== 0) Atomics.store(hdr, core.unitWord(u, U_STATE), 0);
        u++;
      } else {
        core.corrupt(`unit ${u} has descriptor kind ${kind}`);
      }
    }
  }
  for (let c = 0; c < CLASS_COUNT; c++) {
    const units = lists[c]!;
    for (let i = 0; i < units.length; i++) {
      const slab = core.slabAt(units[i]!);
      Atomics.store(slab.i32, slab.base + S_NEXT, i + 1 < units.length ? units[i + 1]! + 1 : 0);
    }
    Atomics.store(hdr, H_CLASS_HEADS + c, units.length > 0 ? units[0]! + 1 : 0);
  }
}

/**
 * Recovers every dead slot (other than ours). With `lockHeld` the caller holds the page lock. Returns how
 * many slots were recovered.
 */
export function recoverDeadSlots(core: ArenaCore, lockHeld: boolean): number {
  const hdr = core.hdr;
  const mine = SLOT_RECOVERING | process.pid;
  let recovered = 0;
  for (let i = 0; i < MAX_SLOTS; i++) {
    if (i === core.slot) continue;
    const cw = slotBase(i) + SLOT_PID;
    const claim = Atomics.load(hdr, cw);
    if (claim === 0) continue;
    let start = 0;
    if ((claim & SLOT_RECOVERING) !== 0) {
      // Another recovery claim: take it over only if its recoverer is gone (not if it is us: another
      // instance or thread of this process may be running it).
      if ((claim & PID_MASK) === process.pid || pidAlive(claim & PID_MASK)) continue;
    } else {
      start = slotStart(hdr, i);
      if (ownerAlive(claim, start)) continue;
    }
    if (Atomics.compareExchange(hdr, cw, claim, mine) !== claim) continue;
    if ((claim & SLOT_RECOVERING) === 0 && slotStart(hdr, i) !== start) {
      // The slot was freed and claimed again between our check and our CAS: not the dead owner's.
      Atomics.compareExchange(hdr, cw, mine, claim);
      continue;
    }
    try {
      if (!lockHeld) core.lock();
      try {
        clearBitEverywhere(core, 1 << i);
        rebuildAllHints(core);
        freeSlot(hdr, i, mine);
        Atomics.add(hdr, H_RECOVERIES, 1);
      } finally {
        if (!lockHeld) core.unlock();
      }
    } catch (err) {
      Atomics.compareExchange(hdr, cw, mine, claim); // let someone else (or a later call) retry
      throw err;
    }
    recovered++;
    core.logger().info({ arena: core.name, slot: i, pid: claim & PID_MASK }, 'recovered the holds of a dead process');
  }
  return recovered;
}
