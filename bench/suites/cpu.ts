/**
 * CPU per 1000 round trips at fixed rates, open loop: a pacing thread says when each request is due (evenly
 * spaced at the rate, whatever the replies do), the main thread sends it, replies are checked as they come.
 * CPU is process.cpuUsage() of both sides over the window. The bench side includes the pacing thread, so a
 * row "pacer alone" (no requests) is measured the same way and shown beside.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';

import { heartbeat, type Checks } from '../checks.js';
import { progress } from '../harness.js';
import type { Answer, Client, Path } from '../paths.js';
import { median } from '../stats.js';
import { connectPath, payloadOf, settlePair } from './rtt.js';

export interface CpuOptions {
  rates: number[];
  seconds: number;
  blocks: number;
  /** Closed-loop round trips on each fresh pair before its first window (see RttOptions.settleMs): a fresh
   *  process's compiler threads would otherwise be counted in the first rate's CPU. */
  settleMs: number;
}

export interface CpuRow {
  /** round trips completed */
  done: number;
  /** CPU ms per 1000 round trips: bench side, echo side */
  benchMs: number;
  echoMs: number;
  /** % of one core over the window */
  benchPct: number;
  echoPct: number;
}

export interface CpuResult {
  options: CpuOptions;
  paths: Array<{ id: string; label: string }>;
  /** rows[pathId][rate] = one row per block */
  rows: Record<string, Record<string, CpuRow[]>>;
  /** CPU % of the bench process with the pacer alone, per rate */
  pacerPct: Record<string, number>;
  /** median per-block ratio of (bench + echo) CPU per round trip to net's */
  toNet: Record<string, Record<string, number>>;
}

const PACER = `
const { parentPort, workerData } = require('node:worker_threads');
const { rate, seconds } = workerData;
const word = new Int32Array(new SharedArrayBuffer(4));
const t0 = performance.now();
let sent = 0;
for (;;) {
  const now = performance.now() - t0;
  if (now >= seconds * 1000) break;
  const due = Math.floor((now * rate) / 1000);
  if (due > sent) { parentPort.postMessage(due - sent); sent = due; }
  Atomics.wait(word, 0, 0, Math.max(0, ((sent + 1) * 1000) / rate - now));
}
parentPort.postMessage(-1);
`;

/** Runs the pacer at `rate` for `seconds`; `fire` is called for every due request. Resolves when it is done. */
async function pace(rate: number, seconds: number, fire: () => void): Promise<void> {
  const worker = new Worker(PACER, { eval: true, workerData: { rate, seconds } });
  await new Promise<void>((resolve, reject) => {
    worker.on('message', (n: number) => {
      if (n < 0) resolve();
      else for (let i = 0; i < n; i++) fire();
    });
    worker.once('error', reject);
  });
  await worker.terminate();
}

const usage = (u: NodeJS.CpuUsage) => u.user + u.system;

async function measure(client: Client, path: Path, rate: number, seconds: number, checks: Checks): Promise<CpuRow> {
  const payload = payloadOf(64);
  let done = 0;
  let outstanding = 0;
  let bad = 0;
  let drained: (() => void) | undefined;
  const settle = (a: Answer) => {
    if (a.sum !== payload.sum || a.length !== 64) bad++;
    done++;
    heartbeat.beats++;
    if (--outstanding === 0) drained?.();
  };
  const fail = (err: Error) => {
    bad++;
    if (--outstanding === 0) drained?.();
    checks.fail(`${path.id} at ${rate}/s: ${err.message}`);
  };
  const peerBefore = await client.peer!.cpu();
  const before = process.cpuUsage();
  const t0 = performance.now();
  await pace(rate, seconds, () => {
    outstanding++;
    const r = client.roundTrip(payload);
    if (r instanceof Promise) r.then(settle, fail);
    else settle(r);
  });
  if (outstanding > 0) await new Promise<void>((resolve) => (drained = resolve));
  const wall = performance.now() - t0;
  const bench = usage(process.cpuUsage(before));
  const peerAfter = await client.peer!.cpu();
  const echoUs = usage(peerAfter) - usage(peerBefore);
  if (bad > 0) checks.fail(`${path.id} at ${rate}/s: ${bad} bad answers`);
  return {
    done,
    benchMs: (bench / 1000 / done) * 1000,
    echoMs: (echoUs / 1000 / done) * 1000,
    benchPct: (bench / 1000 / wall) * 100,
    echoPct: (echoUs / 1000 / wall) * 100,
  };
}

export async function runCpu(paths: Path[], o: CpuOptions, checks: Checks): Promise<CpuResult> {
  const measured = paths.filter((p) => p.cpu === true && p.overlaps === true);
  const rows: CpuResult['rows'] = {};
  const pacerPct: Record<string, number> = {};
  for (const rate of o.rates) {
    const before = process.cpuUsage();
    const t0 = performance.now();
    await pace(rate, Math.min(1, o.seconds), () => {});
    pacerPct[rate] = (usage(process.cpuUsage(before)) / 1000 / (performance.now() - t0)) * 100;
  }
  for (let block = 0; block < o.blocks; block++) {
    const order = measured.map((_, i) => measured[(i + block) % measured.length]!);
    for (const path of order) {
      let client: Client | undefined;
      try {
        client = await connectPath(path);
        // Let the fresh pair settle (JIT, first faults) before the first window.
        await settlePair(client, path, payloadOf(64), o.settleMs, checks);
        for (const rate of o.rates) {
          progress(`cpu  block ${block + 1}/${o.blocks}  ${path.id.padEnd(10)} ${rate}/s`);
          heartbeat.what = `${path.id} at ${rate}/s`;
          const row = await measure(client, path, rate, o.seconds, checks);
          ((rows[path.id] ??= {})[rate] ??= [])[block] = row;
        }
      } catch (err) {
        checks.fail(`${path.id} cpu: ${(err as Error).message}`);
      } finally {
        await client?.close().catch((err: Error) => checks.fail(`${path.id} close: ${err.message}`));
      }
    }
  }
  const toNet: CpuResult['toNet'] = {};
  for (const path of measured) {
    toNet[path.id] = {};
    for (const rate of o.rates) {
      const mine = rows[path.id]?.[rate] ?? [];
      const net = rows.net?.[rate] ?? [];
      if (mine.length === 0) checks.fail(`${path.id} cpu at ${rate}/s: no samples`);
      toNet[path.id]![rate] = median(mine.map((r, i) => (r.benchMs + r.echoMs) / ((net[i]?.benchMs ?? NaN) + (net[i]?.echoMs ?? NaN))));
    }
  }
  return { options: o, paths: measured.map((p) => ({ id: p.id, label: p.label })), rows, pacerPct, toNet };
}
