import { afterEach, describe, expect, it } from 'vitest';
import { finishPeer, stopPeers, withPeer } from '../helpers/peer.js';

afterEach(() => stopPeers());

describe('message listeners', () => {
  it('a listener attached later gets what arrived while nobody listened, first and in order', async () => {
    const { peer, session, serverApp } = await withPeer();
    const channel = await session.openChannel({ metadata: { mode: 'echo' } });
    const got: number[] = [];
    const firstThree = new Promise<void>((resolve) => {
      const take = (m: { bytes: Uint8Array }) => {
        got.push(m.bytes[0]!);
        if (got.length === 3) {
          channel.off('message', take); // mid-batch: the rest of the batch has nobody to go to
          resolve();
        }
      };
      channel.on('message', take);
    });
    for (let i = 0; i < 20; i++) channel.send(Buffer.from([i]));
    await firstThree;
    await new Promise((r) => setTimeout(r, 100));
    await new Promise<void>((resolve) => channel.on('message', (m) => {
      got.push(m.bytes[0]!);
      if (got.length === 20) resolve();
    }));
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await finishPeer(peer, session, serverApp);
  });
});
