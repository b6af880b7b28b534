/**
 * Round trip vs payload size over every path, interleaved: in each block every path gets a fresh peer process
 * and goes through all its sizes, and the order of the paths rotates from block to block, so that load from
 * anything else on the machine falls on every path alike. Ratios are taken pair by pair — a path's median in a
 * block over `net`'s (or a floor's) median in the same block — and reported as the median of those ratios.
 */
import { checksum, fillPseudoRandom } from '../checksum.js';
import { heartbeat, type Checks } from '../checks.js';
import { Peer, progress } from '../harness.js';
import type { Client, Path, Payload } from '../paths.js';
import { median, Recorder, sizeLabel, type Summary } from '../stats.js';

export interface RttOptions {
  sizes: number[];
  blocks: number;
  /** Time spent measuring one (path, size) in one block, after its warm-up. */
  budgetMs: number;
  warmupMs: number;
  /**
   * A fresh peer pair first exchanges round trips of the smallest size for this long, before any cell is
   * measured. V8 compiles a new process's hot code on background threads during its first few hundred ms; on a
   * 2-vCPU machine those threads compete with two busy peers, and every path runs slowly and erratically until
   * they are done. What a fresh pair does meanwhile is reported on its own ({@link RttResult.fresh}).
   */
  settleMs: number;
  /** At least this many round trips per cell and block, whatever the budget. */
  minRounds: number;
  maxRounds: number;
  /** Sizes from this one up are measured only in the last `largeBlocks` blocks (a 1 GiB round trip takes seconds;
   *  the last blocks, because the bench process's own code for every path is compiled by then). */
  largeFrom: number;
  largeBlocks: number;
  /** A cell whose round trips take longer stops after this much time, with at least one measured round trip. */
  capMs: number;
}

export interface RttCell {
  summary: Summary;
  /** Median (µs) of each block. */
  blocks: number[];
  /** The first round trip of the size on the block's fresh session (µs, per block): first touch — arena growth,
   *  new mappings, page faults — which the warm-up keeps out of the median. */
  first?: number[];
  errors: string[];
}

export interface RttResult {
  options: RttOptions;
  paths: Array<{ id: string; label: string; group: string; reads: boolean; maxSize: number | null }>;
  /** cells[pathId][size] */
  cells: Record<string, Record<string, RttCell>>;
  /** Median of per-block ratios: ratios[pathId][size][baseline id]. */
  ratios: Record<string, Record<string, Record<string, number>>>;
  /** fresh[pathId] = per block, the settle phase's summary (µs): the first `settleMs` of a fresh pair. */
  fresh: Record<string, Summary[]>;
}

/** Connects a path with its peer started by the harness. */
export function connectPath(path: Path): Promise<Client> {
  return path.connect((config, serialization) => Peer.start(`path:${path.id}`, config, serialization));
}

const payloads = new Map<number, Payload>();
/** The payload of a size, made once per run (pseudo-random bytes, so a checksum of zeros proves nothing). */
export function payloadOf(size: number): Payload {
  let p = payloads.get(size);
  if (!p) {
    const bytes = new Uint8Array(size);
    fillPseudoRandom(bytes, size);
    p = { size, bytes, sum: checksum(bytes) };
    payloads.set(size, p);
  }
  return p;
}

/** Frees the big payloads (before the suites that need memory and quiet). */
export function dropPayloads(): void {
  payloads.clear();
}

/** How long a run of round trips lasts: `ms`, but at least `minRounds` (unless that takes past `capMs`) and at
 *  most `maxRounds`. */
interface Span {
  ms: number;
  minRounds: number;
  maxRounds: number;
  capMs: number;
}

/**
 * Round trips of `payload` for a span: the first one's time (ms) and a recorder of them all. Timed with
 * `performance.now()`, not BigInts (see stats.ts).
 */
async function roundTripsFor(client: Client, payload: Payload, span: Span,
  verify: (a: { sum: number; length: number }) => void): Promise<{ recorder: Recorder; firstMs: number }> {
  const recorder = new Recorder();
  const start = performance.now();
  const end = start + span.ms;
  const cap = start + span.capMs;
  let firstMs = 0;
  let n = 0;
  for (;;) {
    const t0 = performance.now();
    let r = client.roundTrip(payload);
    if (r instanceof Promise) r = await r;
    const t1 = performance.now();
    if (n === 0) firstMs = t1 - t0;
    recorder.recordMs(t1 - t0);
    verify(r);
    heartbeat.beats++;
    n++;
    if (n >= span.maxRounds || (t1 >= end && (n >= span.minRounds || t1 >= cap))) break;
  }
  return { recorder, firstMs };
}

/** Checks answers against `payload`; counts the bad ones. */
function verifier(path: Path, payload: Payload): { verify: (a: { sum: number; length: number }) => void; bad: () => number } {
  let bad = 0;
  return {
    verify: (a) => {
      if (a.length !== payload.size >>> 0 || (path.reads !== false && a.sum !== payload.sum)) bad++;
    },
    bad: () => bad,
  };
}

/**
 * Lets a fresh pair settle (see {@link RttOptions.settleMs}): round trips of `payload` for `ms`, every answer
 * checked. The first round trip's time (ms) and a recorder of them all.
 */
export async function settlePair(client: Client, path: Path, payload: Payload, ms: number,
  checks: Checks): Promise<{ recorder: Recorder; firstMs: number }> {
  const check = verifier(path, payload);
  const settled = await roundTripsFor(client, payload, { ms, minRounds: 1, maxRounds: Number.MAX_SAFE_INTEGER, capMs: ms }, check.verify);
  if (check.bad() > 0) checks.fail(`${path.id}: ${check.bad()} answers with a wrong checksum or length while settling`);
  return settled;
}

