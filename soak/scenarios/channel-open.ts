/** Kills while both sides open and close channels of every transport in a loop. */
import type { Scenario } from '../scenario.js';

export const channelOpen: Scenario = {
  name: 'channel-open',
  phase: 'channel open',
  async run(ctx) {
    await ctx.connect();
    ctx.client.send({ cmd: 'loop', phase: 'channel-open' });
    ctx.server.send({ cmd: 'loop', phase: 'channel-open' });
    await Promise.all([ctx.expect(ctx.client, 'looping'), ctx.expect(ctx.server, 'looping')]);
    const delay = ctx.rng.between(0, 150);
    ctx.note('delayMs', delay);
    await ctx.sleep(delay);
    ctx.kill();
  },
};
