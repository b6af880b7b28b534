/**
 * Kills during sequence-checked traffic in both directions on one channel of a transport: small inline
 * messages, spilled ones and lent blocks (the receiver reports any gap or reordering as 'seq-error').
 */
import type { TransportKind } from '../../src/index.js';
import type { Scenario } from '../scenario.js';

function transfer(transport: TransportKind): Scenario {
  return {
    name: `transfer-${transport}`,
    phase: `transfer (${transport})`,
    async run(ctx) {
      await ctx.connect();
      ctx.client.send({ cmd: 'transfer', transport });
      const flowing = await Promise.race([ctx.expect(ctx.client, 'transferring'), ctx.expect(ctx.client, 'transfer-skipped')]);
      if (flowing.event === 'transfer-skipped') ctx.note('skipped', flowing.message); // no queue to be had: kill anyway
      const delay = ctx.rng.between(0, 100);
      ctx.note('delayMs', delay);
      await ctx.sleep(delay);
      ctx.kill();
    },
  };
}

export const transferShm = transfer('shm');
export const transferMq = transfer('mq');
export const transferSocket = transfer('socket');
