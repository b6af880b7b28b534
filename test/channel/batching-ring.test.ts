/**
 * Batching and zero-copy writes on one shm ring pair, in plain SharedArrayBuffer memory (the same code the
 * channel runs over the session arena): corked writes are published together with one wake of the peer;
 * reserve/commit writes a record in place; a reservation that does not fit asks for room like a refused write.
 * The real-process side of the same behaviour is in batching.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { ShmTransport } from '../../src/channel/shm-transport.js';
import { ringPair } from '../helpers/ring-pair.js';

const CAPACITY = 4096;
const W_WRITE = 2;
const W_WANT_DRAIN = 4;

const pair = () => ringPair(CAPACITY);

function readAll(reader: ShmTransport): Array<{ tag: number; requestId: number; body: number[] }> {
  const got: Array<{ tag: number; requestId: number; body: number[] }> = [];
  reader.read(1000, (tag, requestId, body) => got.push({ tag, requestId, body: [...body] }));
  return got;
}

describe('corked writes', () => {
  it('are invisible to the reader until uncork, then all arrive with one wake of the peer', () => {
    const { words, writer, reader, wakes } = pair();
    writer.cork();
    for (let i = 0; i < 3; i++) expect(writer.write(1, i, Uint8Array.of(i, i))).toBe(true);
    expect(Atomics.load(words, W_WRITE)).toBe(0); // nothing published
    expect(reader.readable).toBe(false);
    expect(wakes.writer).toBe(0);
    writer.uncork();
    expect(wakes.writer).toBe(1);
    expect(readAll(reader).map((r) => r.requestId)).toEqual([0, 1, 2]);
    // Uncorked, each write wakes (the wake-up decides whether to ring).
    writer.write(1, 9, Uint8Array.of(9));
    expect(wakes.writer).toBe(2);
  });

  it('a batch that fills the ring publishes what fits before asking for room, so the request is answered', () => {
    const { words, writer, reader, wakes } = pair();
    writer.cork();
    let sent = 0;
    while (writer.write(1, sent, new Uint8Array(200))) sent++;
    expect(sent).toBeGreaterThan(0);
    // The refused record asked for room, and what was written before it is visible to the reader.
    expect(Atomics.load(words, W_WANT_DRAIN)).toBeGreaterThan(0);
    expect(Atomics.load(words, W_WRITE)).not.toBe(0);
    writer.uncork();
    expect(readAll(reader)).toHaveLength(sent);
    expect(wakes.readerRings).toBe(1); // the reader made room and rang the waiting writer
    expect(writer.writable).toBe(true);
  });
});

describe('reserve and commit', () => {
  it('hand out a view of the ring itself; commit sends the bytes written there, no copy', () => {
    const { buffer, writer, reader, wakes } = pair();
    const view = writer.reserve(100)!;
    expect(view.buffer).toBe(buffer);
    expect(view.byteLength).toBe(100);
    view.set([7, 8, 9]);
    expect(reader.readable).toBe(false);
    writer.commit(5, 42, 3);
    expect(wakes.writer).toBe(1);
    expect(readAll(reader)).toEqual([{ tag: 5, requestId: 42, body: [7, 8, 9] }]);
  });

  it('wrap past the end of the ring with every byte intact', () => {
    const { writer, reader } = pair();
    for (let round = 0; round < 40; round++) {
      const size = 300 + round * 7;
      const view = writer.reserve(size + 50)!;
      expect(view).toBeDefined();
      for (let i = 0; i < size; i++) view[i] = (round + i) & 0xff;
      writer.commit(1, round, size);
      const [r] = readAll(reader);
      expect(r!.requestId).toBe(round);
      expect(r!.body).toEqual(Array.from({ length: size }, (_, i) => (round + i) & 0xff));
    }
  });

  it('one at a time: writes throw EBUSY while a reservation is open; cancel gives it up', () => {
    const { writer, reader } = pair();
    writer.reserve(10);
    expect(() => writer.write(1, 0, Uint8Array.of(1))).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(() => writer.reserve(10)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(() => writer.commit(1, 0, 11)).toThrow(RangeError);
    writer.cancelReserve();
    expect(() => writer.commit(1, 0, 1)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(writer.write(1, 3, Uint8Array.of(3))).toBe(true);
    expect(readAll(reader)).toEqual([{ tag: 1, requestId: 3, body: [3] }]);
  });

  it('a reservation that does not fit is refused and asks for room; the reader\'s drain answers it', () => {
    const { words, writer, reader, wakes } = pair();
    while (writer.write(1, 0, new Uint8Array(500)));
    Atomics.store(words, W_WANT_DRAIN, 0); // forget the refused write's request: the reservation must ask itself
    expect(writer.reserve(1500)).toBeUndefined();
    expect(Atomics.load(words, W_WANT_DRAIN)).toBeGreaterThan(0);
    readAll(reader);
    expect(wakes.readerRings).toBe(1);
    expect(writer.writable).toBe(true);
    expect(writer.reserve(1500)).toBeDefined();
  });
});
