/**
 * Fifo (src/fifo.ts): the queue behind a channel's sends and inbox. Order, growth across the wrap-around point,
 * removal of a cancelled entry (a tombstone, skipped), and no reference kept to what left.
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

  it('removes from any position across the wrap-around point, as an array splice would', () => {
    for (let at = 0; at < 12; at++) {
      const q = new Fifo<number>();
      const model: number[] = [];
      for (let i = 0; i < 6; i++) q.shift(); // nothing to shift: still empty
      for (let i = 0; i < 10; i++) q.push(i);
      for (let i = 0; i < 7; i++) q.shift(); // the head is near the end of the ring now
      for (let i = 10; i < 22; i++) q.push(i); // wraps around, then grows
      model.push(...Array.from({ length: 15 }, (_, i) => i + 7));
      const target = model[at]!;
      expect(q.remove(target)).toBe(true);
      model.splice(at, 1);
      q.push(99);
      model.push(99);
      expect(q.takeAll()).toEqual(model);
    }
  });

  it('matches an array through a long run of mixed pushes, shifts and removals', () => {
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const q = new Fifo<number>();
    const model: number[] = [];
    for (let step = 0, next = 0; step < 20_000; step++) {
      const op = random(10);
      if (op < 5) {
        q.push(next);
        model.push(next++);
      } else if (op < 8) {
        expect(q.shift()).toBe(model.shift());
      } else if (model.length > 0) {
        const victim = model[random(model.length)]!;
        expect(q.remove(victim)).toBe(true);
        model.splice(model.indexOf(victim), 1);
      }
      expect(q.length).toBe(model.length);
      expect(q.peek()).toBe(model[0]);
    }
    expect(q.takeAll()).toEqual(model);
  });

  it('keeps no reference to what left it', () => {
    const q = new Fifo<object>();
    const first = {};
    const middle = {};
    q.push(first);
    q.push(middle);
    q.push({});
    q.shift();
    q.remove(middle);
    const slots = (q as unknown as { items: unknown[] }).items;
    expect(slots.includes(first)).toBe(false);
    expect(slots.includes(middle)).toBe(false);
    expect(slots.filter((x) => typeof x === 'object')).toHaveLength(1);
  });
});
