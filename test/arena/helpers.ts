/** Shared helpers of the arena tests: unique names, leftover checks, child processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, expect } from 'vitest';
import { Arena } from '../../src/arena/index.js';
import { native } from '../../src/native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURE = join(root, 'test', 'fixtures', 'arena-child.ts');

let counter = 0;
/** Prefix of every name a test file creates (unique per process). */
export function namePrefix(tag: string): string {
  return `shmx-arenatest-${tag}-${process.pid}-`;
}
/** A fresh arena name. */
export function uniqueName(tag: string): string {
  return `${namePrefix(tag)}${counter++}`;
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

export type Msg = { t: string; [k: string]: unknown };

/** A child process running test/fixtures/arena-child.ts, talking JSON lines. */
export class Child {
  readonly proc: ChildProcess;
  readonly messages: Msg[] = [];
  private waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  onMessage: ((m: Msg) => void) | undefined;

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], {
      cwd: root,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as Msg;
      this.messages.push(m);
      this.onMessage?.(m);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(m)) return true;
        w.resolve(m);
        return false;
      });
    });
  }

  send(m: object): void {
    this.proc.stdin!.write(`${JSON.stringify(m)}\n`);
  }

  /** Resolves with the first message (already received or future) matching `pred`. */
  waitFor(pred: (m: Msg) => boolean, timeoutMs = 20_000): Promise<Msg> {
    const seen = this.messages.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child: no matching message in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
      this.exited.then(() => setTimeout(() => reject(new Error('child exited')), 50));
    });
  }

  /** SIGKILLs the child and waits until it is gone. */
  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }
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
