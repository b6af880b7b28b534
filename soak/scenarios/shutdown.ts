/**
 * Kills during server shutdown (server.close() with a session and a channel open), timed by the server itself:
 * `delay` µs after close() began it SIGKILLs itself or the client.
 */
import type { Scenario } from '../scenario.js';

export const shutdown: Scenario = {
  name: 'shutdown',
  phase: 'server shutdown',
  targets: ['client', 'server'],
  async run(ctx) {
    await ctx.connect();
    ctx.client.send({ cmd: 'transfer', transport: 'shm' });
    await ctx.expect(ctx.client, 'transferring');
    const victim = ctx.target === 'client' ? ctx.client : ctx.server;
    const delayUs = ctx.rng.between(0, 20_000);
    ctx.note('delayUs', Math.round(delayUs));
    victim.doomed = true;
    ctx.server.send({ cmd: 'close-kill', shutdown: true, pid: victim.pid, delayUs });
    const killing = await ctx.expect(ctx.server, 'killing');
    victim.killedAt = killing.at as number;
  },
};
