/**
 * Futex doorbells on a word of a shared segment: they cross processes (unlike Atomics.wait/notify), park
 * without using CPU, time out, cancel, and report a changed word.
 */
import { describe, expect, it } from 'vitest';

import { native } from '../../src/native.js';
import { cpuTicks, expectClean, nodeChild, sleep, thrown, trackCreated } from './helpers.js';

const created = trackCreated();

function segment(tag: string): { name: string; buffer: SharedArrayBuffer; words: Int32Array } {
  const name = created.segment(tag);
  native.shmCreate(name, 4096, 0o600);
  const buffer = native.shmMap(name);
  return { name, buffer, words: new Int32Array(buffer) };
}

describe('futex doorbells', () => {
  it("a process parked in createFutexWaiter().wait is woken by another process's futexWake, using no CPU meanwhile", async () => {
    const { name, buffer, words } = segment('ring');
    const child = nodeChild('futex-park', [name]);
    expect(await child.json('parked')).toEqual({ busy: true });
    await sleep(50); // the waiter thread enters the kernel right after `parked`
    const before = cpuTicks(child.pid);
    await sleep(300);
    const used = cpuTicks(child.pid) - before;
    // Clock ticks are 10 ms: a spinning waiter would burn ~30 here; a parked one none.
    expect(used).toBeLessThanOrEqual(3);
    Atomics.store(words, 0, 1);
    expect(native.futexWake(buffer, 0, 1)).toBe(1); // exactly the other process's waiter
    expect(await child.json('woken')).toEqual({ result: 'ok', word: 1, busy: false });
    expectClean(await child.exited);
  });

  it('futexWake with nobody waiting wakes 0', () => {
    const { buffer } = segment('nobody');
    expect(native.futexWake(buffer, 8, 10)).toBe(0);
  });

  it('sync futexWait times out, and returns not-equal when the word differs', () => {
    const { buffer, words } = segment('sync');
    const start = performance.now();
    expect(native.futexWait(buffer, 4, 0, 60)).toBe('timed-out');
    // A lower bound only: a timed wait never ends early, however loaded the machine (no upper bounds here).
    expect(performance.now() - start).toBeGreaterThanOrEqual(55);
    Atomics.store(words, 1, 7);
    // 'not-equal' is only ever returned without sleeping (a sleeping wait ends as 'ok' or 'timed-out').
    expect(native.futexWait(buffer, 4, 0, 5000)).toBe('not-equal');
    expect(native.futexWait(buffer, 4, 7, 0)).toBe('timed-out'); // zero timeout: checks and returns
  });

  it('an async wait is woken from this process too, and the waiter is reusable', async () => {
    const { buffer, words } = segment('reuse');
    const waiter = native.createFutexWaiter(buffer, 12);
    try {
      for (let round = 0; round < 5; round++) {
        Atomics.store(words, 3, round);
        const result = waiter.wait(round, -1);
        expect(waiter.busy).toBe(true);
        // Ring until the waiter's thread has entered the kernel and been woken.
        let woken = 0;
        for (let i = 0; i < 1000 && woken === 0; i++) {
          await sleep(1);
          woken = native.futexWake(buffer, 12, 1);
        }
        expect(woken).toBe(1);
        expect(await result).toBe('ok');
        expect(waiter.busy).toBe(false);
      }
    } finally {
      waiter.close();
    }
  });

  it('an async wait with a different expected value resolves not-equal; one with a timeout, timed-out', async () => {
    const { buffer, words } = segment('ne');
    Atomics.store(words, 0, 3);
    const waiter = native.createFutexWaiter(buffer, 0);
    try {
      expect(await waiter.wait(4, -1)).toBe('not-equal');
      const start = performance.now();
      expect(await waiter.wait(3, 50)).toBe('timed-out');
      expect(performance.now() - start).toBeGreaterThanOrEqual(45);
    } finally {
      waiter.close();
    }
  });

  it('cancel resolves the pending wait with cancelled; close does too and ends the waiter', async () => {
    const { buffer } = segment('cancel');
    const waiter = native.createFutexWaiter(buffer, 0);
    expect(waiter.cancel()).toBe(false); // nothing pending
    const first = waiter.wait(0, -1);
    await sleep(20);
    expect(waiter.cancel()).toBe(true);
    expect(waiter.busy).toBe(false);
    expect(await first).toBe('cancelled');
    // Cancel right after starting, before the thread may even have picked the request up.
    const quick = waiter.wait(0, -1);
    expect(waiter.cancel()).toBe(true);
    expect(await quick).toBe('cancelled');
    // One wait at a time.
    const second = waiter.wait(0, -1);
    expect(thrown(() => waiter.wait(0, -1))).toMatchObject({ code: 'EBUSY' });
    waiter.close();
    expect(await second).toBe('cancelled');
    waiter.close(); // idempotent
    expect(thrown(() => waiter.wait(0, -1))).toMatchObject({
      code: 'ECLOSED',
      message: 'futex waiter is closed (ECLOSED)',
    });
    expect(waiter.cancel()).toBe(false);
  });

  it('a pending wait keeps the process alive; a settled waiter does not hold it', async () => {
    // Covered end to end by the child in the first test, which exits only after its wait settles; here:
    // many waiters created and dropped without close must not leak threads that keep anything alive.
    const { buffer } = segment('many');
    for (let i = 0; i < 50; i++) {
      const w = native.createFutexWaiter(buffer, 0);
      expect(await w.wait(1, -1)).toBe('not-equal');
    }
  });
});
