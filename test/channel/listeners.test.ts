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

  it('delivers to the listeners of the moment however they come and go (the channel keeps a snapshot of them)', async () => {
    const { peer, session, serverApp } = await withPeer();
    const channel = await session.openChannel({ metadata: { mode: 'echo' } });
    const got: string[] = [];
    let arrived: () => void = () => {};
    const listener = (label: string) => (m: { bytes: Uint8Array }) => {
      got.push(`${label}${m.bytes[0]}`);
      arrived();
    };
    const echo = (i: number) => {
      const back = new Promise<void>((resolve) => (arrived = resolve));
      channel.send(Buffer.from([i]));
      return back;
    };
    channel.on('message', listener('a'));
    await echo(0);
    channel.removeAllListeners(); // every event, the channel's own watch of its listeners included
    channel.once('message', listener('b'));
    await echo(1);
    const c = listener('c');
    channel.on('message', c);
    await echo(2);
    channel.off('message', c);
    channel.on('message', listener('d'));
    await echo(3);
    channel.removeAllListeners('message');
    channel.on('message', listener('e'));
    await echo(4);
    expect(got).toEqual(['a0', 'b1', 'c2', 'd3', 'e4']);
    await finishPeer(peer, session, serverApp);
  });
});
