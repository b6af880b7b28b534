/**
 * The page lock: one Int32 header word holding the holder's token (slot + 1, or PID_TOKEN | pid for an
 * opener that has no slot yet), 0 when free. It guards the unit table, the segment table, growth and the
 * slab lists; slab block allocation never takes it.
 *
 * Acquire: CAS 0 → token; while busy spin briefly, then sleep in 1 ms steps and every few ms check the
 * holder's liveness. A dead holder's lock is stolen by CAS (token → our token) and the caller runs lock
 * recovery before using what the lock guards. A live holder for longer than the timeout → `EARENABUSY`.
 */
import { ShmxError } from '../errors.js';
import { H_LOCK_STEALS, H_PAGE_LOCK } from './layout.js';
import { tokenAlive } from './slots.js';

const SLEEP_WORD = new Int32Array(new SharedArrayBuffer(4));
const SPINS = 200;
const SPIN_MS = 0.1;
const CHECK_EVERY_MS = 4;

/** Sleeps the calling thread for `ms` milliseconds (no event loop involvement). */
export function sleepMs(ms: number): void {
  Atomics.wait(SLEEP_WORD, 0, 0, ms);
}

/** Outcome of {@link acquirePageLock}. */
export const ACQUIRED = 0;
export const STOLEN = 1;

/**
 * Takes the page lock for `token`. Returns {@link STOLEN} when it was taken from a dead holder (the caller
 * must run lock recovery), {@link ACQUIRED} otherwise. `onInvalid` is called (and must throw) when the word
 * holds something that is not a token.
 */
export function acquirePageLock(
  hdr: Int32Array,
  token: number,
  timeoutMs: number,
  resource: string,
  onInvalid: (value: number) => never,
): number {
  let cur = Atomics.compareExchange(hdr, H_PAGE_LOCK, 0, token);
  if (cur === 0) return ACQUIRED;
  if (cur === token) throw new Error(`shmx arena ${resource}: page lock re-entered`);
  // Critical sections last microseconds: spin for up to SPIN_MS before the first 1 ms sleep (two processes
  // opening one session contend here at the same moment; sleeping at once would add a millisecond).
  const spinUntil = performance.now() + SPIN_MS;
  do {
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(hdr, H_PAGE_LOCK) === 0) {
        cur = Atomics.compareExchange(hdr, H_PAGE_LOCK, 0, token);
        if (cur === 0) return ACQUIRED;
      }
    }
  } while (performance.now() < spinUntil);
  const start = Date.now();
  let lastCheck = start;
  let checkNow = true;
  for (;;) {
    cur = Atomics.load(hdr, H_PAGE_LOCK);
    if (cur === 0) {
      cur = Atomics.compareExchange(hdr, H_PAGE_LOCK, 0, token);
      if (cur === 0) return ACQUIRED;
    }
    const now = Date.now();
    if (checkNow || now - lastCheck >= CHECK_EVERY_MS) {
      checkNow = false;
      lastCheck = now;
      if (cur !== 0) {
        if (cur === token) throw new Error(`shmx arena ${resource}: page lock re-entered`);
        const alive = tokenAlive(hdr, cur);
        if (alive === null) onInvalid(cur);
        if (alive === false && Atomics.compareExchange(hdr, H_PAGE_LOCK, cur, token) === cur) {
          Atomics.add(hdr, H_LOCK_STEALS, 1);
          return STOLEN;
        }
      }
    }
    if (now - start >= timeoutMs) {
      throw new ShmxError('EARENABUSY', `arena ${resource}: page lock held by a live process for ${timeoutMs} ms`, {
        resource,
      });
    }
    sleepMs(1);
  }
}

/** Releases the page lock; false when the word no longer holds `token` (someone judged us dead). */
export function releasePageLock(hdr: Int32Array, token: number): boolean {
  return Atomics.compareExchange(hdr, H_PAGE_LOCK, token, 0) === token;
}
