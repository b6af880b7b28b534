/** Shared helpers of the arena tests: unique names, leftover checks, child processes. */
import { afterAll, afterEach, expect } from 'vitest';
import { Arena } from '../../src/arena/index.js';
import { native } from '../../src/native.js';
import { Child, type ChildEvent } from '../helpers/child.js';
import { processTag, uniqueObjectName } from '../helpers/names.js';

/** Prefix of every arena name a test file creates with `tag` in this process (names.ts: carries the run tag). */
export function namePrefix(tag: string): string {
  return `shmx.t.arena-${tag}.${processTag}`;
}
/** A fresh arena name (its segments are `<name>.h`, `<name>.d0.<nonce>`, …). */
export function uniqueName(tag: string): string {
  return uniqueObjectName(`arena-${tag}`);
}
/** The name of data segment `index` of arena `name` as /dev/shm lists it (its nonce is random). */
export function dataSegment(name: string, index: number): string {
  const found = native.shmList(`${name}.d${index}.`);
  expect(found).toHaveLength(1);
  return found[0]!;
}
/** Names left in /dev/shm under a prefix. */
export function leftovers(tag: string): string[] {
  return native.shmList(namePrefix(tag));
}
/** Removes everything under a prefix (last-resort cleanup after a failed test). */
export function removeAll(tag: string): void {
  for (const n of leftovers(tag)) native.shmUnlink(n);
}

/** Expects `fn` to throw an error with `code`; returns it. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).name;
  }
  return undefined;
}

export type Msg = ChildEvent;

/** A child process running test/fixtures/arena-child.ts (`<arena name> <mode> [args]`), talking JSON lines. */
export function arenaChild(args: string[]): Child {
  return new Child('arena-child.ts', args);
}

/**
 * Registers the cleanup every arena test file needs: close and unlink the arenas a test opened (push them to
 * `open`), and at the end fail if anything named with `tag` is left in /dev/shm.
 */
export function cleanUpArenas(tag: string, open: Arena[]): void {
  afterEach(() => {
    const all = open.splice(0).reverse(); // openers before creators
    for (const a of all) a.close();
    for (const a of all) Arena.unlink(a.name);
  });
  afterAll(() => {
    const left = leftovers(tag);
    removeAll(tag);
    expect(left).toEqual([]);
  });
}
