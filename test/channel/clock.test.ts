/**
 * Two processes read one clock (src/channel/clock.ts): a side learns how long it waited for the peer from the
 * peer's stamp, so the two readings must be comparable. Checked by causality, not by speed: a reading taken
 * after receiving a stamp is never earlier than the stamp, in either direction — two clocks a few ms apart
 * break one direction whenever the pipe is faster than that.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { nowMicros } from '../../src/channel/clock.js';
import { Child } from '../helpers/child.js';

let child: Child | undefined;
afterEach(async () => {
  child?.process.kill();
  await child?.exited;
  child = undefined;
});

describe('the session clock', () => {
  it('takes its offset to CLOCK_MONOTONIC within a µs, though the first process.hrtime() of a process is slow', async () => {
    child = new Child('clock-stamps.ts');
    const ready = (await child.waitFor('ready')) as { offsetError: number; width: number };
    expect(ready.width).toBeLessThan(3); // both readings were tightly bracketed
    expect(Math.abs(ready.offsetError)).toBeLessThanOrEqual(1 + ready.width / 2);
  });

  it('agrees between two processes: stamps never go back in time across a pipe, either way', async () => {
    child = new Child('clock-stamps.ts');
    await child.waitFor('ready');
    for (let i = 0; i < 50; i++) {
      const sent = nowMicros();
      const answer = child.waitFor((e) => e.event === 'stamp' && child!.events.indexOf(e) === i + 1);
      child.process.stdin!.write('\n');
      const { at } = (await answer) as { at: number };
      const back = nowMicros();
      expect(at).toBeGreaterThanOrEqual(sent - 1); // the child read its clock after we read ours (±1 µs rounding)
      expect(back).toBeGreaterThanOrEqual(at - 1); // and we read ours after it read its own
    }
  });
});
