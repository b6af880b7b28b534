/**
 * The short soak inside `npm test`: a few SIGKILLs of real server and client processes during traffic, close
 * and shutdown, with the same checks `npm run soak` makes (nothing left after the survivor's cleanup, the next
 * server start and `shmx sweep`; no hang, crash or sequence error). Agents run the sources under tsx.
 * Latency is measured by the soak but never asserted here.
 */
import { describe, expect, it } from 'vitest';
import { runSoak } from '../../soak/runner.js';
import { FLOOD_RUNS_PER_TRIAL } from '../../soak/scenarios/flood.js';

describe('soak (short)', () => {
  it('a few kills in traffic, close and shutdown leave nothing behind and hang nothing', async () => {
    const result = await runSoak({
      kills: 4,
      seed: 7,
      mode: 'tsx',
      scenarios: ['transfer-shm', 'close', 'shutdown', 'channel-open'],
      sweepEvery: 2,
      // Agents under tsx boot slowly on a loaded machine; a hang here means "never", not "slow".
      hangMs: 30_000,
    });
    expect(result.failures).toEqual([]);
    expect(result).toMatchObject({ leaks: { survivor: 0, restart: 0, sweep: 0 }, hangs: 0, crashes: 0, errors: 0 });
    expect(result.kills).toBeGreaterThanOrEqual(4);
  }, 600_000);

  it('the flood scenario: every run of a trial completes, none stalls, and the trial is cleaned up', async () => {
    const result = await runSoak({ kills: 1, seed: 11, mode: 'tsx', scenarios: ['flood'], sweepEvery: 1, hangMs: 30_000 });
    expect(result.failures).toEqual([]);
    expect(result).toMatchObject({ leaks: { survivor: 0, restart: 0, sweep: 0 }, hangs: 0, crashes: 0, errors: 0 });
    expect(result.flood).toEqual({ runs: FLOOD_RUNS_PER_TRIAL, stalls: 0 });
  }, 600_000);
});
