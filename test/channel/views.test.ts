import { afterEach, describe, expect, it } from 'vitest';
import { finishPeer, stopPeers, withPeer } from '../helpers/peer.js';

afterEach(() => stopPeers());

describe('message views', () => {
  it('hand small messages to listeners as views of the ring; replies and iterators still get copies', async () => {
    const { peer, session, serverApp } = await withPeer();
    const viewed = await session.openChannel({ metadata: { mode: 'echo' }, messageViews: true });
    expect(viewed.messageViews).toBe(true);
    const seen: Array<{ shared: boolean; text: string }> = [];
    const all = new Promise<void>((resolve) => viewed.on('message', (m) => {
      seen.push({ shared: m.bytes.buffer instanceof SharedArrayBuffer, text: Buffer.from(m.bytes).toString() });
      if (seen.length === 100) resolve();
    }));
    for (let i = 0; i < 100; i++) viewed.send(Buffer.from(`message ${i}`));
    await all;
    expect(seen.every((s) => s.shared)).toBe(true);
    expect(seen.map((s) => s.text)).toEqual(Array.from({ length: 100 }, (_, i) => `message ${i}`));
    viewed.removeAllListeners('message');
    const reply = await viewed.request(Buffer.from('a request'));
    expect(reply.bytes.buffer instanceof SharedArrayBuffer).toBe(false); // awaited later: a copy
    expect(Buffer.from(reply.bytes).toString()).toBe('a request');
    viewed.send(Buffer.from('iterated'));
    for await (const m of viewed) {
      expect(m.bytes.buffer instanceof SharedArrayBuffer).toBe(false);
      expect(Buffer.from(m.bytes).toString()).toBe('iterated');
      break;
    }
    // The default stays copying.
    const copied = await session.openChannel({ metadata: { mode: 'echo' } });
    const one = new Promise<boolean>((resolve) => copied.once('message', (m) => resolve(m.bytes.buffer instanceof SharedArrayBuffer)));
    copied.send(Buffer.from('x'));
    expect(await one).toBe(false);
    expect(() => copied.setMessageViews('yes' as never)).toThrow(TypeError);
    await finishPeer(peer, session, serverApp);
  });
});
