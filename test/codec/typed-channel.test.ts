/**
 * Typed channels (src/codec) between two real processes, over each transport: nested objects, typed arrays,
 * Dates and large values (which travel in an arena block, encoded in place from the second one on) round-trip
 * through a typed peer (test/fixtures/codec-peer.ts) that decodes and encodes them again.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ClientSession, LARGE_VALUE_BYTES, msgpackCodec, rawCodec, Universe, type Codec, type Session, type TypedChannel,
} from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { shmObjectsOf, testUniverse } from '../helpers/universe.js';

const children: Child[] = [];
const sessions: Session[] = [];
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
  await Promise.all(children.splice(0).map((c) => c.stop()));
});

async function connect(): Promise<{ session: Session; serverApp: string; peer: Child }> {
  const t = testUniverse();
  const peer = new Child('codec-peer.ts', [JSON.stringify({ definition: t.definition, serverApp: t.serverApp })]);
  children.push(peer);
  await peer.waitFor('listening');
  const session = await ClientSession.connect({ universe: new Universe(t.definition), clientApp: t.clientApp, serverApp: t.serverApp });
  sessions.push(session);
  return { session, serverApp: t.serverApp, peer };
}

/** A value of many kinds: what a codec-typed message must keep. */
function nested(i: number) {
  return {
    id: i, name: `order-${i} ✓ ünïcødé`, ok: true, none: null, ratio: 0.125, big: 2n ** 60n,
    at: new Date(1_700_000_000_000 + i),
    prices: new Float64Array([1.5, -2.25, i]), raw: new Uint8Array([1, 2, 3, i & 255]), counts: new Int32Array([-1, 0, i]),
    legs: [{ side: 'buy', qty: 10, tags: ['a', 'b'] }, { side: 'sell', qty: 5, tags: [] }],
    deep: { a: { b: { c: { d: [1, [2, [3]]] } } } },
  };
}

/** A value whose encoding is far over LARGE_VALUE_BYTES: it goes by arena block. */
function large(seed: number) {
  const samples = new Float64Array(50_000);
  for (let i = 0; i < samples.length; i++) samples[i] = seed * 1e6 + i;
  // A Buffer decodes as a view of its source unless the codec copies it: the case a borrowed decode must copy.
  return { seed, samples, note: 'x'.repeat(10_000), blob: Buffer.alloc(64 * 1024, seed) };
}

/** msgpack, counting how often a value was encoded in place. */
function countingMsgpack(): Codec & { into: number } {
  const inner = msgpackCodec();
  const counting = {
    name: 'msgpack', into: 0,
    encode: (v: unknown) => inner.encode(v),
    encodeInto: (v: unknown, target: Uint8Array) => {
      counting.into++;
      return inner.encodeInto!(v, target);
    },
    decode: (b: Uint8Array, borrowed: boolean) => inner.decode(b, borrowed),
  };
  return counting;
}

describe('typed channels', () => {
  it.each(['shm', 'mq', 'socket'] as const)('round-trip values of every kind over %s, large ones by arena block', async (transport) => {
    const { session, serverApp, peer } = await connect();
    const codec = countingMsgpack();
    type Reply = { echo: unknown; block: boolean; shared: boolean };
    const ch: TypedChannel<unknown, Reply> = await session.openChannel<unknown, Reply>({ codec, transport, metadata: { codec: 'msgpack' } });

    for (let i = 0; i < 3; i++) {
      const value = nested(i);
      const reply = await ch.request(value);
      expect(reply.value).toEqual({ echo: value, block: false, shared: false });
      expect((reply.value.echo as ReturnType<typeof nested>).prices).toBeInstanceOf(Float64Array);
      expect((reply.value.echo as ReturnType<typeof nested>).at).toBeInstanceOf(Date);
      reply.release();
    }

    for (let seed = 1; seed <= 3; seed++) {
      const value = large(seed);
      const reply = await ch.request(value);
      expect(reply.message.block).toBeDefined(); // the peer's reply came by block too, decoded in place
      const { echo, block, shared } = reply.value as { echo: ReturnType<typeof large>; block: boolean; shared: boolean };
      reply.release();
      expect(block).toBe(true);
      expect(shared).toBe(false); // the peer's decoded value copied its binary data out of the block (freed at release)
      expect(echo.seed).toBe(seed);
      expect(echo.samples).toBeInstanceOf(Float64Array);
      expect(Buffer.compare(Buffer.from(echo.samples.buffer, echo.samples.byteOffset, echo.samples.byteLength), Buffer.from(value.samples.buffer))).toBe(0);
      expect(echo.note).toBe(value.note);
      expect(Buffer.compare(echo.blob, value.blob)).toBe(0);
    }
    expect(codec.into).toBe(2); // from the second large value on, encoded straight into the block

    // Plain messages, both ways typed: the peer sends the decoded value back.
    const back = once(ch, 'message');
    expect(ch.send(nested(7))).toBe(true);
    const [m] = (await back) as [{ value: { reply: unknown }; release(): void }];
    expect(m.value).toEqual(nested(7));
    m.release();

    ch.close();
    await session.close();
    await peer.kill('SIGTERM');
    expect(await shmObjectsOf(serverApp)).toEqual([]);
  });

  it('raw bytes and a codec of the user\'s own (JSON) use the same API', async () => {
    const { session } = await connect();
    const raw = await session.openChannel<Uint8Array>({ codec: rawCodec, metadata: { codec: 'raw' } });
    const bytes = new Uint8Array(LARGE_VALUE_BYTES * 3).map((_, i) => i * 7);
    for (const value of [new Uint8Array([9, 8, 7]), bytes, bytes]) {
      const reply = await raw.request(value);
      expect(Buffer.compare(reply.value, value)).toBe(0);
      reply.release();
    }
    const json: Codec<unknown> = {
      name: 'json',
      encode: (v) => Buffer.from(JSON.stringify(v)),
      decode: (b) => JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString()) as unknown,
    };
    // The peer speaks msgpack on this channel: a JSON value is not msgpack it can answer, so ask it for raw
    // bytes instead — what matters here is that a codec of one's own encodes and decodes through the channel.
    const mine = await session.openChannel({ codec: json, metadata: { codec: 'raw' } });
    const reply = await mine.request({ a: [1, 'two', { three: 3 }] });
    expect(reply.value).toEqual({ a: [1, 'two', { three: 3 }] });
    reply.release();
    expect(() => session.openChannel({ codec: { name: 'bad' } as unknown as Codec })).toThrow(TypeError); // before anything opens
  });
});
