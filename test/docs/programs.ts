/**
 * The complete programs of the docs, and a way to run one as real processes. A fenced `ts` block whose first
 * line is a file-name comment (`// server.ts`) is a file of its document's program; blocks without one are
 * fragments. Programs run in a private network namespace (`unshare --net`, clients join it with `nsenter`):
 * the server's instance lock and the channels' doorbells live in the abstract socket namespace, so the same
 * program run elsewhere on the machine at the same time (another test, another checkout) cannot collide.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface CodeBlock {
  lang: string;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The file name of the first-line comment, for blocks that are files of a program. */
  file: string | undefined;
}

export function codeBlocks(markdownPath: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = readFileSync(markdownPath, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    const file = /^\/\/ ([\w.-]+\.ts)$/.exec(body[0] ?? '')?.[1];
    blocks.push({ lang: open[1]!, code: `${body.join('\n')}\n`, line: start + 1, file });
  }
  return blocks;
}

/** File name → source of every program file in a document. */
export function programFiles(markdownPath: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const block of codeBlocks(markdownPath)) {
    if (block.file === undefined) continue;
    if (files.has(block.file)) throw new Error(`${markdownPath}:${block.line}: ${block.file} is defined twice`);
    files.set(block.file, block.code);
  }
  return files;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface PairOptions {
  cwd: string;
  /** argv before the program file, e.g. [node, '--import', 'tsx']. */
  command: string[];
  env: NodeJS.ProcessEnv;
  server: string;
  /** Run one after the other, each to its end, while the server runs. */
  clients: string[];
  /** Waits for this on the server's stdout before starting the clients (else the clients must retry). */
  serverReady?: RegExp;
  /** How the server is asked to stop. */
  stop: NodeJS.Signals;
  timeoutMs?: number;
}

/** Absolute paths: the consumer test runs with a PATH holding only node and npm. */
const UNSHARE = '/usr/bin/unshare';
const NSENTER = '/usr/bin/nsenter';

// A test that times out abandons its runPair; the processes it started must not outlive the test process.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function start(argv: string[], cwd: string, env: NodeJS.ProcessEnv): { child: ChildProcess; exit: Promise<Exit> } {
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<Exit>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.once('error', (err) => resolve({ code: null, signal: null, stdout, stderr: `${stderr}${err.message}` }));
  });
  return { child, exit };
}

function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what()} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Starts the server program, runs each client program to its end, then stops the server with `stop` and waits
 * for it. Returns every process's output and the pids (kernel object names carry them).
 */
export async function runPair(options: PairOptions): Promise<{ server: Exit; clients: Exit[]; pids: number[]; before: Set<string> }> {
  // What exists already is not this run's, even where a reused pid matches (stale objects of a crashed run).
  const before = new Set(readdirSync('/dev/shm'));
  const timeoutMs = options.timeoutMs ?? 30_000;
  const server = start([UNSHARE, '--net', '--', ...options.command, options.server], options.cwd, options.env);
  const pids = [server.child.pid!];
  const running = [server.child];
  try {
    if (options.serverReady) {
      const ready = options.serverReady;
      await within(
        new Promise<void>((resolve, reject) => {
          let seen = '';
          server.child.stdout!.on('data', (d: Buffer) => {
            seen += d.toString();
            if (ready.test(seen)) resolve();
          });
          void server.exit.then((e) => reject(new Error(`server exited early: ${JSON.stringify(e)}`)));
        }),
        timeoutMs,
        () => `server ${options.server} readiness`,
      );
    }
    const clients: Exit[] = [];
    for (const file of options.clients) {
      const netns = `--net=/proc/${server.child.pid}/ns/net`;
      const client = start([NSENTER, netns, '--', ...options.command, file], options.cwd, options.env);
      pids.push(client.child.pid!);
      running.push(client.child);
      clients.push(await within(client.exit, timeoutMs, () => `client ${file}`));
    }
    server.child.kill(options.stop);
    const serverExit = await within(server.exit, timeoutMs, () => `server ${options.server} after ${options.stop}`);
    return { server: serverExit, clients, pids, before };
  } finally {
    for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** shmx objects in /dev/shm that name one of these processes as their creator. */
export function objectsOf(run: { pids: number[]; before: Set<string> }): string[] {
  return readdirSync('/dev/shm').filter((name) => name.startsWith('shmx') && !run.before.has(name) &&
    run.pids.some((pid) => name.includes(`.${pid}.`)));
}

/** An environment whose default run directory and temp files are under `dir`. */
export function isolatedEnv(base: NodeJS.ProcessEnv, dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, TMPDIR: join(dir, 'tmp'), SHMX_LOG_LEVEL: base.SHMX_LOG_LEVEL ?? 'warn' };
  delete env.XDG_RUNTIME_DIR;
  return env;
}
