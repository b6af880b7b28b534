/**
 * The one peer-process harness of the suite: starts `peer.js` in a fresh process for a role, talks to it over
 * the IPC channel (numbered commands, one reply each), and keeps track of everything the run creates — peer
 * processes, raw segments, the run directory, the server apps whose leftovers a sweep removes — so that it is
 * all gone at the end, also after an error or SIGINT/SIGTERM.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { sweepStale } from '../dist/index.js';
import { native } from '../dist/native.js';

/** A control message from the bench to a peer (`ctl` tells it apart from a payload on the IPC path). */
export interface Command {
  ctl: 'cmd';
  id: number;
  cmd: string;
  arg?: unknown;
}
/** A peer's answer. */
export type Reply = { ctl: 'reply'; id: number; ok: true; value?: unknown } | { ctl: 'reply'; id: number; ok: false; error: string };
/** A peer's first message. */
export interface Ready {
  ctl: 'ready';
  info?: unknown;
}

export function isControl(m: unknown): m is { ctl: string } {
  return typeof m === 'object' && m !== null && typeof (m as { ctl?: unknown }).ctl === 'string';
}

// ------------------------------------------------------------------------------------------------ the run

let serial = 0;
const tag = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
const children = new Set<ChildProcess>();
const segments = new Set<string>();
const queues = new Set<string>();
const serverApps = new Set<string>();
let runDirectory: string | undefined;

/** A name unique to this run, for apps, segments, doorbells and sockets (≤ 32 bytes, app-name safe). */
export function uniqueName(prefix: string): string {
  return `${prefix}${tag}${(++serial).toString(36)}`.toLowerCase();
}

/** The run's private directory (sockets, run directories of servers). */
export function runDir(): string {
  runDirectory ??= mkdtempSync(join(tmpdir(), 'shmx-bench-'));
  return runDirectory;
}

/** A universe definition with one server app and one client app, both new; their leftovers are swept at the end. */
export function newApps(): { definition: { apps: Array<{ name: string }>; servers: Array<{ name: string; acceptedClients: string[]; runDirectory: string }> }; serverApp: string; clientApp: string } {
  const serverApp = uniqueName('bs');
  const clientApp = uniqueName('bc');
  serverApps.add(serverApp);
  return {
    definition: { apps: [{ name: clientApp }], servers: [{ name: serverApp, acceptedClients: [clientApp], runDirectory: runDir() }] },
    serverApp,
    clientApp,
  };
}

/** A raw shared segment (for the floors), removed at the end of the run at the latest. */
export function rawSegment(bytes: number): { name: string; buffer: SharedArrayBuffer; remove(): void } {
  const name = `shmxbench.${uniqueName('r')}`;
  native.shmCreate(name, bytes, 0o600);
  segments.add(name);
  return {
    name,
    buffer: native.shmMap(name),
    remove() {
      native.shmUnlink(name);
      segments.delete(name);
    },
  };
}

/** A name for a raw message queue (the MQ floor); the queue is unlinked at the end of the run at the latest. */
export function rawQueueName(): string {
  const name = `shmxbench.${uniqueName('q')}`;
  queues.add(name);
  return name;
}

export function removeRawQueue(name: string): void {
  native.mqUnlink(name);
  queues.delete(name);
}

/** Remembers a server app whose stale objects the final sweep removes (its creators must be gone by then). */
export function trackServerApp(name: string): void {
  serverApps.add(name);
}

/**
 * Removes what the run left: kills peers still running, unlinks raw segments, sweeps the run's server apps
 * (their creators are dead by now, so whatever is left is stale) and removes the run directory. Returns the
 * names it had to remove — a clean run returns none.
 */
export async function cleanupRun(): Promise<string[]> {
  const leftovers: string[] = [];
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  }
  children.clear();
  for (const name of segments) {
    if (native.shmUnlink(name)) leftovers.push(name);
  }
  segments.clear();
  for (const name of queues) {
    if (native.mqUnlink(name)) leftovers.push(name);
  }
  queues.clear();
  for (const app of serverApps) {
    const report = sweepStale({ serverApp: app, logger: silentLogger });
    leftovers.push(...report.removed.map((r) => r.name));
  }
  if (runDirectory) rmSync(runDirectory, { recursive: true, force: true });
  runDirectory = undefined;
  return leftovers;
}

