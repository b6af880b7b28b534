/**
 * Process slots: each open `Arena` instance owns one of 24 slots `{claim, startLo, startHi, state}` in the
 * header. The slot index is its holder bit in block state words.
 *
 * The claim word is the only word that decides ownership:
 * - `0`: free;
 * - `pid`: owned by that process (claimed by CAS 0 → pid, then the start time is written, then state ALIVE);
 * - `SLOT_RECOVERING | pid`: the owner is dead and process `pid` is reclaiming its holds.
 *
 * Freeing writes state and start time first and the claim word last, so a slot is never reusable while any
 * of its words is in use. An owner is dead when its pid no longer exists or now belongs to a process with
 * another start time (pid reuse); an owner whose start time is not yet written counts as alive (it is being
 * claimed). A recoverer is dead when its pid no longer exists.
 */
import { isZombie } from '../cleanup/liveness.js';
import { native } from '../native.js';
import {
  H_SLOTS,
  MAX_SLOTS,
  PID_MASK,
  PID_TOKEN,
  SLOT_ALIVE,
  SLOT_PID,
  SLOT_RECOVERING,
  SLOT_START_HI,
  SLOT_START_LO,
  SLOT_STATE,
  SLOT_WORDS,
} from './layout.js';

const TWO32 = 2 ** 32;

export function slotBase(slot: number): number {
  return H_SLOTS + slot * SLOT_WORDS;
}

/** This process's start time in clock ticks (cached). */
let ownStart: number | undefined;
export function ownStartTime(): number {
  if (ownStart === undefined) ownStart = native.processStartTime(process.pid) ?? 0;
  return ownStart;
}

/** Claims a free slot for this process; returns its index or -1 when all are taken. */
export function claimSlot(hdr: Int32Array): number {
  const pid = process.pid;
  const start = ownStartTime();
  for (let i = 0; i < MAX_SLOTS; i++) {
    const b = slotBase(i);
    if (Atomics.compareExchange(hdr, b + SLOT_PID, 0, pid) === 0) {
      Atomics.store(hdr, b + SLOT_START_LO, start % TWO32 | 0);
      Atomics.store(hdr, b + SLOT_START_HI, Math.floor(start / TWO32));
      Atomics.store(hdr, b + SLOT_STATE, SLOT_ALIVE);
      return i;
    }
  }
  return -1;
}

/**
 * Frees a slot whose claim word holds `claim` (the owner's pid, or our recovery claim): state, start time,
 * then the claim word last (by CAS, so a slot that is not ours is left alone). Returns false if not ours.
 */
export function freeSlot(hdr: Int32Array, slot: number, claim: number): boolean {
  const b = slotBase(slot);
  if (Atomics.load(hdr, b + SLOT_PID) !== claim) return false;
  Atomics.store(hdr, b + SLOT_STATE, 0);
  Atomics.store(hdr, b + SLOT_START_LO, 0);
  Atomics.store(hdr, b + SLOT_START_HI, 0);
  return Atomics.compareExchange(hdr, b + SLOT_PID, claim, 0) === claim;
}

/** True when `pid` exists and has not exited (pid outside 1..2^30 counts as gone; a zombie is dead). */
export function pidAlive(pid: number): boolean {
  if (!(pid > 0 && pid <= PID_MASK)) return false;
  return native.isAlive(pid) && !isZombie(pid);
}

/** The start time recorded in a slot (0 while being claimed or freed). */
export function slotStart(hdr: Int32Array, slot: number): number {
  const b = slotBase(slot);
  return (Atomics.load(hdr, b + SLOT_START_LO) >>> 0) + (Atomics.load(hdr, b + SLOT_START_HI) >>> 0) * TWO32;
}

/** True when process `pid` with start time `start` (0: unknown) still runs. */
export function ownerAlive(pid: number, start: number): boolean {
  if (!pidAlive(pid)) return false;
  if (start === 0) return true;
  const now = native.processStartTime(pid);
  return now === null ? false : now === start;
}

/**
 * True when the process that owns `slot` still runs. Free slots and slots under recovery (their owner is
 * dead) count as not alive.
 */
export function slotAlive(hdr: Int32Array, slot: number): boolean {
  const claim = Atomics.load(hdr, slotBase(slot) + SLOT_PID);
  if (claim === 0 || (claim & SLOT_RECOVERING) !== 0) return false;
  return ownerAlive(claim, slotStart(hdr, slot));
}

/** True when the holder of page-lock token `token` is alive; null when the token is not a valid token. */
export function tokenAlive(hdr: Int32Array, token: number): boolean | null {
  if ((token & PID_TOKEN) !== 0) return pidAlive(token & PID_MASK);
  if (token >= 1 && token <= MAX_SLOTS) return slotAlive(hdr, token - 1);
  return null;
}
