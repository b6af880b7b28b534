/**
 * One-way throughput of 64-byte messages: `count` sends (waiting for room when the path says "slow down"),
 * then one request that the receiver answers with how many it counted — the clock stops at that answer, so
 * every message was received. Paths interleave in blocks with fresh peers; ratios to `net` pair by pair.
 */
import { heartbeat, type Checks } from '../checks.js';
import { progress } from '../harness.js';
import type { Client, Path } from '../paths.js';
import { median } from '../stats.js';
import { connectPath } from './rtt.js';

export interface ThroughputOptions {
  count: number;
  blocks: number;
  messageSize: number;
  /** Floods of a tenth of `count` on each fresh pair for at least this long before the measured one (see
   *  RttOptions.settleMs: a new process compiles its hot code on background threads meanwhile). */
  settleMs: number;
}

export interface ThroughputResult {
  options: ThroughputOptions;
  paths: Array<{ id: string; label: string }>;
  /** messages per second, per block */
  rates: Record<string, number[]>;
  median: Record<string, number>;
  /** median of per-block ratios to net */
  toNet: Record<string, number>;
  errors: Record<string, string[]>;
}

export async function runThroughput(paths: Path[], o: ThroughputOptions, checks: Checks): Promise<ThroughputResult> {
  const measured = paths.filter((p) => p.floods === true);
  const rates: Record<string, number[]> = {};
  const errors: Record<string, string[]> = {};
  const message = new Uint8Array(o.messageSize).fill(7);
  const usable: Path[] = [];
  for (let block = 0; block < o.blocks; block++) {
    const order = measured.map((_, i) => measured[(i + block) % measured.length]!);
    for (const path of order) {
      progress(`throughput  block ${block + 1}/${o.blocks}  ${path.id}`);
      heartbeat.what = `${path.id} flood`;
      let client: Client | undefined;
      try {
        client = await connectPath(path);
        if (!client.flood) continue;
        if (!usable.includes(path)) usable.push(path);
        const warm = Math.ceil(o.count / 10);
        const settled = performance.now() + o.settleMs;
        let sent = 0;
        let seenWarm = 0;
        do {
          seenWarm = await client.flood(warm, message);
          sent += warm;
          heartbeat.beats++;
        } while (seenWarm === sent && performance.now() < settled);
        const t0 = performance.now();
        const seen = await client.flood(o.count, message);
        const seconds = (performance.now() - t0) / 1000;
        heartbeat.beats++;
        if (seenWarm !== sent || seen !== sent + o.count) {
          checks.fail(`${path.id} flood: the receiver counted ${seen} of ${sent + o.count}`);
        }
        (rates[path.id] ??= [])[block] = o.count / seconds;
      } catch (err) {
        (errors[path.id] ??= []).push((err as Error).message);
        checks.fail(`${path.id} flood: ${(err as Error).message}`);
      } finally {
        await client?.close().catch((err: Error) => checks.fail(`${path.id} close: ${err.message}`));
      }
    }
  }
  const med: Record<string, number> = {};
  const toNet: Record<string, number> = {};
  for (const path of usable) {
    const r = rates[path.id] ?? [];
    med[path.id] = median(r);
    if (r.length === 0) checks.fail(`${path.id} flood: no samples`);
    const net = rates.net ?? [];
    toNet[path.id] = median(r.map((v, i) => v / (net[i] ?? NaN)));
  }
  return { options: o, paths: usable.map((p) => ({ id: p.id, label: p.label })), rates, median: med, toNet, errors };
}