/** Cleans up and leaves on SIGINT/SIGTERM. */
export function cleanupOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: removing what the run created…\n`);
      void cleanupRun().finally(() => process.exit(130));
    });
  }
}

const noop = () => {};
/** A pino-compatible logger that says nothing (the sweep's info lines would garble the progress line). */
export const silentLogger = {
  level: 'silent',
  fatal: noop,
  error: noop,
  warn: noop,
  info: noop,
  debug: noop,
  trace: noop,
  silent: noop,
  child: () => silentLogger,
} as never;

/** Values keyed by a number (a session number), each taken once: at once when already put, else when it is. */
export class Keyed<T> {
  private readonly values = new Map<number, T>();
  private readonly waiters = new Map<number, (v: T) => void>();
  put(n: number, v: T): void {
    const w = this.waiters.get(n);
    if (w) {
      this.waiters.delete(n);
      w(v);
    } else this.values.set(n, v);
  }
  take(n: number): Promise<T> {
    if (this.values.has(n)) {
      const v = this.values.get(n)!;
      this.values.delete(n);
      return Promise.resolve(v);
    }
    return new Promise((resolve) => this.waiters.set(n, resolve));
  }
}

// ------------------------------------------------------------------------------------------------- a peer

const PEER_SCRIPT = fileURLToPath(new URL('./peer.js', import.meta.url));

/** A peer process running one role of `peer.ts`. */
export class Peer {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** What the role told the bench when it was ready (socket paths, doorbell names …). */
  info: unknown;

  private constructor(
    readonly role: string,
    readonly process: ChildProcess,
  ) {
    process.on('message', (m: unknown) => {
      if (!isControl(m) || m.ctl !== 'reply') return;
      const r = m as Reply;
      const w = this.waiting.get(r.id);
      if (!w) return;
      this.waiting.delete(r.id);
      if (r.ok) w.resolve(r.value);
      else w.reject(new Error(`peer ${role}: ${r.error}`));
    });
    process.once('exit', (code, signal) => {
      for (const w of this.waiting.values()) w.reject(new Error(`peer ${role} exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  /**
   * Starts a peer for `role` with `config` (JSON) and waits until it is ready. `serialization` is the IPC
   * channel's ('advanced' unless a path measures 'json').
   */
  static async start(role: string, config: unknown, serialization: 'json' | 'advanced' = 'advanced'): Promise<Peer> {
    const child = fork(PEER_SCRIPT, [role, JSON.stringify(config ?? null)], {
      serialization,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, SHMX_LOG_LEVEL: process.env.SHMX_LOG_LEVEL ?? 'silent' },
    });
    children.add(child);
    const peer = new Peer(role, child);
    peer.info = await new Promise<unknown>((resolve, reject) => {
      const onMessage = (m: unknown) => {
        if (isControl(m) && m.ctl === 'ready') {
          child.off('message', onMessage);
          resolve((m as Ready).info);
        }
      };
      child.on('message', onMessage);
      child.once('exit', (code, signal) => reject(new Error(`peer ${role} exited (${code ?? signal}) before it was ready`)));
    });
    return peer;
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** Sends a command to the role (or to the peer's own handler: `cpu`, `stop`). */
  request<T>(cmd: string, arg?: unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.process.send({ ctl: 'cmd', id, cmd, arg } satisfies Command);
    });
  }

  /** The peer's process.cpuUsage() (µs). */
  cpu(): Promise<NodeJS.CpuUsage> {
    return this.request('cpu');
  }

  /** SIGKILL, then waits for the exit (what a crash looks like to the other side). */
  async kill(): Promise<void> {
    const child = this.process;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    children.delete(child);
  }

  /** Graceful: the role closes what it holds and the process exits; SIGKILL after `ms`. Throws on a bad exit. */
  async stop(ms = 10_000): Promise<void> {
    const child = this.process;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      try {
        await Promise.race([this.request('stop').catch(() => {}), exited]);
        await exited;
      } finally {
        clearTimeout(timer);
      }
    }
    children.delete(child);
    if (child.exitCode !== 0) throw new Error(`peer ${this.role} exited with ${child.exitCode ?? child.signalCode}`);
  }
}

// ---------------------------------------------------------------------------------------------- progress

let lastProgress = 0;
/** One progress line on stderr, rewritten in place on a terminal (one line per step otherwise). */
export function progress(text: string, force = false): void {
  const now = Date.now();
  if (!force && now - lastProgress < 200 && process.stderr.isTTY) return;
  lastProgress = now;
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text.slice(0, (process.stderr.columns ?? 120) - 1)}`);
  else process.stderr.write(`${text}\n`);
}

/** Ends the progress line. */
export function progressDone(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}\n`);
  else process.stderr.write(`${text}\n`);
}
