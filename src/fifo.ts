/**
 * A first-in first-out queue whose `push` and `shift` cost the same at any length.
 *
 * `Array.prototype.shift` is cheap only while V8 can move the array's start in place; once the backing store is
 * large (tens of thousands of elements: it then lives in large-object space) every shift moves all the elements
 * that remain. A channel whose sends queued up behind a slow peer then spent more time dequeuing the more it was
 * behind: an mq sender 87 000 messages behind spent most of its CPU in that move, and never caught up.
 */
export class Fifo<T> {
  private items: Array<T | undefined> = new Array<T | undefined>(8);
  /** Index of the first item; items are at head, head+1, … (mod capacity). */
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) % this.items.length] = item;
    this.count++;
  }

  /** Removes and returns the first item; undefined when empty. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined; // no reference kept to what left
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    return item;
  }

  /** The first item, left in place; undefined when empty. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  /** Removes `item` wherever it is (a linear search: for the rare cancelled entry). False when absent. */
  remove(item: T): boolean {
    const all = this.takeAll();
    const i = all.indexOf(item);
    if (i >= 0) all.splice(i, 1);
    for (const x of all) this.push(x);
    return i >= 0;
  }

  /** Removes every item and returns them in order. */
  takeAll(): T[] {
    const all: T[] = [];
    for (let n = this.count; n > 0; n--) all.push(this.shift()!);
    return all;
  }

  private grow(): void {
    const all = this.takeAll();
    this.items = new Array<T | undefined>(all.length * 2);
    this.head = 0;
    for (const x of all) this.push(x);
  }
}
