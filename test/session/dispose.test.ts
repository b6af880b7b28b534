/**
 * Explicit resource management (issue 11 item 4): `await using` closes servers, sessions and channels, `using`
 * releases blocks and messages — at the end of their scope, in reverse order, also when the scope throws.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Block, Channel, ClientSession, Message, Session, SessionServer, Universe } from '../../src/index.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';

describe('explicit resource management', () => {
  it('await using closes server, session and channel; using releases blocks and messages', async () => {
    const t = testUniverse();
    const universe = new Universe(t.definition);
    let server!: SessionServer;
    let session!: Session;
    let channel!: Channel;
    let block!: Block;
    let reply!: Message;
    let sessionWhenChannelClosed: string | undefined;
    await expect((async () => {
      await using s = await SessionServer.start({ universe, serverApp: t.serverApp });
      s.on('session', (peer) => peer.on('channel', (c) => c.on('message', (m) => {
        m.reply(m.block ?? m.bytes); // the block goes back by handle
        m.release();
      })));
      await using c = await ClientSession.connect({ universe, clientApp: t.clientApp, serverApp: t.serverApp });
      await using ch = await c.openChannel();
      ch.once('close', () => (sessionWhenChannelClosed = c.state)); // closed by its own disposal, not the session's
      using b = c.sessionArena.alloc(64);
      [server, session, channel, block] = [s, c, ch, b];
      {
        using r = await ch.request(b, { timeoutMs: 10_000 });
        reply = r;
        expect(r.block?.held).toBe(true);
      }
      expect(reply.block?.held).toBe(false); // released at the end of its block scope
      expect(channel.state).toBe('open');
      throw new Error('the scope fails'); // disposal still runs
    })()).rejects.toThrow('the scope fails');
    expect(block.held).toBe(false);
    expect(channel.state).toBe('closed');
    expect(sessionWhenChannelClosed).toBe('open');
    expect(session.state).toBe('closed');
    expect(server.openSessions).toEqual([]);
    expect(existsSync(server.socketPath)).toBe(false);
    expect(await shmObjectsOf(t.serverApp)).toEqual([]);
  });

  it('the dispose symbols are the ones Node\'s own objects use, so shmx and Node objects agree', () => {
    // Node 20 and 22 define them as Symbol.for('nodejs.…'); from Node 24 V8 has them built in. Either way
    // Node's own disposables (a timer here) carry the very symbol shmx's classes use.
    const timer = setTimeout(() => {}, 1);
    clearTimeout(timer);
    expect(typeof (timer as unknown as Record<symbol, unknown>)[Symbol.dispose]).toBe('function');
    const builtIn = String(Symbol.asyncDispose) === 'Symbol(Symbol.asyncDispose)';
    expect(Symbol.asyncDispose).toBe(builtIn ? Symbol.asyncDispose : Symbol.for('nodejs.asyncDispose'));
    expect(Symbol.dispose).toBe(builtIn ? Symbol.dispose : Symbol.for('nodejs.dispose'));
    expect(typeof SessionServer.prototype[Symbol.asyncDispose]).toBe('function');
    expect(typeof Block.prototype[Symbol.dispose]).toBe('function');
  });
});