/**
 * Warm-up, then round trips until the budget is spent (at least minRounds); every answer is checked. The first
 * round trip of the warm-up is timed on its own (first touch).
 */
async function measureCell(client: Client, path: Path, payload: Payload, o: RttOptions, checks: Checks): Promise<{ recorder: Recorder; firstMs: number }> {
  let result: { recorder: Recorder; firstMs: number };
  const { verify, bad } = verifier(path, payload);
  await client.prepare?.(payload);
  try {
    const { firstMs } = await roundTripsFor(client, payload, { ms: o.warmupMs, minRounds: 1, maxRounds: o.maxRounds, capMs: o.warmupMs }, verify);
    const { recorder } = await roundTripsFor(client, payload, { ms: o.budgetMs, minRounds: o.minRounds, maxRounds: o.maxRounds, capMs: o.capMs }, verify);
    result = { recorder, firstMs };
  } finally {
    client.unprepare?.();
  }
  if (bad() > 0) checks.fail(`${path.id} ${sizeLabel(payload.size)}: ${bad()} answers with a wrong checksum or length`);
  return result;
}

export async function runRoundTrips(paths: Path[], o: RttOptions, checks: Checks): Promise<RttResult> {
  const measured = paths.filter((p) => p.roundTrips !== false);
  const sizesOf = (p: Path) => o.sizes.filter((s) => s <= (p.maxSize ?? Infinity));
  const merged = new Map<string, Recorder>();
  const cells: RttResult['cells'] = {};
  const key = (p: Path, size: number) => `${p.id}@${size}`;
  for (const p of measured) {
    cells[p.id] = {};
    for (const s of sizesOf(p)) cells[p.id]![s] = { summary: new Recorder().summary(), blocks: [], errors: [] };
  }
  const inBlock = (p: Path, block: number) => sizesOf(p).filter((s) => s < o.largeFrom || block >= o.blocks - o.largeBlocks);
  const fresh: RttResult['fresh'] = {};
  let total = 0;
  for (let block = 0; block < o.blocks; block++) for (const p of measured) total += inBlock(p, block).length;
  let done = 0;
  for (let block = 0; block < o.blocks; block++) {
    const order = measured.map((_, i) => measured[(i + block * 3) % measured.length]!);
    for (const path of order) {
      let client: Client | undefined;
      try {
        heartbeat.what = `${path.id}: connecting`;
        client = await connectPath(path);
        // The fresh pair settles first (see RttOptions.settleMs); its very first round trip is the smallest
        // size's first touch.
        const smallest = payloadOf(sizesOf(path)[0]!);
        heartbeat.what = `${path.id}: settling`;
        progress(`rtt  block ${block + 1}/${o.blocks}  ${path.id.padEnd(14)} settling`);
        const settled = await settlePair(client, path, smallest, o.settleMs, checks);
        (fresh[path.id] ??= [])[block] = settled.recorder.summary();
        for (const size of inBlock(path, block)) {
          const payload = payloadOf(size);
          progress(`rtt  block ${block + 1}/${o.blocks}  ${path.id.padEnd(14)} ${sizeLabel(size).padStart(7)}  [${++done}/${total}]`);
          heartbeat.what = `${path.id} ${sizeLabel(size)} round trips`;
          const cell = cells[path.id]![size]!;
          try {
            const { recorder: rec, firstMs } = await measureCell(client, path, payload, o, checks);
            cell.blocks[block] = rec.summary().median;
            (cell.first ??= [])[block] = (size === smallest.size ? settled.firstMs : firstMs) * 1000;
            const all = merged.get(key(path, size));
            if (all) all.histogram.add(rec.histogram);
            else merged.set(key(path, size), rec);
          } catch (err) {
            cell.errors.push(`block ${block + 1}: ${(err as Error).message}`);
            checks.fail(`${path.id} ${sizeLabel(size)}: ${(err as Error).message}`);
            break; // the client may be in any state: next path
          }
        }
      } catch (err) {
        for (const size of sizesOf(path)) cells[path.id]![size]!.errors.push(`block ${block + 1}: ${(err as Error).message}`);
        checks.fail(`${path.id}: ${(err as Error).message}`);
      } finally {
        await client?.close().catch((err: Error) => checks.fail(`${path.id} close: ${err.message}`));
      }
    }
  }
  for (const path of measured) {
    for (const size of sizesOf(path)) {
      const cell = cells[path.id]![size]!;
      cell.summary = merged.get(key(path, size))?.summary() ?? cell.summary;
      if (cell.summary.count === 0 && cell.errors.length === 0) checks.fail(`${path.id} ${sizeLabel(size)}: no samples`);
    }
  }
  // Pair by pair: the same block's baseline.
  const ratios: RttResult['ratios'] = {};
  const baselines = ['net', 'floor-spin', 'floor-doorbell', 'read'];
  for (const path of measured) {
    ratios[path.id] = {};
    for (const size of sizesOf(path)) {
      const r: Record<string, number> = {};
      for (const base of baselines) {
        const b = cells[base]?.[size];
        if (!b) continue;
        const per = cells[path.id]![size]!.blocks.map((m, i) => m / (b.blocks[i] ?? NaN));
        const value = median(per);
        if (Number.isFinite(value)) r[base] = value;
      }
      ratios[path.id]![size] = r;
    }
  }
  return {
    options: o,
    paths: measured.map((p) => ({ id: p.id, label: p.label, group: p.group, reads: p.reads !== false, maxSize: p.maxSize ?? null })),
    cells,
    ratios,
    fresh,
  };
}
