/**
 * Kills during a graceful session close, timed by the closing process itself (µs-exact, no pipe latency): one
 * side calls close() and, `delay` µs later, SIGKILLs the victim — usually the other side, sometimes itself.
 * Half the trials aim at 1–3 ms after the client began closing with the server as victim: a session-arena
 * header was once seen left behind in exactly that case.
 */
import type { Scenario } from '../scenario.js';

export const close: Scenario = {
  name: 'close',
  phase: 'close',
  async run(ctx) {
    await ctx.connect();
    ctx.client.send({ cmd: 'transfer', transport: 'shm' }); // a channel with traffic: the close has work to do
    await ctx.expect(ctx.client, 'transferring');
    const targeted = ctx.rng.next() < 0.5;
    const closer = targeted ? ctx.client : ctx.rng.pick([ctx.client, ctx.server]);
    const victim = targeted ? ctx.server : ctx.target === 'client' ? ctx.client : ctx.server;
    const delayUs = targeted ? ctx.rng.between(1000, 3000) : ctx.rng.between(0, 5000);
    ctx.note('closer', closer === ctx.client ? 'client' : 'server');
    ctx.note('victim', victim === ctx.client ? 'client' : 'server');
    ctx.note('delayUs', Math.round(delayUs));
    victim.doomed = true;
    closer.send({ cmd: 'close-kill', pid: victim.pid, delayUs });
    const killing = await ctx.expect(closer, 'killing');
    victim.killedAt = killing.at as number;
    ctx.note('afterUs', killing.afterUs);
  },
  targets: ['client', 'server'],
};
