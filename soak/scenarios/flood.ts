/**
 * The channels' flood with backpressure (soak/flood-parts.ts): the client agent runs `FLOOD_RUNS_PER_TRIAL`
 * floods one after the other on one session, alternating direction, each on a fresh channel ({@link FLOOD_MESSAGES} messages), against a
 * consumer that pauses now and then in half the trials. A flood must never stall: a stall is an agent 'error'
 * (`stall: true`), counted by the runner and failing the soak. Nothing is killed during a flood (a kill would
 * look like a stall); the kill comes after the last run, so the trial is cleaned up and counted like every
 * other. `npm run soak -- --scenarios flood --kills 100` is 1000 flood runs.
 */
import type { Scenario } from '../scenario.js';

/** Flood runs per trial (each kill), so that a thousand runs do not cost a thousand process pairs. */
export const FLOOD_RUNS_PER_TRIAL = 10;
const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
/**
 * Messages per run: a quarter of the standalone flood's 20 000 (the same sizes: 64 B, every 50th 16 000 B), so
 * that a thousand runs fit a soak on a loaded machine (there a 20 000-message run took 5–10 s); each run still
 * fills the ring and waits for 'drain' many times over.
 */
export const FLOOD_MESSAGES = 5000;
/** A run still going (without stalling) after this long fails the trial. */
const RUN_LIMIT_MS = 120_000;

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
    ctx.client.send({ cmd: 'flood', runs: FLOOD_RUNS_PER_TRIAL, messages: FLOOD_MESSAGES, pauseEvery, pauseMicros });
    // A stall is the agent's finding (no 'drain' for 5 s: an 'error'); what the runner calls a hang here is the
    // client going silent — no run ended and no heartbeat ('flooding', every second) for 10 s — or a run that
    // goes on past RUN_LIMIT_MS without stalling (a liveness bound: on an idle machine a run takes ~0.1 s).
    for (let run = 0; run < FLOOD_RUNS_PER_TRIAL; run++) {
      const started = Date.now();
      let e;
      do {
        if (Date.now() - started > RUN_LIMIT_MS) throw new Error(`flood run ${run} still going after ${RUN_LIMIT_MS} ms`);
        const since = monotonicMs(); // agents stamp events with the same clock
        e = await Promise.race([
          ctx.expect(ctx.client, 'flood-run', (x) => x.run === run),
          ctx.expect(ctx.client, 'error', (x) => x.where === 'flood'),
          ctx.expect(ctx.client, 'flooding', (x) => (x.at as number) > since),
        ]);
      } while (e.event === 'flooding');
      if (e.event === 'error') break;
    }
    ctx.kill();
  },
};
