/**
 * Helpers for the native-layer tests: unique kernel-object names, real child processes running the fixtures,
 * and bookkeeping that removes every segment and queue a test created.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, expect } from 'vitest';
import { native } from '../../src/native.js';
import { AS_NOBODY, Child, type ChildOptions, type ChildResult, repoRoot } from '../helpers/child.js';
import { isThisProcess, uniqueObjectName } from '../helpers/names.js';

export const root = repoRoot;
export const childScript = join(root, 'test', 'fixtures', 'native-child.ts');
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** `shmx.t.<tag>.<unique tag>` (test/helpers/names.ts): unique per run, process and call, seen by the leak gate. */
export function uniqueName(tag: string): string {
  return uniqueObjectName(tag);
}

/** Tracks created segments and queues; `removeAll()` unlinks whatever is still there. */
export class Created {
  private readonly segments = new Set<string>();
  private readonly queues = new Set<string>();
  private readonly everSegments = new Set<string>();
  private readonly everQueues = new Set<string>();

  segment(tag: string): string {
    const name = uniqueName(tag);
    this.segments.add(name);
    this.everSegments.add(name);
    return name;
  }

  queue(tag: string): string {
    const name = uniqueName(tag);
    this.queues.add(name);
    this.everQueues.add(name);
    return name;
  }

  /** Names handed out that still exist as a segment or a queue (should be none after removeAll). */
  leftovers(): string[] {
    const left: string[] = [];
    for (const name of this.everSegments) if (existsSync(`/dev/shm/${name}`)) left.push(name);
    for (const name of this.everQueues) {
      try {
        native.mqOpen(name).close();
        left.push(name);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw err;
      }
    }
    return left;
  }

  removeAll(): void {
    for (const name of this.segments) native.shmUnlink(name);
    for (const name of this.queues) native.mqUnlink(name);
    this.segments.clear();
    this.queues.clear();
  }
}

/** Names of this process's test objects still in /dev/shm. */
export function leftoverSegments(): string[] {
  return readdirSync('/dev/shm').filter((n) => n.startsWith('shmx.t.') && isThisProcess(n));
}

/** `node --import tsx test/fixtures/native-child.ts <role> ...args`. */
export function nodeChild(role: string, args: Array<string | number>, options: ChildOptions = {}): Child {
  return new Child('native-child.ts', [role, ...args.map(String)], options);
}

/** The same child, run as user nobody (65534) through setpriv. Needs root. */
export function nobodyChild(role: string, args: Array<string | number>): Child {
  return nodeChild(role, args, { wrapper: AS_NOBODY });
}

export type { ChildResult };

/** Asserts a child ended with exit code 0, showing its stderr otherwise. */
export function expectClean(result: ChildResult): void {
  if (result.code !== 0) {
    throw new Error(`child failed: code ${result.code} signal ${result.signal}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}

/** utime + stime of a process in clock ticks (/proc/<pid>/stat fields 14 and 15). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return Number(fields[11]) + Number(fields[12]);
}

export function commandExists(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => existsSync(join(dir, command)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What `fn` throws; fails the test when it does not throw. */
export function thrown(fn: () => unknown): Error & Record<string, unknown> {
  try {
    fn();
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  throw new Error('expected a throw');
}

/** A registry of what this test file creates, removed after each test and checked at the end. */
export function trackCreated(): Created {
  const created = new Created();
  afterEach(() => created.removeAll());
  afterAll(() => {
    expect(created.leftovers()).toEqual([]);
    expect(leftoverSegments()).toEqual([]);
  });
  return created;
}

/** Runs `shellScript` in a private mount namespace (root only): mounts made there never reach the host. */
export function inPrivateMountNamespace(shellScript: string): Child {
  return Child.command('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', shellScript]);
}
