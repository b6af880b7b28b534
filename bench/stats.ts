/**
 * The one statistics module of the benchmark suite: samples go into HDR histograms, summaries come out of them,
 * and the formatting helpers every table uses.
 *
 * Why `perf_hooks.createHistogram` rather than hdr-histogram-js: it is Node's own binding of HdrHistogram_c
 * (the C original), so it needs no dependency and records a sample with one native call. Its precision (3
 * significant digits) is far finer than what a run on a shared VM can resolve.
 *
 * Samples are plain numbers, timed with `performance.now()` (a double, sub-µs resolution): BigInt arithmetic
 * from `process.hrtime.bigint()` in a measuring loop allocates, and V8 deoptimized the loop over it again and
 * again (hundreds of bailouts in one rtt run) — for a path whose round trip takes 2–3 µs, 20 µs of the
 * bench's own interpreted code per round trip decided the result.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/** A summary in microseconds (the histograms hold nanoseconds). */
export interface Summary {
  count: number;
  min: number;
  median: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** A latency recorder: nanosecond samples into an HDR histogram. */
export class Recorder {
  readonly histogram: RecordableHistogram = createHistogram({ lowest: 1, highest: 3_600_000_000_000, figures: 3 });

  /** Records one sample in nanoseconds (rounded, clamped to ≥ 1, the histogram's floor). */
  recordNs(ns: number): void {
    this.histogram.record(ns < 1 ? 1 : Math.round(ns));
  }

  /** Records one sample given in milliseconds (a difference of two `performance.now()` readings). */
  recordMs(ms: number): void {
    this.recordNs(ms * 1e6);
  }

  get count(): number {
    return this.histogram.count;
  }

  /** Median, p90, p99 … in µs. */
  summary(): Summary {
    return summarizeHistogram(this.histogram);
  }
}

/** Summary (µs) of a histogram of nanoseconds. */
export function summarizeHistogram(h: RecordableHistogram): Summary {
  if (h.count === 0) return { count: 0, min: NaN, median: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  return {
    count: h.count,
    min: h.min / 1000,
    median: h.percentile(50) / 1000,
    p90: h.percentile(90) / 1000,
    p99: h.percentile(99) / 1000,
    max: h.max / 1000,
    mean: h.mean / 1000,
  };
}

/** The median of plain numbers (for per-block ratios). */
export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** A number with `digits` significant digits, without exponent notation for ordinary magnitudes. */
export function fmt(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  if (value === 0) return '0';
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const decimals = Math.max(0, digits - 1 - magnitude);
  return value.toFixed(decimals);
}

/** A ratio as `×0.042`. */
export function ratio(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '—' : `×${fmt(value, 2)}`;
}

/** A payload size as `64 B`, `4 KiB`, `1 GiB`. */
export function sizeLabel(size: number): string {
  if (size >= 2 ** 30) return `${size / 2 ** 30} GiB`;
  if (size >= 2 ** 20) return `${size / 2 ** 20} MiB`;
  if (size >= 1024) return `${size / 1024} KiB`;
  return `${size} B`;
}

/** A GitHub-flavoured markdown table. */
export function markdownTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(3, ...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((v, c) => v.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(headers), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map((r) => line(r.map(String)))].join('\n');
}
