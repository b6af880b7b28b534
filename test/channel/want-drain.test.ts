/**
 * The want-drain hand-shake of one ring, step by step in plain SharedArrayBuffer memory (the interleavings the
 * wake-up model docs/model/wakeup.pml explores, replayed on the real code): a producer refused a big record
 * while the ring is full of small ones must be woken once there is room for *that* record — not before, and
 * never forgotten.
 */
import { describe, expect, it } from 'vitest';
import { ringPair } from '../helpers/ring-pair.js';

const CAPACITY = 4096;
const W_WANT_DRAIN = 4;

function pair() {
  const { words, writer, reader, wakes } = ringPair(CAPACITY);
  return { words, writer, reader, wakes: () => wakes.readerRings };
}

const small = new Uint8Array(52); // a 64-byte record
const big = new Uint8Array(2000);
const nothing = () => {};

/** Fills the ring with small records, then has a big one refused. */
function fillThenRefuseBig(p: ReturnType<typeof pair>): number {
  let n = 0;
  while (p.writer.write(1, 0, small)) n++;
  expect(p.writer.write(1, 0, big)).toBe(false);
  return n;
}

describe('want-drain', () => {
  it('the consumer wakes the producer only once the refused record fits, and exactly once', () => {
    const p = pair();
    const n = fillThenRefuseBig(p);
    expect(Atomics.load(p.words, W_WANT_DRAIN)).toBeGreaterThan(64); // how much room the big record needs
    let read = 0;
    while (p.wakes() === 0) {
      expect(p.reader.read(1, nothing)).toBe(1);
      read++;
      if (p.wakes() === 0) expect(p.writer.writable).toBe(false);
    }
    expect(read).toBeGreaterThan(1); // one small record's room was not enough
    expect(read).toBeLessThan(n);
    expect(p.writer.writable).toBe(true);
    expect(p.writer.write(1, 0, big)).toBe(true);
    p.reader.read(1000, nothing);
    expect(p.wakes()).toBe(1);
  });

  it('a producer woken before there is room asks again, so the consumer\'s later reads still wake it', () => {
    const p = pair();
    fillThenRefuseBig(p);
    // A consumer that grants the request after one small read (as the protocol once did): the producer,
    // woken, finds no room for its record ...
    expect(p.reader.read(1, nothing)).toBe(1);
    Atomics.store(p.words, W_WANT_DRAIN, 0);
    expect(p.writer.writable).toBe(false);
    // ... and has asked again: reading the rest wakes it.
    expect(Atomics.load(p.words, W_WANT_DRAIN)).toBeGreaterThan(0);
    p.reader.read(1000, nothing);
    expect(p.wakes()).toBe(1);
    expect(p.writer.writable).toBe(true);
  });

  it('a long batch wakes a waiting producer as soon as half the ring is free, not at its end', () => {
    const p = pair();
    let n = 0;
    while (p.writer.write(1, 0, small)) n++;
    expect(p.writer.write(1, 0, small)).toBe(false); // the producer waits for one record's room
    const wakesAt: number[] = [];
    expect(p.reader.read(1000, () => wakesAt.push(p.wakes()))).toBe(n);
    // Not after one record's room (a wake-up per record), and before the batch ended: while half was left.
    const first = wakesAt.indexOf(1);
    expect(first).toBeGreaterThanOrEqual(n / 2);
    expect(first).toBeLessThan(n - n / 4);
    expect(p.wakes()).toBe(1);
    expect(p.writer.writable).toBe(true);
  });

  it('a request more than the ring holds (a hostile producer) is never granted', () => {
    const p = pair();
    Atomics.store(p.words, W_WANT_DRAIN, CAPACITY + 1);
    p.writer.write(1, 0, small);
    p.reader.read(10, nothing);
    Atomics.store(p.words, W_WANT_DRAIN, -5);
    p.writer.write(1, 0, small);
    p.reader.read(10, nothing);
    expect(p.wakes()).toBe(0);
  });
});
