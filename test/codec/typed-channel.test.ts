/**
 * Typed channels (src/codec) between two real processes, over each transport: nested objects, typed arrays,
 * Dates and large values (which travel in an arena block, encoded in place from the second one on) round-trip
 * through a typed peer (test/fixtures/codec-peer.ts) that decodes and encodes them again. On `shm`, small values
 * sent, requested and replied are encoded straight into the ring — with fallbacks (too big for the reservation,
 * a full ring) that still deliver everything, in order.
 */
import { once } from 'node:events';
import { Packr } from 'msgpackr';
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

/** One `encodeInto` call: where it wrote (a block: at least LARGE_VALUE_BYTES; else a ring reservation), and what it said. */
interface IntoCall { shared: boolean; block: boolean; n: number }

/** msgpack, counting how often a value was encoded in place (`into`: into a block) and how often by `encode`. */
function countingMsgpack(): Codec & { into: number; encodes: number; calls: IntoCall[]; inRing(): IntoCall[] } {
  const inner = msgpackCodec();
  const counting = {
    name: 'msgpack', into: 0, encodes: 0, calls: [] as IntoCall[],
    /** Values encoded into a ring reservation, successfully. */
    inRing: () => counting.calls.filter((c) => !c.block && c.n >= 0),
    encode: (v: unknown) => {
      counting.encodes++;
      return inner.encode(v);
    },
    encodeInto: (v: unknown, target: Uint8Array) => {
      const block = target.byteLength >= LARGE_VALUE_BYTES;
      if (block) counting.into++;
      const n = inner.encodeInto!(v, target);
      counting.calls.push({ shared: target.buffer instanceof SharedArrayBuffer, block, n });
      return n;
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

describe('typed channels on shm write small values in place', () => {
  type Echo = { echo: unknown; block: boolean; shared: boolean };

  it('send, request and reply encode into the ring (encodeInto, no encode) and round-trip', async () => {
    const { session } = await connect();
    const codec = countingMsgpack();
    const ch: TypedChannel<unknown, unknown> = await session.openChannel<unknown, unknown>({ codec, transport: 'shm', metadata: { codec: 'msgpack' } });

    // request: the peer answers { echo, block } — block false: the request came inline, through the ring.
    for (let i = 0; i < 3; i++) {
      const reply = await ch.request(nested(i));
      expect(reply.value).toEqual({ echo: nested(i), block: false, shared: false });
      reply.release();
    }
    expect(codec.inRing()).toHaveLength(3);
    expect(codec.calls.every((c) => c.shared)).toBe(true); // a view of shared memory: the ring
    expect(codec.encodes).toBe(0);

    // send: the peer sends the decoded value back.
    const messages: Array<{ value: unknown; isRequest: boolean; reply(v: unknown): boolean; release(): void }> = [];
    let arrived: () => void = () => {};
    ch.on('message', (m) => {
      if (m.isRequest) {
        // reply: the peer asked us (below); the answer is encoded in place too.
        expect(m.reply({ got: m.value })).toBe(true);
        m.release();
        return;
      }
      messages.push(m);
      arrived();
    });
    const next = () => new Promise<void>((resolve) => { arrived = resolve; });
    let got = next();
    expect(ch.send(nested(7))).toBe(true);
    await got;
    expect(messages.shift()!.value).toEqual(nested(7));
    expect(codec.inRing()).toHaveLength(4);
    expect(codec.encodes).toBe(0);

    // reply: `{ ask }` makes the peer request `ask` of us; it reports our answer.
    got = next();
    expect(ch.send({ ask: nested(8) })).toBe(true);
    await got;
    expect(messages.shift()!.value).toEqual({ answered: { got: nested(8) }, block: false });
    expect(codec.inRing()).toHaveLength(6); // the { ask } message and the reply
    expect(codec.calls.every((c) => c.shared)).toBe(true);
    expect(codec.encodes).toBe(0);
    ch.close();
  });

  it('a value that outgrows the reservation is encoded the ordinary way and arrives; the next one fits', async () => {
    const { session } = await connect();
    const codec = countingMsgpack();
    const ch = await session.openChannel<unknown, Echo>({ codec, transport: 'shm', metadata: { codec: 'msgpack' } });
    const small = { a: 1 };
    // Over the first reservation (4 KiB), under LARGE_VALUE_BYTES; binary (msgpackr wants 3 bytes a character of
    // room for a string: a 20 KB string never fits a 64 KiB ring's largest reservation, and goes the ordinary way).
    const bigger = { samples: new Float64Array(2_500).map((_, i) => i / 3) };
    for (const value of [small, bigger, bigger]) {
      const reply = await ch.request(value);
      expect(reply.value).toEqual({ echo: value, block: false, shared: false });
      reply.release();
    }
    // small in place; bigger did not fit (encodeInto said so) and went by encode; the second bigger fit.
    expect(codec.calls.map((c) => c.n >= 0)).toEqual([true, false, true]);
    expect(codec.encodes).toBe(1);
    ch.close();
  });

  it('a full ring: send returns false, later values take the queue, all arrive in order after drain', async () => {
    const { session, peer } = await connect();
    const codec = countingMsgpack();
    const ch = await session.openChannel<unknown, unknown>({ codec, transport: 'shm', metadata: { codec: 'msgpack', hold: true } });
    let sent = 0;
    while (ch.send({ seq: sent++ })) {
      if (sent > 1_000_000) throw new Error('the channel never filled');
    }
    const inPlace = codec.inRing().length;
    expect(inPlace).toBeGreaterThan(0); // the ring filled with values written in place…
    expect(codec.encodes).toBe(sent - inPlace); // …the rest waits in the queue, encoded the ordinary way
    expect(codec.encodes).toBeGreaterThan(0);
    expect(ch.channel.writableNeedDrain).toBe(true);

    const seen: number[] = [];
    let done: () => void = () => {};
    const all = new Promise<void>((resolve) => { done = resolve; });
    const more = 100;
    ch.on('message', (m) => {
      seen.push((m.value as { seq: number }).seq);
      m.release();
      if (seen.length === sent + more) done();
    });
    const drained = once(ch, 'drain');
    peer.send('read');
    // The peer reads and the ring empties, while this loop holds our event loop: the queue cannot move yet.
    const deadline = Date.now() + 30_000;
    while (ch.channel.inspect().ringFill!.out > 0.25) {
      if (Date.now() > deadline) throw new Error('the peer never read');
    }
    // The ring has room, but values queued before wait: these must go behind them, not into the ring.
    for (let i = 0; i < 10; i++) ch.send({ seq: sent++ });
    expect(codec.inRing()).toHaveLength(inPlace);
    await drained;
    // Room again: these go in place once the queue is empty — never before what waits.
    for (let i = 0; i < more; i++) ch.send({ seq: sent + i });
    await all;
    expect(seen).toEqual(Array.from({ length: sent + more }, (_, i) => i));
    // The peer read everything: the ring is empty again, and the next value goes in place.
    const before = codec.inRing().length;
    const reply = await ch.request({ last: true });
    expect(reply.value).toEqual({ echo: { last: true }, block: false, shared: false });
    reply.release();
    expect(codec.inRing()).toHaveLength(before + 1);
    ch.close();
  }, 60_000);

  it('requests written in place still time out, abort, and refuse an aborted signal without sending', async () => {
    const { session } = await connect();
    const codec = countingMsgpack();
    const ch = await session.openChannel<unknown, unknown>({ codec, transport: 'shm', metadata: { codec: 'msgpack', hold: true } });

    await expect(ch.request({ n: 1 }, { timeoutMs: 100 })).rejects.toMatchObject({ name: 'TimeoutError' });
    const controller = new AbortController();
    const aborted = ch.request({ n: 2 }, { signal: controller.signal });
    await Promise.resolve(); // the request is out (in the ring) before the abort
    expect(codec.inRing()).toHaveLength(2);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    expect(ch.channel.pendingRequests).toBe(0);
    expect(codec.encodes).toBe(0);

    // An aborted signal: encoded in place, then refused; nothing sent, nothing left reserved.
    const before = ch.channel.counters.messagesOut;
    await expect(ch.request({ n: 3 }, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    await expect(ch.request({ n: 4 }, { timeoutMs: -1 })).rejects.toThrow(RangeError);
    expect(ch.channel.counters.messagesOut).toBe(before);
    expect(ch.channel.pendingRequests).toBe(0);
    const view = ch.channel.reserve(8); // no reservation left open
    expect(view).toBeDefined();
    ch.channel.cancelReserve();
    expect(ch.send({ n: 5 })).toBe(true);
    expect(ch.channel.counters.messagesOut).toBe(before + 1);
    ch.close();
  });
});

describe('msgpack encodeInto', () => {
  it('leaves msgpackr on a buffer of its own: no later pack, of any Packr, writes into the target', () => {
    const codec = msgpackCodec();
    const target = new Uint8Array(new SharedArrayBuffer(16 * 1024), 64, 8 * 1024); // as a ring reservation
    const n = codec.encodeInto!({ a: 1, s: 'x' }, target);
    expect(n).toBeGreaterThan(0);
    expect(codec.decode(target.subarray(0, n), true)).toEqual({ a: 1, s: 'x' });
    const before = Buffer.from(target); // a copy
    // msgpackr's buffer and position are shared by every Packr of the process.
    const encoded = codec.encode({ b: 2 });
    const other = new Packr().pack({ c: 'y'.repeat(100) });
    expect(encoded.buffer).not.toBe(target.buffer);
    expect(other.buffer).not.toBe(target.buffer);
    expect(Buffer.compare(Buffer.from(target), before)).toBe(0);
    // An earlier result stays valid across encodeInto calls (the spare is renewed once a pack used it).
    const kept = Buffer.from(codec.encode({ keep: 1 }));
    const keptView = codec.encode({ keep: 1 });
    codec.encodeInto!({ z: 9 }, target);
    codec.encode({ other: 'value that would overwrite' });
    expect(Buffer.compare(Buffer.from(keptView), kept)).toBe(0);
  });
});
