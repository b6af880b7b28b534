/** Kills while both sides allocate, lend and free in the session and app arenas (growing them now and then). */
import type { Scenario } from '../scenario.js';

export const alloc: Scenario = {
  name: 'alloc',
  phase: 'allocation',
  async run(ctx) {
    await ctx.connect();
    ctx.client.send({ cmd: 'loop', phase: 'alloc' });
    ctx.server.send({ cmd: 'loop', phase: 'alloc' });
    await Promise.all([ctx.expect(ctx.client, 'looping'), ctx.expect(ctx.server, 'looping')]);
    const delay = ctx.rng.between(0, 150);
    ctx.note('delayMs', delay);
    await ctx.sleep(delay);
    ctx.kill();
  },
};
