/**
 * Fifo (src/fifo.ts): the queue behind a channel's sends and inbox. Order, growth across the wrap-around point,
 * removal of a cancelled entry, and no reference kept to what left.
 */
import { describe, expect, it } from 'vitest';
import { Fifo } from '../src/fifo.js';

describe('Fifo', () => {
  it('keeps order while it grows and wraps around', () => {
    const q = new Fifo<number>();
    const out: number[] = [];
    let next = 0;
    // Interleave pushes and shifts so that the head moves around the ring before each growth.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < round + 3; i++) q.push(next++);
      for (let i = 0; i < round; i++) out.push(q.shift()!);
    }
    expect(q.peek()).toBe(out.length);
    while (q.length > 0) out.push(q.shift()!);
    expect(out).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(q.shift()).toBeUndefined();
    expect(q.peek()).toBeUndefined();
  });

  it('removes an entry from the middle, and takes all in order', () => {
    const q = new Fifo<string>();
    for (const s of ['a', 'b', 'c', 'd']) q.push(s);
    q.shift();
    q.push('e');
    expect(q.remove('c')).toBe(true);
    expect(q.remove('x')).toBe(false);
    expect(q.takeAll()).toEqual(['b', 'd', 'e']);
    expect(q.length).toBe(0);
  });

  it('keeps no reference to what left it', () => {
    const q = new Fifo<object>();
    const first = {};
    q.push(first);
    q.push({});
    q.shift();
    const slots = (q as unknown as { items: unknown[] }).items;
    expect(slots.includes(first)).toBe(false);
  });
});
