/** Kills while one session opens: from just before HELLO to just after READY (a few ms after the command). */
import type { Scenario } from '../scenario.js';

export const open: Scenario = {
  name: 'open',
  phase: 'open',
  async run(ctx) {
    ctx.client.send(ctx.connectCommand);
    const delay = ctx.rng.between(0, 8);
    ctx.note('delayMs', delay);
    await ctx.sleep(delay);
    ctx.kill();
  },
};
