/**
 * Kills while both sides repeat one operation in a loop: allocating, lending and freeing in the session and
 * app arenas (growing them now and then), or opening and closing channels of every transport.
 */
import type { Scenario } from '../scenario.js';

function bothLoop(name: string, phase: string, loop: string): Scenario {
  return {
    name,
    phase,
    async run(ctx) {
      await ctx.connect();
      ctx.client.send({ cmd: 'loop', phase: loop });
      ctx.server.send({ cmd: 'loop', phase: loop });
      await Promise.all([ctx.expect(ctx.client, 'looping'), ctx.expect(ctx.server, 'looping')]);
      const delay = ctx.rng.between(0, 150);
      ctx.note('delayMs', delay);
      await ctx.sleep(delay);
      ctx.kill();
    },
  };
}

export const alloc = bothLoop('alloc', 'allocation', 'alloc');
export const channelOpen = bothLoop('channel-open', 'channel open', 'channel-open');
