/**
 * Arena alloc+free latency: `npx tsx bench/arena.ts`
 *
 * For each size, pairs of `alloc(size)` + `free()` are timed in batches of BATCH pairs (one hrtime read per
 * batch, so the timer's own ~40 ns does not dominate); the table gives the median and p99 of the per-pair
 * time over all batches. "with peer" repeats the run while a second process allocates and frees random
 * 16..4112-byte blocks in the same arena as fast as it can (both processes on their own core).
 */
import { type ChildProcess, execSync, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Arena } from '../src/arena/index.js';

const BATCH = 32;
const BATCHES = 4000;
const SIZES = [16, 256, 4096, 65536, 1 << 20];
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function measure(arena: Arena, size: number): { median: number; p99: number } {
  const samples = new Float64Array(BATCHES);
  for (let w = 0; w < 200; w++) for (let i = 0; i < BATCH; i++) arena.free(arena.alloc(size));
  for (let b = 0; b < BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) arena.free(arena.alloc(size));
    samples[b] = Number(process.hrtime.bigint() - t0) / BATCH;
  }
  samples.sort();
  return { median: samples[BATCHES >> 1]!, p99: samples[Math.floor(BATCHES * 0.99)]! };
}

/** Operations the peer reported so far, with the time of its last report. */
const peerOps = { ops: 0, at: 0, firstOps: 0, firstAt: 0 };

function startPeer(name: string, ms: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/fixtures/arena-child.ts'), name, 'stress', String(ms)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.on('exit', () => reject(new Error('the peer exited early')));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { t: string; ops?: number };
      if (m.t === 'ready') resolve(child);
      if (m.t === 'ops') {
        if (peerOps.firstAt === 0) Object.assign(peerOps, { firstOps: m.ops, firstAt: Date.now() });
        Object.assign(peerOps, { ops: m.ops, at: Date.now() });
      }
    });
  });
}

const fmt = (ns: number): string => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
const label = (s: number): string => (s >= 1 << 20 ? `${s >> 20} MiB` : s >= 1024 ? `${s >> 10} KiB` : `${s} B`);

async function main(): Promise<void> {
  const name = `shmx-arenabench-${process.pid}`;
  const arena = Arena.create(name, { maxBytes: 1 << 30, growChunk: 16 << 20 });
  const tracked = Arena.open(name, { trackLeaks: true });
  try {
    const rows: string[] = [];
    const solo = SIZES.map((s) => measure(arena, s));
    const soloTracked = measure(tracked, 256);
    const peer = await startPeer(name, 60_000);
    const withPeer = SIZES.map((s) => measure(arena, s));
    const withPeerTracked = measure(tracked, 256);
    await new Promise((r) => setTimeout(r, 300)); // let the last progress report in
    const peerRate = (peerOps.ops - peerOps.firstOps) / ((peerOps.at - peerOps.firstAt) / 1000);
    const gone = new Promise((r) => peer.once('exit', r));
    peer.kill('SIGKILL');
    await gone;
    SIZES.forEach((s, i) => {
      rows.push(`| ${label(s)} | ${fmt(solo[i]!.median)} | ${fmt(solo[i]!.p99)} | ${fmt(withPeer[i]!.median)} | ${fmt(withPeer[i]!.p99)} |`);
    });
    rows.push(
      `| 256 B, trackLeaks: true | ${fmt(soloTracked.median)} | ${fmt(soloTracked.p99)} | ${fmt(withPeerTracked.median)} | ${fmt(withPeerTracked.p99)} |`,
    );
    const kernel = execSync('uname -r').toString().trim();
    console.log(`alloc + free, per pair (batches of ${BATCH}; ${cpus().length} vCPU, Node ${process.versions.node}, Linux ${kernel})\n`);
    console.log('| size | single process, median | p99 | with a peer allocating, median | p99 |');
    console.log('|---|---|---|---|---|');
    for (const r of rows) console.log(r);
    console.log(`\nThe peer did ${(peerRate / 1e6).toFixed(2)} M alloc-or-free operations per second meanwhile.`);
  } finally {
    tracked.close();
    arena.close();
    Arena.unlink(name);
  }
  process.exit(0);
}

await main();
