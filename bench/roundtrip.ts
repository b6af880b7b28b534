/**
 * Ping-pong round trip of a 64-byte message between two Node processes, one run, four paths:
 *   futex   shared segment with a message slot and a word per direction; the receiver parks in
 *           createFutexWaiter().wait, the sender writes the slot, bumps the word and calls futexWake;
 *   mq      a POSIX message queue per direction, received with receiveAsync (uv_poll on the descriptor);
 *   spin    the same segment, both sides spinning on the words with Atomics.load/store (burns a core each);
 *   net     Node's `net` over a Unix socket: the baseline every ratio is taken against.
 *
 *   npx tsx bench/roundtrip.ts [--rounds 20000] [--warmup 2000] [--blocks 5]
 *
 * The paths take turns in blocks, each block with a fresh peer process, so that other load on the machine
 * spreads over all paths instead of skewing the one that happened to run at that moment.
 * Prints a markdown table (median and p99 in µs, median / net). Every segment and queue it creates is
 * removed on the way out, also on error and on SIGINT/SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

import { native, type NativeMessageQueue } from '../src/native.js';
import { fmt, machine, markdownTable, summarize } from './stats.js';

const MESSAGE = 64;
// Segment layout: word 0 = ping sequence (parent -> child), word 1 = pong sequence, slots at 64 and 128.
const PING = 0;
const PONG = 1;
const PING_SLOT = 64;
const PONG_SLOT = 128;
const STOP = -1;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

// ---------------------------------------------------------------------------------------------- peer side

async function peer(mode: string, target: string, target2: string): Promise<void> {
  const say = (line: string) => process.stdout.write(line + '\n');
  switch (mode) {
    case 'futex': {
      const buffer = native.shmMap(target);
      const words = new Int32Array(buffer);
      const bytes = new Uint8Array(buffer);
      const waiter = native.createFutexWaiter(buffer, PING * 4);
      let last = 0;
      say('ready');
      for (;;) {
        let seq = Atomics.load(words, PING);
        while (seq === last) {
          await waiter.wait(last, -1);
          seq = Atomics.load(words, PING);
        }
        if (seq === STOP) break;
        bytes.copyWithin(PONG_SLOT, PING_SLOT, PING_SLOT + MESSAGE);
        Atomics.store(words, PONG, seq);
        native.futexWake(buffer, PONG * 4, 1);
        last = seq;
      }
      waiter.close();
      break;
    }
    case 'spin': {
      const buffer = native.shmMap(target);
      const words = new Int32Array(buffer);
      const bytes = new Uint8Array(buffer);
      say('ready');
      let last = 0;
      for (;;) {
        let seq: number;
        while ((seq = Atomics.load(words, PING)) === last) {
          /* spin */
        }
        if (seq === STOP) break;
        bytes.copyWithin(PONG_SLOT, PING_SLOT, PING_SLOT + MESSAGE);
        Atomics.store(words, PONG, seq);
        last = seq;
      }
      break;
    }
    case 'mq': {
      const req = native.mqOpen(target);
      const resp = native.mqOpen(target2);
      say('ready');
      for (;;) {
        const message = await req.receiveAsync();
        if (message.length === 0) break;
        while (!resp.send(message)) await new Promise((r) => setImmediate(r));
      }
      req.close();
      resp.close();
      break;
    }
    case 'net': {
      const server = net.createServer((socket) => {
        socket.on('data', (chunk) => socket.write(chunk)); // echo
        socket.on('close', () => server.close());
      });
      server.listen(target, () => say('ready'));
      await once(server, 'close');
      break;
    }
    default:
      throw new Error(`unknown peer mode ${mode}`);
  }
}

// -------------------------------------------------------------------------------------------- parent side

interface Result {
  path: string;
  rounds: number;
  samples: Float64Array; // µs
}

const segments = new Set<string>();
const queues = new Set<string>();
const children = new Set<ChildProcess>();
let tempDir: string | null = null;

function cleanup(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const name of segments) native.shmUnlink(name);
  for (const name of queues) native.mqUnlink(name);
  segments.clear();
  queues.clear();
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  tempDir = null;
}

async function startPeer(mode: string, ...args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'peer', mode, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<void>((resolve, reject) => {
    lines.once('line', (line) => (line === 'ready' ? resolve() : reject(new Error(`peer ${mode} said ${line}`))));
    child.once('exit', (code, signal) => reject(new Error(`peer ${mode} exited (${code ?? signal}) before ready`)));
  });
  await ready;
  return child;
}

async function finish(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  children.delete(child);
  if (child.exitCode !== 0) throw new Error(`peer exited with ${child.exitCode ?? child.signalCode}`);
}

let serial = 0;

function segment(tag: string): { name: string; buffer: SharedArrayBuffer } {
  const name = `shmx.bench.rt.${tag}${++serial}.${process.pid}`;
  native.shmCreate(name, 4096, 0o600);
  segments.add(name);
  return { name, buffer: native.shmMap(name) };
}

function removeSegment(name: string): void {
  native.shmUnlink(name);
  segments.delete(name);
}

const payload = new Uint8Array(MESSAGE).map((_, i) => i);

