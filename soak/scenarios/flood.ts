/**
 * The channels' flood with backpressure (soak/flood-parts.ts): the client agent runs `FLOOD_RUNS_PER_TRIAL`
 * floods one after the other on one session, alternating direction, each on a fresh channel, against a
 * consumer that pauses now and then in half the trials. A flood must never stall: a stall is an agent 'error'
 * (`stall: true`), counted by the runner and failing the soak. Nothing is killed during a flood (a kill would
 * look like a stall); the kill comes after the last run, so the trial is cleaned up and counted like every
 * other. `npm run soak -- --scenarios flood --kills 100` is 1000 flood runs.
 */
import type { Scenario } from '../scenario.js';

/** Flood runs per trial (each kill), so that a thousand runs do not cost a thousand process pairs. */
export const FLOOD_RUNS_PER_TRIAL = 10;

export const flood: Scenario = {
  name: 'flood',
  phase: 'flood (after it)',
  // One kill per trial, so that kills count trials: `--kills 100` is 100 trials, 1000 flood runs.
  targets: ['client', 'server'],
  async run(ctx) {
    await ctx.connect();
    // Half the trials: a consumer that stops for 0.2–2 ms every few hundred messages (the idle-then-wake path).
    const pauses = ctx.rng.next() < 0.5;
    const pauseEvery = pauses ? Math.floor(ctx.rng.between(100, 1000)) : 0;
    const pauseMicros = pauses ? Math.floor(ctx.rng.between(200, 2000)) : 0;
    ctx.note('pause', { pauseEvery, pauseMicros });
    ctx.client.send({ cmd: 'flood', runs: FLOOD_RUNS_PER_TRIAL, pauseEvery, pauseMicros });
    for (let run = 0; run < FLOOD_RUNS_PER_TRIAL; run++) {
      // Each run within the hang limit (a stall is reported after 5 s, as an error, before that).
      const e = await Promise.race([
        ctx.expect(ctx.client, 'flood-run', (x) => x.run === run),
        ctx.expect(ctx.client, 'error', (x) => x.where === 'flood'),
      ]);
      if (e.event === 'error') break;
    }
    ctx.kill();
  },
};
