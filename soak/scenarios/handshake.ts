/** Kills during the handshake: the client connects and closes in a loop; the kill lands anywhere in it. */
import type { Scenario } from '../scenario.js';

export const handshake: Scenario = {
  name: 'handshake',
  phase: 'handshake',
  async run(ctx) {
    ctx.client.send({ ...ctx.connectCommand, cmd: 'loop', phase: 'handshake' });
    await ctx.expect(ctx.client, 'looping');
    const delay = ctx.rng.between(0, 150);
    ctx.note('delayMs', delay);
    await ctx.sleep(delay);
    ctx.kill();
  },
};
