/**
 * A first-in first-out queue whose `push` and `shift` cost the same at any length.
 *
 * `Array.prototype.shift` is cheap only while V8 can move the array's start in place; once the backing store is
 * large (tens of thousands of elements: it then lives in large-object space) every shift moves all the elements
 * that remain. A channel whose sends queued up behind a slow peer then spent more time dequeuing the more it was
 * behind: an mq sender 87 000 messages behind spent most of its CPU in that move, and never caught up.
 *
 * A removed entry (a send cancelled while queued) leaves a tombstone in its slot, skipped when it reaches the
 * front: removing costs one search and no move, so cancelling a whole backlog is not quadratic.
 */

/** Marks the slot of a removed entry. */
const REMOVED: unique symbol = Symbol('removed');

export class Fifo<T> {
  private items: Array<T | typeof REMOVED | undefined> = new Array<T | typeof REMOVED | undefined>(8);
  /** Index of the first slot in use; slots in use are head, head+1, … (mod capacity). */
  private head = 0;
  /** Slots in use, tombstones included. */
  private used = 0;
  /** Entries, tombstones not included. */
  private live = 0;

  get length(): number {
    return this.live;
  }

  push(item: T): void {
    if (this.used === this.items.length) this.grow();
    this.items[(this.head + this.used) % this.items.length] = item;
    this.used++;
    this.live++;
  }

  /** Removes and returns the first entry; undefined when empty. */
  shift(): T | undefined {
    this.skipRemoved();
    if (this.live === 0) return undefined;
    const item = this.items[this.head] as T;
    this.free();
    this.live--;
    return item;
  }

  /** The first entry, left in place; undefined when empty. */
  peek(): T | undefined {
    this.skipRemoved();
    return this.live === 0 ? undefined : (this.items[this.head] as T);
  }

  /** Removes `item` wherever it is; false when absent. */
  remove(item: T): boolean {
    this.skipRemoved();
    if (this.live > 0 && this.items[this.head] === item) {
      this.shift();
      return true;
    }
    const i = this.items.indexOf(item); // free slots hold undefined: any match is an entry
    if (i < 0) return false;
    this.items[i] = REMOVED;
    this.live--;
    return true;
  }

  /** Removes every entry and returns them in order. */
  takeAll(): T[] {
    const all: T[] = [];
    while (this.live > 0) all.push(this.shift()!);
    this.skipRemoved(); // tombstones behind the last entry
    return all;
  }

  /** Frees the slots of removed entries at the front. */
  private skipRemoved(): void {
    while (this.used > 0 && this.items[this.head] === REMOVED) this.free();
  }

  /** Frees the front slot (no reference kept to what left). */
  private free(): void {
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.used--;
  }

  private grow(): void {
    const all = this.takeAll();
    this.items = new Array<T | typeof REMOVED | undefined>(Math.max(8, all.length * 2));
    this.head = 0;
    this.used = 0;
    this.live = 0;
    for (const x of all) this.push(x);
  }
}