async function futexPath(rounds: number, warmup: number): Promise<Result> {
  const { name, buffer } = segment('futex');
  const words = new Int32Array(buffer);
  const bytes = new Uint8Array(buffer);
  const child = await startPeer('futex', name);
  const waiter = native.createFutexWaiter(buffer, PONG * 4);
  const samples = new Float64Array(rounds);
  for (let i = 1; i <= warmup + rounds; i++) {
    const start = process.hrtime.bigint();
    bytes.set(payload, PING_SLOT);
    Atomics.store(words, PING, i);
    native.futexWake(buffer, PING * 4, 1);
    while (Atomics.load(words, PONG) !== i) await waiter.wait(i - 1, -1);
    if (i > warmup) samples[i - warmup - 1] = Number(process.hrtime.bigint() - start) / 1000;
  }
  waiter.close();
  Atomics.store(words, PING, STOP);
  native.futexWake(buffer, PING * 4, 1);
  await finish(child);
  removeSegment(name);
  return { path: 'futex doorbell (`createFutexWaiter` + `futexWake`)', rounds, samples };
}

async function spinPath(rounds: number, warmup: number): Promise<Result> {
  const { name, buffer } = segment('spin');
  const words = new Int32Array(buffer);
  const bytes = new Uint8Array(buffer);
  const child = await startPeer('spin', name);
  const samples = new Float64Array(rounds);
  for (let i = 1; i <= warmup + rounds; i++) {
    const start = process.hrtime.bigint();
    bytes.set(payload, PING_SLOT);
    Atomics.store(words, PING, i);
    while (Atomics.load(words, PONG) !== i) {
      /* spin */
    }
    if (i > warmup) samples[i - warmup - 1] = Number(process.hrtime.bigint() - start) / 1000;
  }
  Atomics.store(words, PING, STOP);
  await finish(child);
  removeSegment(name);
  return { path: 'both sides spin (`Atomics.load/store`)', rounds, samples };
}

async function mqPath(rounds: number, warmup: number): Promise<Result> {
  const open = (tag: string): NativeMessageQueue => {
    const name = `shmx.bench.rt.mq${tag}${++serial}.${process.pid}`;
    queues.add(name);
    return native.mqOpen(name, { create: true, maxMessages: 10, messageSize: MESSAGE });
  };
  const req = open('req');
  const resp = open('resp');
  const child = await startPeer('mq', req.name, resp.name);
  const samples = new Float64Array(rounds);
  for (let i = 1; i <= warmup + rounds; i++) {
    const start = process.hrtime.bigint();
    if (!req.send(payload)) throw new Error('request queue full');
    const answer = await resp.receiveAsync();
    if (answer.length !== MESSAGE) throw new Error('short answer');
    if (i > warmup) samples[i - warmup - 1] = Number(process.hrtime.bigint() - start) / 1000;
  }
  req.send(new Uint8Array(0)); // stop
  await finish(child);
  for (const q of [req, resp]) {
    q.close();
    native.mqUnlink(q.name);
    queues.delete(q.name);
  }
  return { path: 'POSIX MQ pair (`receiveAsync`)', rounds, samples };
}

async function netPath(rounds: number, warmup: number): Promise<Result> {
  tempDir = mkdtempSync(join(tmpdir(), 'shmx-bench-'));
  const path = join(tempDir, 'rt.sock');
  const child = await startPeer('net', path);
  const socket = net.connect(path);
  await once(socket, 'connect');
  const samples = new Float64Array(rounds);
  let pending: (() => void) | null = null;
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received >= MESSAGE && pending) {
      received -= MESSAGE;
      const done = pending;
      pending = null;
      done();
    }
  });
  for (let i = 1; i <= warmup + rounds; i++) {
    const start = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      pending = resolve;
      socket.write(payload);
    });
    if (i > warmup) samples[i - warmup - 1] = Number(process.hrtime.bigint() - start) / 1000;
  }
  socket.end();
  await finish(child);
  rmSync(tempDir, { recursive: true, force: true });
  tempDir = null;
  return { path: 'Node `net` over a Unix socket (baseline)', rounds, samples };
}

async function main(): Promise<void> {
  const rounds = arg('rounds', 20_000);
  const warmup = arg('warmup', 2_000);
  const blocks = arg('blocks', 5);
  // The paths take turns in blocks (a fresh peer, warm-up, rounds/blocks round trips each), so that load
  // from anything else on the machine falls on every path alike rather than on whichever ran at that moment.
  const paths: Array<(rounds: number, warmup: number) => Promise<Result>> = [futexPath, mqPath, spinPath, netPath];
  const spinFactor = 5; // spinning is cheap: more samples for the same time
  const collected = new Map<number, { path: string; samples: number[] }>();
  for (let block = 0; block < blocks; block++) {
    for (const [index, run] of paths.entries()) {
      const factor = run === spinPath ? spinFactor : 1;
      const result = await run(Math.ceil((rounds * factor) / blocks), warmup * factor);
      const entry = collected.get(index) ?? { path: result.path, samples: [] };
      for (const v of result.samples) entry.samples.push(v);
      collected.set(index, entry);
    }
  }
  const results = [...collected.values()];
  const base = summarize(results[results.length - 1]!.samples).median;
  const m = machine();
  const rows = results.map((r) => {
    const s = summarize(r.samples);
    return [r.path, r.samples.length, fmt(s.median), fmt(s.p99), `${fmt(s.median / base, 2)}×`];
  });
  console.log(
    `Round trip, ${MESSAGE}-byte messages, two Node processes; ${blocks} interleaved blocks per path, ` +
      `each with a fresh peer and ${warmup} warm-up round trips (×${spinFactor} for spin).\n`,
  );
  console.log(`Machine: ${m.nproc} CPUs (${m.cpu}), Linux ${m.kernel}, Node ${m.node}.\n`);
  console.log(markdownTable(['path', 'round trips', 'median µs', 'p99 µs', 'median / net'], rows));
}

if (process.argv[2] === 'peer') {
  peer(process.argv[3]!, process.argv[4]!, process.argv[5] ?? '').then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
} else {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanup();
      process.exit(130);
    });
  }
  main()
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    })
    .finally(cleanup);
}
