/**
 * Helpers for the native-layer tests: unique kernel-object names, real child processes running the fixtures,
 * and bookkeeping that removes every segment and queue a test created.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, expect } from 'vitest';
import { native } from '../../src/native.js';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const childScript = join(root, 'test', 'fixtures', 'native-child.ts');
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

let counter = 0;
/** `shmx.t.<tag>.<n>.<pid>`: unique per process and call, recognisably ours. */
export function uniqueName(tag: string): string {
  counter += 1;
  return `shmx.t.${tag}.${counter}.${process.pid}`;
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
  return readdirSync('/dev/shm').filter((n) => n.startsWith('shmx.t.') && n.endsWith(`.${process.pid}`));
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running child with line-oriented stdout. */
export class Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<ChildResult>;
  private stdout = '';
  private stderr = '';
  private lines: string[] = [];
  private waiters: Array<{ match: (line: string) => boolean; resolve: (line: string) => void }> = [];

  constructor(command: string, args: string[], options: SpawnOptions = {}) {
    // The environment is inherited on purpose: under native/test-asan.sh it carries SHMX_ADDON and LD_PRELOAD.
    this.proc = spawn(command, args, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], ...options });
    let partial = '';
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (chunk: string) => {
      this.stdout += chunk;
      partial += chunk;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        this.onLine(line);
      }
    });
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve, reject) => {
      this.proc.on('error', reject);
      this.proc.on('close', (code, signal) => {
        for (const w of this.waiters) w.resolve(`<exit ${code ?? signal}>`);
        this.waiters = [];
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  private onLine(line: string): void {
    const i = this.waiters.findIndex((w) => w.match(line));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w!.resolve(line);
    } else {
      this.lines.push(line);
    }
  }

  /** Resolves with the first stdout line starting with `prefix` (already printed or still to come). */
  line(prefix: string, timeoutMs = 20_000): Promise<string> {
    const match = (l: string) => l.startsWith(prefix);
    const i = this.lines.findIndex(match);
    if (i >= 0) return Promise.resolve(this.lines.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no line '${prefix}' from child within ${timeoutMs} ms; stderr: ${this.stderr}`));
      }, timeoutMs);
      this.waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          if (l.startsWith('<exit')) reject(new Error(`child exited before '${prefix}': ${l}; stderr: ${this.stderr}`));
          else resolve(l);
        },
      });
    });
  }

  /** Parses the JSON after `prefix ` in the next such line. */
  async json<T>(prefix: string, timeoutMs?: number): Promise<T> {
    const l = await this.line(prefix, timeoutMs);
    return JSON.parse(l.slice(prefix.length).trim()) as T;
  }

  send(line: string): void {
    this.proc.stdin!.write(line + '\n');
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
  }
}

/** `node --import tsx test/fixtures/native-child.ts <role> ...args`. */
export function nodeChild(role: string, args: Array<string | number>, options: SpawnOptions = {}): Child {
  return new Child(process.execPath, ['--import', 'tsx', childScript, role, ...args.map(String)], options);
}

/** The same child, run as user nobody (65534) through setpriv. Needs root. */
export function nobodyChild(role: string, args: Array<string | number>): Child {
  return new Child('setpriv', [
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    process.execPath,
    '--import',
    'tsx',
    childScript,
    role,
    ...args.map(String),
  ]);
}

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
  return new Child('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', shellScript]);
}
