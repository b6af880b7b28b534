/**
 * The benchmark suite: `npm run bench` (full), `npm run bench -- --quick` (a subset, minutes), `--smoke` (tiny
 * counts: proves every path and suite runs), `--check` (exit non-zero when a path produced no samples, a
 * checksum or count did not match, or anything threw — never on timings). `--only rtt,cpu` picks suites,
 * `--paths shm,net` picks paths, `--blocks N` overrides the block count, `--settle-ms N` how long a fresh pair
 * settles before it is measured, `--sizes 64,4096` the payload sizes, `--report` rewrites docs/performance.md
 * from a quick run too (a full run always does).
 *
 * Results go to bench/results/<timestamp>[-quick].json; a full run also to bench/results/latest.json, from
 * which report.ts writes the tables and charts of docs/performance.md (and the figures quoted in README.md).
 * It measures the library as users get it: the compiled dist/ (tsx's on-the-fly transform of the library made
 * the request path ~45 % slower), with the suite itself compiled by tsc (bench/tsconfig.json → dist-bench/).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Checks, heartbeat, startWatchdog } from './checks.js';
import { cleanupOnSignals, cleanupRun, progressDone } from './harness.js';
import { loadAverage, machineFacts, type MachineFacts } from './machine.js';
import { PATHS } from './paths.js';
import { writeReport } from './report.js';
import { runArena, type ArenaResult } from './suites/arena.js';
import { runCpu, type CpuResult } from './suites/cpu.js';
import { runDeath, type DeathResult } from './suites/death.js';
import { dropPayloads, runRoundTrips, type RttResult } from './suites/rtt.js';
import { runSessions, type SessionResult } from './suites/sessions.js';
import { runSweep, type SweepResult } from './suites/sweep.js';
import { runThroughput, type ThroughputResult } from './suites/throughput.js';

export interface Results {
  profile: 'full' | 'quick' | 'smoke';
  startedAt: string;
  finishedAt: string;
  seconds: number;
  argv: string[];
  machine: MachineFacts & { loadStart: number[]; loadEnd: number[] };
  rtt?: RttResult;
  throughput?: ThroughputResult;
  cpu?: CpuResult;
  arena?: ArenaResult;
  sessions?: SessionResult;
  death?: DeathResult;
  sweep?: SweepResult;
  failures: string[];
  notes: string[];
}

const MiB = 2 ** 20;
const PROFILES = {
  full: {
    rtt: { sizes: [64, 4096, 64 * 1024, MiB, 16 * MiB, 256 * MiB, 1024 * MiB], blocks: 5, budgetMs: 250, warmupMs: 100, settleMs: 600, minRounds: 3, maxRounds: 20_000, largeFrom: 256 * MiB, largeBlocks: 2, capMs: 20_000 },
    throughput: { count: 200_000, blocks: 5, messageSize: 64, settleMs: 600 },
    cpu: { rates: [1_000, 10_000, 50_000], seconds: 2, blocks: 3, settleMs: 600 },
    arena: { sizes: [16, 256, 4096, 65536, MiB], batches: 4000, batch: 32, growBytes: 1024 * MiB },
    sessions: { opens: 300, warmup: 30, sessions: 100, settleSeconds: 5, windowSeconds: 10 },
    death: { trials: 200 },
    sweep: 10_000,
    stallMs: 180_000,
  },
  quick: {
    rtt: { sizes: [64, 4096, 64 * 1024, MiB, 16 * MiB], blocks: 2, budgetMs: 100, warmupMs: 40, settleMs: 150, minRounds: 3, maxRounds: 10_000, largeFrom: 16 * MiB, largeBlocks: 1, capMs: 5_000 },
    throughput: { count: 20_000, blocks: 2, messageSize: 64, settleMs: 150 },
    cpu: { rates: [1_000, 10_000, 50_000], seconds: 0.5, blocks: 1, settleMs: 150 },
    arena: { sizes: [16, 256, 4096, 65536, MiB], batches: 500, batch: 32, growBytes: 256 * MiB },
    sessions: { opens: 50, warmup: 10, sessions: 100, settleSeconds: 1, windowSeconds: 2 },
    death: { trials: 30 },
    sweep: 10_000,
    stallMs: 60_000,
  },
  smoke: {
    rtt: { sizes: [64, 4096], blocks: 1, budgetMs: 5, warmupMs: 2, settleMs: 5, minRounds: 3, maxRounds: 50, largeFrom: Number.MAX_SAFE_INTEGER, largeBlocks: 1, capMs: 1_000 },
    throughput: { count: 2_000, blocks: 1, messageSize: 64, settleMs: 5 },
    cpu: { rates: [1_000], seconds: 0.2, blocks: 1, settleMs: 5 },
    arena: { sizes: [16, 4096], batches: 20, batch: 32, growBytes: 16 * MiB },
    sessions: { opens: 3, warmup: 1, sessions: 3, settleSeconds: 0, windowSeconds: 0.2 },
    death: { trials: 2 },
    sweep: 100,
    stallMs: 30_000,
  },
};

const SUITES = ['rtt', 'throughput', 'cpu', 'arena', 'sessions', 'death', 'sweep'] as const;
type Suite = (typeof SUITES)[number];

function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
function value(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const profile = flag('smoke') ? 'smoke' : flag('quick') ? 'quick' : 'full';
  const p = structuredClone(PROFILES[profile]);
  const blocks = value('blocks');
  if (blocks !== undefined) {
    const n = Number(blocks);
    if (!Number.isInteger(n) || n < 1) throw new RangeError('--blocks must be a positive integer');
    p.rtt.blocks = p.throughput.blocks = p.cpu.blocks = n;
  }
  const settle = value('settle-ms');
  if (settle !== undefined) {
    const n = Number(settle);
    if (!Number.isFinite(n) || n < 0) throw new RangeError('--settle-ms must be a non-negative number');
    p.rtt.settleMs = p.cpu.settleMs = p.throughput.settleMs = n;
  }
  const sizes = value('sizes');
  if (sizes !== undefined) {
    p.rtt.sizes = sizes.split(',').map(Number);
    if (p.rtt.sizes.some((x) => !Number.isInteger(x) || x < 8 || x % 4 !== 0)) throw new RangeError('--sizes: byte counts, multiples of 4, ≥ 8');
  }
  const only = (value('only')?.split(',') ?? SUITES) as Suite[];
  for (const s of only) if (!SUITES.includes(s)) throw new RangeError(`--only: unknown suite '${s}' (${SUITES.join(', ')})`);
  const pathIds = value('paths')?.split(',');
  const paths = pathIds ? PATHS.filter((x) => pathIds.includes(x.id) || x.id === 'net') : PATHS;
  if (pathIds) for (const id of pathIds) if (!PATHS.some((x) => x.id === id)) throw new RangeError(`--paths: unknown path '${id}'`);

  cleanupOnSignals();
  const checks = new Checks();
  const started = new Date();
  const results: Results = {
    profile,
    startedAt: started.toISOString(),
    finishedAt: '',
    seconds: 0,
    argv: process.argv.slice(2),
    machine: { ...machineFacts(), loadStart: loadAverage(), loadEnd: [] },
    failures: checks.failures,
    notes: checks.notes,
  };
  const stopWatchdog = startWatchdog(p.stallMs, (what) => {
    process.stderr.write(`\nSTALL: no progress for ${p.stallMs / 1000} s in ${what}\n`);
    void cleanupRun().finally(() => process.exit(3));
  });
  const step = (name: string) => {
    heartbeat.beats++;
    progressDone(`── ${name} (${((Date.now() - started.getTime()) / 1000).toFixed(0)} s so far)`);
  };
  try {
    if (only.includes('rtt')) {
      step('round trip vs size');
      results.rtt = await runRoundTrips(paths, p.rtt, checks);
      dropPayloads();
    }
    if (only.includes('throughput')) {
      step('one-way throughput');
      results.throughput = await runThroughput(paths, p.throughput, checks);
    }
    if (only.includes('cpu')) {
      step('CPU at fixed rates');
      results.cpu = await runCpu(paths, p.cpu, checks);
    }
    if (only.includes('arena')) {
      step('arena alloc + free');
      results.arena = await runArena(p.arena);
    }
    if (only.includes('sessions')) {
      step('session open, idle sessions');
      results.sessions = await runSessions(p.sessions, checks);
    }
    if (only.includes('death')) {
      step('peer death detection');
      results.death = await runDeath(p.death, checks);
    }
    if (only.includes('sweep')) {
      step('sweep of stale objects');
      results.sweep = await runSweep(p.sweep, checks);
    }
  } catch (err) {
    checks.fail(`suite: ${(err as Error).stack ?? err}`);
  } finally {
    stopWatchdog();
    const leftovers = await cleanupRun();
    if (leftovers.length > 0) checks.fail(`the run left ${leftovers.length} object(s) behind (removed now): ${leftovers.slice(0, 5).join(', ')}`);
  }
  const finished = new Date();
  results.finishedAt = finished.toISOString();
  results.seconds = (finished.getTime() - started.getTime()) / 1000;
  results.machine.loadEnd = loadAverage();

  const here = dirname(fileURLToPath(import.meta.url));
  const root = join(here, '..');
  const out = value('out');
  const files: string[] = [];
  const complete = only.length === SUITES.length && !pathIds && blocks === undefined && sizes === undefined;
  if (out) files.push(out);
  else if (profile !== 'smoke') {
    const dir = join(root, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const stamp = started.toISOString().replace(/[:.]/g, '-');
    files.push(join(dir, `${stamp}${profile === 'full' ? '' : `-${profile}`}.json`));
    // latest.json is what the docs are generated from: only a complete full run replaces it, never a part of one.
    if (complete) files.push(join(dir, profile === 'full' ? 'latest.json' : `latest-${profile}.json`));
  }
  for (const f of files) writeFileSync(f, JSON.stringify(results, null, 1) + '\n');
  if ((profile === 'full' && complete) || flag('report')) {
    writeReport(results, root);
    files.push('docs/performance.md', 'README.md');
  }
  progressDone(
    `done in ${results.seconds.toFixed(0)} s; ${checks.failures.length} failure(s)` + (files.length ? `; wrote ${files.join(', ')}` : ''),
  );
  for (const f of checks.failures) process.stderr.write(`  FAIL ${f}\n`);
  return flag('check') && checks.failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    void cleanupRun().finally(() => process.exit(2));
  },
);
