/**
 * Writes the results of a run into the docs: Markdown tables and SVG charts into docs/performance.md between
 * `<!-- bench:begin -->` and `<!-- bench:end -->`, and the headline figures into README.md between
 * `<!-- bench:readme:begin -->` and `<!-- bench:readme:end -->`. Every figure the docs quote comes from here.
 *
 *   node dist-bench/report.js [bench/results/latest.json]     (npm run bench:report)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { barChart, lineChart } from './chart.js';
import type { Results } from './run.js';
import { fmt, markdownTable, median, ratio, sizeLabel } from './stats.js';

const BEGIN = '<!-- bench:begin -->';
const END = '<!-- bench:end -->';
const README_BEGIN = '<!-- bench:readme:begin -->';
const README_END = '<!-- bench:readme:end -->';

const us = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : `${fmt(v)} µs`);
const verdict = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'met' : '**not met**');

/** Headline figures, computed once for both pages. */
function headline(r: Results) {
  const cell = (id: string, size: number) => r.rtt?.cells[id]?.[size]?.summary;
  const rat = (id: string, size: number, base: string) => r.rtt?.ratios[id]?.[size]?.[base];
  const sizes = r.rtt?.options.sizes ?? [];
  const largest = sizes[sizes.length - 1];
  const handleFlat =
    largest !== undefined && cell('shm-handle-t', largest) && cell('shm-handle-t', 64)
      ? cell('shm-handle-t', largest)!.median / cell('shm-handle-t', 64)!.median
      : undefined;
  const copyWorst = sizes.length ? Math.max(...sizes.map((s) => rat('shm', s, 'net') ?? NaN).filter(Number.isFinite)) : undefined;
  /** Worst round-trip ratio to net over the sizes, and the size it is at. */
  const worstOf = (path: string) => {
    const at = sizes.map((size) => ({ size, ratio: rat(path, size, 'net') ?? NaN })).filter((x) => Number.isFinite(x.ratio));
    return at.length ? at.reduce((a, b) => (b.ratio > a.ratio ? b : a)) : undefined;
  };
  const kernelWorst = { mq: worstOf('mq'), socket: worstOf('socket') };
  const cpuWorst = r.cpu ? Math.max(...Object.values(r.cpu.toNet.shm ?? {}).filter(Number.isFinite)) : undefined;
  const arenaSmall = r.arena ? Math.max(...[16, 256, 4096, 65536].map((s) => r.arena!.pairs[s]?.median ?? NaN).filter(Number.isFinite)) : undefined;
  const idle = r.sessions?.idle.find((x) => x.state.includes('idle sessions') && !x.state.includes('channel'));
  return { cell, rat, largest, handleFlat, copyWorst, kernelWorst, cpuWorst, arenaSmall, idle };
}

function machineLine(r: Results): string {
  const m = r.machine;
  return (
    `Run: ${r.profile} profile, ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${fmt(r.seconds / 60, 2)} min. ` +
    `Machine: ${m.cores} cores, ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}; ` +
    `load average ${m.loadStart.map((x) => x.toFixed(2)).join(' ')} at the start, ${m.loadEnd.map((x) => x.toFixed(2)).join(' ')} at the end.`
  );
}

function targetsTable(r: Results): string {
  const h = headline(r);
  const rows: string[][] = [];
  const net64 = h.cell('net', 64)?.median;
  const shm64 = h.cell('shm', 64)?.median;
  const toNet = h.rat('shm', 64, 'net');
  rows.push(['64 B round trip, default settings', '≤ ×0.05 `net`', `${us(shm64)} vs ${us(net64)}: ${ratio(toNet)}`, verdict(toNet === undefined ? undefined : toNet <= 0.05)]);
  const park = h.rat('shm-park', 64, 'floor-doorbell');
  rows.push(['64 B, every message wakes the peer (`spinMicros: 0`)', '≤ ×1 raw doorbell + `uv_poll`', `${us(h.cell('shm-park', 64)?.median)} vs ${us(h.cell('floor-doorbell', 64)?.median)}: ${ratio(park)} (${ratio(h.rat('shm-park', 64, 'net'))} net)`, verdict(park === undefined ? undefined : park <= 1)]);
  const spinSend = h.rat('shm-spin-send', 64, 'floor-spin');
  rows.push(['64 B, spin mode, `send` + message event', '≤ ×2 two processes spinning', `${us(h.cell('shm-spin-send', 64)?.median)} vs ${us(h.cell('floor-spin', 64)?.median)}: ${ratio(spinSend)}`, verdict(spinSend === undefined ? undefined : spinSend <= 2)]);
  const spin = h.rat('shm-spin', 64, 'floor-spin');
  rows.push(['64 B, spin mode, `await request()`', '≤ ×3 two processes spinning', `${us(h.cell('shm-spin', 64)?.median)} vs ${us(h.cell('floor-spin', 64)?.median)}: ${ratio(spin)}`, verdict(spin === undefined ? undefined : spin <= 3)]);
  if (r.cpu) {
    const rates = r.cpu.options.rates;
    rows.push(['CPU per round trip at steady rates', '≤ ×1 `net` at every rate', rates.map((x) => `${x / 1000}k/s ${ratio(r.cpu!.toNet.shm?.[x])}`).join(', '), verdict(h.cpuWorst === undefined || !Number.isFinite(h.cpuWorst) ? undefined : h.cpuWorst <= 1)]);
  }
  if (h.largest !== undefined && h.handleFlat !== undefined) {
    rows.push([`block by handle, ${sizeLabel(h.largest)} vs 64 B`, '≤ ×1.2', `${us(h.cell('shm-handle-t', h.largest)?.median)} vs ${us(h.cell('shm-handle-t', 64)?.median)}: ${ratio(h.handleFlat)}`, verdict(h.handleFlat <= 1.2)]);
  }
  const codec = h.cell('codec-shmx', 64)?.median;
  const json = h.cell('codec-net-json', 64)?.median;
  const packr = h.cell('codec-net-msgpack', 64)?.median;
  if (codec !== undefined && json !== undefined && packr !== undefined) {
    const spinCodec = h.cell('codec-shmx-spin', 64)?.median;
    const vs = (x: number) => `×${fmt(x / json, 2)} JSON, ×${fmt(x / packr, 2)} msgpackr`;
    rows.push(['object of 20 fields, typed channel (msgpack) round trip', '< `net` + JSON and `net` + msgpackr',
      `default ${us(codec)} (${vs(codec)})${spinCodec === undefined ? '' : `; spin mode ${us(spinCodec)} (${vs(spinCodec)})`}; net: JSON ${us(json)}, msgpackr ${us(packr)}`,
      verdict(codec < json && codec < packr)]);
  }
  if (h.copyWorst !== undefined && Number.isFinite(h.copyWorst)) {
    rows.push(['copied payload, receiver reads every byte', '≤ ×1 `net` at every size', `worst size ${ratio(h.copyWorst)}`, verdict(h.copyWorst <= 1)]);
  }
  const { mq, socket } = h.kernelWorst;
  if (mq !== undefined && socket !== undefined) {
    const at = (w: { size: number; ratio: number }) => `${ratio(w.ratio)} at ${sizeLabel(w.size)}`;
    rows.push(['mq and socket transports, round trip', '≤ ×1.3 `net` at every size', `worst: mq ${at(mq)}, socket ${at(socket)}`, verdict(Math.max(mq.ratio, socket.ratio) <= 1.3)]);
  }
  if (r.throughput) {
    const t = r.throughput.toNet;
    const best = Math.max(t.shm ?? NaN, t['shm-views'] ?? NaN);
    rows.push(['64 B one-way throughput', '≥ ×10 `net`', `copied ${ratio(t.shm)}, message views ${ratio(t['shm-views'])}, spin ${ratio(t['shm-spin'])}`, verdict(Number.isFinite(best) ? best >= 10 : undefined)]);
  }
  if (h.arenaSmall !== undefined && Number.isFinite(h.arenaSmall)) {
    rows.push(['arena alloc + free, 16 B … 64 KiB', '≤ 0.2 µs median', `worst size ${us(h.arenaSmall)}`, verdict(h.arenaSmall <= 0.2)]);
  }
  if (r.sessions) {
    const o = r.sessions.open;
    rows.push(['session open (connect → open, both sides)', '≤ 1 ms median', `${fmt(o.both.median / 1000)} ms (${ratio(o.toNet)} a fresh \`net\` connect + round trip)`, verdict(o.both.median <= 1000)]);
    if (h.idle) rows.push([`idle: ${h.idle.state}`, '< 0.1 % of a core', `server ${fmt(h.idle.serverPct, 2)} %, client ${fmt(h.idle.clientPct, 2)} %`, verdict(Math.max(h.idle.serverPct, h.idle.clientPct) < 0.1)]);
  }
  if (r.death) {
    const d = r.death;
    rows.push(['peer death: SIGKILL → `\'hosed\'`, idle server', 'p99 ≤ 10 ms', `median ${fmt(d.hosed.median / 1000)} ms, p99 ${fmt(d.hosed.p99 / 1000)} ms (${ratio(d.toNet)} a \`net\` socket's EOF)`, verdict(d.hosed.p99 <= 10_000)]);
  }
  if (r.sweep) rows.push([`sweep of ${r.sweep.objects} stale objects`, '—', `${fmt(r.sweep.sweepMs)} ms (${fmt((r.sweep.sweepMs * 1000) / r.sweep.objects)} µs each)`, '—']);
  return markdownTable(['measure', 'target (design brief)', 'this run', ''], rows);
}

function rttTables(r: Results, chartFile: string): string[] {
  const rtt = r.rtt!;
  const sizes = rtt.options.sizes;
  const out: string[] = [];
  out.push(
    `### Round trip vs payload size`,
    '',
    `Request → receiver reads every byte (checksum) → 8-byte reply with the checksum, which the bench checks. ` +
      `${rtt.options.blocks} interleaved blocks, each path with a fresh peer process per block; per cell and block a ` +
      `${rtt.options.warmupMs} ms warm-up, then ${rtt.options.budgetMs} ms of round trips (at least ${rtt.options.minRounds}); ` +
      `sizes from ${sizeLabel(rtt.options.largeFrom)} up only in the last ${rtt.options.largeBlocks} block(s). ` +
      `Before its first cell, each fresh pair settles: ${rtt.options.settleMs} ms of round trips of the smallest size ` +
      `(V8 compiles a new process's hot code on background threads meanwhile; see "fresh pair" below). ` +
      `Median µs over all blocks, and the median of the per-block ratios to \`net\` (same block, same size). "—": not measured at that size.`,
    '',
  );
  const rows = rtt.paths.map((p) => [
    p.label + (p.reads ? '' : ' †'),
    ...sizes.map((s) => {
      const c = rtt.cells[p.id]?.[s];
      if (!c || c.summary.count === 0) return c?.errors.length ? 'error' : '—';
      const base = rtt.ratios[p.id]?.[s]?.net;
      return p.id === 'net' ? fmt(c.summary.median) : `${fmt(c.summary.median)} ${ratio(base)}`;
    }),
  ]);
  out.push(markdownTable(['path', ...sizes.map(sizeLabel)], rows), '');
  out.push('† the receiver does not read the block: the pure cost of passing it by handle.', '');
  out.push('p99 (µs) and round trips measured:', '');
  out.push(
    markdownTable(
      ['path', ...sizes.map(sizeLabel)],
      rtt.paths.map((p) => [p.id, ...sizes.map((s) => {
        const c = rtt.cells[p.id]?.[s];
        return c && c.summary.count ? `${fmt(c.summary.p99)} (${c.summary.count})` : '—';
      })]),
    ),
    '',
  );
  const floors = ['floor-spin', 'floor-doorbell'].filter((f) => rtt.cells[f]?.[64]);
  if (floors.length) {
    out.push('64 B against the raw floors (median of per-block ratios):', '');
    out.push(
      markdownTable(
        ['path', 'median µs', '/ net', ...floors.map((f) => `/ ${f}`)],
        rtt.paths.filter((p) => rtt.cells[p.id]?.[64]?.summary.count).map((p) => [
          p.id,
          fmt(rtt.cells[p.id]![64]!.summary.median),
          ratio(rtt.ratios[p.id]?.[64]?.net),
          ...floors.map((f) => ratio(rtt.ratios[p.id]?.[64]?.[f])),
        ]),
      ),
      '',
    );
  }
  const big = sizes.filter((x) => x >= 2 ** 20 && rtt.cells.read?.[x]);
  if (big.length) {
    out.push('Large payloads against reading them in-process with no transport at all (`read`; median of per-block ratios):', '');
    out.push(
      markdownTable(
        ['path', ...big.map(sizeLabel)],
        rtt.paths.filter((p) => p.reads && p.id !== 'read' && big.some((x) => rtt.ratios[p.id]?.[x]?.read)).map((p) => [p.id, ...big.map((x) => ratio(rtt.ratios[p.id]?.[x]?.read))]),
      ),
      '',
    );
  }
  const firstPaths = rtt.paths.filter((p) => FIRST_TOUCH_PATHS.includes(p.id) && sizes.some((x) => rtt.cells[p.id]?.[x]?.first?.length));
  if (firstPaths.length) {
    out.push(
      'First touch: the first round trip of each size on a fresh session (new peer process; sizes in increasing order), ' +
        'which the warm-up keeps out of the tables above — arena growth, new mappings and page faults are paid here ' +
        '(the smallest size is also the first message of the session: code not yet compiled, first allocations). ' +
        'Median µs of the blocks, and its ratio to `net`\'s first round trip of the same size:',
      '',
    );
    const firstOf = (id: string, x: number) => median(rtt.cells[id]?.[x]?.first ?? []); // holes: sizes not measured in a block
    out.push(
      markdownTable(
        ['path', ...sizes.map(sizeLabel)],
        firstPaths.map((p) => [p.id, ...sizes.map((x) => {
          const v = firstOf(p.id, x);
          if (!Number.isFinite(v)) return '—';
          const b = firstOf('net', x);
          return p.id === 'net' || !Number.isFinite(b) ? fmt(v) : `${fmt(v)} ${ratio(v / b)}`;
        })]),
      ),
      '',
    );
  }
  const freshPaths = rtt.paths.filter((p) => (rtt.fresh?.[p.id] ?? []).some((x) => x?.count > 0));
  if (freshPaths.length) {
    const freshOf = (id: string, key: 'median' | 'p90' | 'mean') => median((rtt.fresh?.[id] ?? []).filter((x) => x?.count > 0).map((x) => x[key]));
    const withNet = (id: string, key: 'median' | 'p90' | 'mean') => {
      const v = freshOf(id, key);
      const b = freshOf('net', key);
      return id === 'net' || !Number.isFinite(b) ? fmt(v) : `${fmt(v)} ${ratio(v / b)}`;
    };
    out.push(
      `Fresh pair: round trips (µs) of the smallest size during the first ${rtt.options.settleMs} ms of a new peer ` +
        'pair — the settle phase, left out of every table above — while V8 is still compiling the new process\'s ' +
        'code; median over the blocks, and the ratio to `net`\'s fresh pair (the very first round trip is in the ' +
        'first-touch table).',
      '',
      markdownTable(
        ['path', 'median', 'p90', 'mean'],
        freshPaths.map((p) => [p.id, withNet(p.id, 'median'), withNet(p.id, 'p90'), withNet(p.id, 'mean')]),
      ),
      '',
    );
  }
  out.push(`![round trip vs payload size](${chartFile})`, '');
  return out;
}

/** Paths whose first round trip of a size the report shows (the ones that copy or map on first use, and net). */
const FIRST_TOUCH_PATHS = ['shm', 'shm-handle', 'mq', 'socket', 'net'];

function rttChart(r: Results): string {
  const rtt = r.rtt!;
  const sizes = rtt.options.sizes;
  return lineChart({
    title: 'Round trip vs payload (median, log-log)',
    xLabel: 'payload',
    yLabel: 'µs',
    xs: sizes,
    xTick: (x) => sizeLabel(x).replace(' ', ''),
    series: rtt.paths
      .filter((p) => sizes.filter((s) => rtt.cells[p.id]?.[s]?.summary.count).length > 1)
      .map((p) => ({ name: p.id, dashed: p.group !== 'shmx', ys: sizes.map((s) => rtt.cells[p.id]?.[s]?.summary.median ?? null) })),
  });
}

function throughputSection(r: Results, chartFile: string): string[] {
  const t = r.throughput!;
  const labels = Object.fromEntries(t.paths.map((p) => [p.id, p.label]));
  return [
    '### One-way throughput, 64-byte messages',
    '',
    `${t.options.count.toLocaleString('en-US')} messages per block (after floods of a tenth as many for ${t.options.settleMs ?? 0} ms: the fresh pair settles), sent until the path ` +
      `says "slow down", then waiting for room; the clock stops when the receiver's count comes back. ` +
      `${t.options.blocks} blocks, fresh peers; median of the blocks and median of the per-block ratios to \`net\`. Default ring size.`,
    '',
    markdownTable(
      ['path', 'messages/s', '/ net'],
      t.paths.map((p) => [labels[p.id]!, Math.round(t.median[p.id] ?? NaN).toLocaleString('en-US'), p.id === 'net' ? '1' : ratio(t.toNet[p.id])]),
    ),
    '',
    `![one-way throughput](${chartFile})`,
    '',
  ];
}

function cpuSection(r: Results, chartFile: string): string[] {
  const c = r.cpu!;
  const rates = c.options.rates;
  const labels = Object.fromEntries(c.paths.map((p) => [p.id, p.label]));
  const med = (xs: number[]) => {
    const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
    return v.length ? v[v.length >> 1]! : NaN;
  };
  const rows = c.paths.map((p) => [
    labels[p.id]!,
    ...rates.map((rate) => {
      const rs = c.rows[p.id]?.[rate] ?? [];
      if (!rs.length) return '—';
      const bench = med(rs.map((x) => x.benchMs));
      const echo = med(rs.map((x) => x.echoMs));
      const pct = med(rs.map((x) => x.echoPct));
      return `${fmt(bench + echo)} ms (echo ${fmt(echo)}, ${fmt(pct, 2)} %) ${p.id === 'net' ? '' : ratio(c.toNet[p.id]?.[rate])}`;
    }),
  ]);
  return [
    '### CPU per 1000 round trips at fixed rates (open loop)',
    '',
    `A pacing thread in the bench says when each 64-byte request is due, evenly spaced at the rate whatever the replies do; ` +
      `CPU is \`process.cpuUsage()\` of both processes over ${c.options.seconds} s windows, ${c.options.blocks} block(s). ` +
      `Cell: CPU ms per 1000 round trips, both sides (the echo side's share, and its % of one core), ratio to \`net\`. ` +
      `The bench side includes the pacer, which alone costs ${rates.map((x) => `${fmt(c.pacerPct[x], 2)} %`).join(' / ')} of a core at these rates.`,
    '',
    markdownTable(['path', ...rates.map((x) => `${x.toLocaleString('en-US')}/s`)], rows),
    '',
    `![CPU per 1000 round trips vs rate](${chartFile})`,
    '',
  ];
}

function cpuChart(r: Results): string {
  const c = r.cpu!;
  const rates = c.options.rates;
  const med = (xs: number[]) => xs.filter(Number.isFinite).sort((a, b) => a - b)[xs.length >> 1] ?? null;
  return lineChart({
    title: 'CPU ms per 1000 round trips (both sides) vs rate',
    xLabel: 'round trips per second',
    yLabel: 'CPU ms per 1000 round trips',
    xs: rates,
    logY: false,
    series: c.paths.map((p) => ({
      name: p.id,
      dashed: p.id === 'net',
      ys: rates.map((rate) => med((c.rows[p.id]?.[rate] ?? []).map((x) => x.benchMs + x.echoMs))),
    })),
  });
}

function otherSections(r: Results): string[] {
  const out: string[] = [];
  if (r.arena) {
    out.push('### Arena alloc + free', '', `Pairs of \`alloc(size)\` + \`free()\` in one process, timed in batches of ${r.arena.options.batch} (one clock read per batch), ${r.arena.options.batches} batches per size:`, '');
    const a = r.arena;
    out.push(
      markdownTable(
        ['size', 'one process, median', 'p99', 'with a peer allocating, median', 'p99'],
        [
          ...Object.entries(a.pairs).map(([s, x]) => [sizeLabel(Number(s)), us(x.median), us(x.p99), us(a.withPeer?.[s]?.median), us(a.withPeer?.[s]?.p99)]),
          ...(a.tracked ? [['256 B, `trackLeaks: true`', us(a.tracked.median), us(a.tracked.p99), '', '']] : []),
        ],
      ),
      '',
    );
    if (a.peerOpsPerSecond) out.push(`The peer did ${fmt(a.peerOpsPerSecond / 1e6)} M alloc-or-free operations per second meanwhile (random 16…4112-byte blocks).`, '');
    if (a.growMs) out.push(`The first \`alloc(${sizeLabel(a.options.growBytes)})\` in a fresh arena (a new segment, its pages reserved with \`posix_fallocate\`, blocking the event loop): ${fmt(a.growMs)} ms.`, '');
  }
  if (r.sessions) {
    const s = r.sessions;
    out.push('### Sessions', '');
    out.push(
      `Open: \`ClientSession.connect()\` in the bench against a \`SessionServer\` in a peer process, until the session is open on both sides ` +
        `(the later of the client's promise and the server's \`'session'\` event, on the shared monotonic clock); each open followed by a graceful close; ` +
        `${s.options.opens} opens after ${s.options.warmup} warm-up, interleaved with the baseline: a \`net\` connect to a Unix socket in the same peer plus one 64-byte round trip.`,
      '',
    );
    out.push(
      markdownTable(['measure', 'median', 'p99'], [
        ['session open, both sides', `${fmt(s.open.both.median / 1000)} ms`, `${fmt(s.open.both.p99 / 1000)} ms`],
        ['… client side only', `${fmt(s.open.client.median / 1000)} ms`, `${fmt(s.open.client.p99 / 1000)} ms`],
        ['`net` connect + one 64 B round trip (baseline)', `${fmt(s.open.net.median / 1000)} ms`, `${fmt(s.open.net.p99 / 1000)} ms`],
      ]),
      '',
    );
    out.push(`Idle: a server peer and a client peer, default keep-alive; \`process.cpuUsage()\` of each over ${s.options.windowSeconds} s after ${s.options.settleSeconds} s to settle:`, '');
    out.push(markdownTable(['state', 'server, % of a core', 'client, % of a core'], s.idle.map((x) => [x.state, fmt(x.serverPct, 2), fmt(x.clientPct, 2)])), '');
  }
  if (r.death) {
    const d = r.death;
    out.push('### Peer death detection', '');
    out.push(
      `${d.options.trials} trials: a fresh client process opens a session with a server in the bench process (idle) and a plain \`net\` ` +
        `connection to it; the bench SIGKILLs the client and times, from the kill, the server's \`'hosed'\` (reason \`peer-crashed\`) and ` +
        `the \`net\` socket's EOF — the kernel's own notice of the death, the floor. Both arrive when the kernel closes the dead process's ` +
        `descriptors, after it has torn down its memory (every arena mapping).`,
      '',
    );
    out.push(
      markdownTable(['measure', 'median', 'p99', 'max'], [
        ["SIGKILL → `'hosed'`", `${fmt(d.hosed.median / 1000)} ms`, `${fmt(d.hosed.p99 / 1000)} ms`, `${fmt(d.hosed.max / 1000)} ms`],
        ['SIGKILL → `net` EOF (floor)', `${fmt(d.net.median / 1000)} ms`, `${fmt(d.net.p99 / 1000)} ms`, `${fmt(d.net.max / 1000)} ms`],
        ['per-trial ratio, median', ratio(d.toNet), '', ''],
      ]),
      '',
    );
  }
  if (r.sweep) {
    const w = r.sweep;
    out.push('### Sweep of stale objects', '');
    out.push(
      `${w.objects.toLocaleString('en-US')} session-arena segments named as created by a process that has exited (a real pid and start time), ` +
        `then \`sweepStale({ serverApp })\`: **${fmt(w.sweepMs)} ms** (${fmt((w.sweepMs * 1000) / w.objects)} µs per object; ${w.removed} removed). ` +
        `Creating them took ${fmt(w.createMs)} ms.`,
      '',
    );
  }
  return out;
}

/** The generated part of docs/performance.md. */
export function performanceMarkdown(r: Results): { markdown: string; charts: Record<string, string> } {
  const charts: Record<string, string> = {};
  const source = `bench/results/latest${r.profile === 'full' ? '' : `-${r.profile}`}.json`;
  const out: string[] = [BEGIN, `<!-- generated by bench/report.ts from ${source}: do not edit by hand -->`, '', machineLine(r), ''];
  if (r.profile !== 'full') out.push(`**This is a ${r.profile} run** (fewer sizes and rounds): indicative only.`, '');
  out.push('### Against the targets', '', targetsTable(r), '');
  if (r.rtt) {
    charts['perf-rtt.svg'] = rttChart(r);
    out.push(...rttTables(r, 'perf-rtt.svg'));
  }
  if (r.throughput) {
    charts['perf-throughput.svg'] = barChart({
      title: 'One-way throughput, 64 B messages (median)',
      unit: 'messages per second',
      bars: r.throughput.paths.map((p) => ({ name: p.id, value: r.throughput!.median[p.id] ?? NaN, highlight: p.id === 'net' })),
    });
    out.push(...throughputSection(r, 'perf-throughput.svg'));
  }
  if (r.cpu) {
    charts['perf-cpu.svg'] = cpuChart(r);
    out.push(...cpuSection(r, 'perf-cpu.svg'));
  }
  out.push(...otherSections(r));
  if (r.failures.length) out.push('### Failures in this run', '', ...r.failures.map((f) => `- ${f}`), '');
  if (r.notes.length) out.push('Notes: ' + r.notes.slice(0, 10).join('; '), '');
  out.push(END);
  return { markdown: out.join('\n'), charts };
}

/** The generated headline block of README.md. */
export function readmeMarkdown(r: Results): string {
  const h = headline(r);
  const rows = [
    ['64 B round trip, default settings', us(h.cell('shm', 64)?.median), ratio(h.rat('shm', 64, 'net'))],
    ['64 B, every message wakes the peer (`spinMicros: 0`)', us(h.cell('shm-park', 64)?.median), ratio(h.rat('shm-park', 64, 'net'))],
    ['64 B, spin mode', us(h.cell('shm-spin', 64)?.median), ratio(h.rat('shm-spin', 64, 'net'))],
  ];
  if (h.largest !== undefined) {
    rows.push([`${sizeLabel(h.largest)} block by handle`, us(h.cell('shm-handle-t', h.largest)?.median), ratio(h.rat('shm-handle-t', h.largest, 'net'))]);
    rows.push([`${sizeLabel(h.largest)} copied, receiver reads every byte`, us(h.cell('shm', h.largest)?.median), ratio(h.rat('shm', h.largest, 'net'))]);
  }
  if (r.throughput) rows.push(['64 B one-way throughput, messages/s', Math.round(r.throughput.median.shm ?? NaN).toLocaleString('en-US'), ratio(r.throughput.toNet.shm)]);
  if (r.sessions) rows.push(['session open, both sides', `${fmt(r.sessions.open.both.median / 1000)} ms`, ratio(r.sessions.open.toNet)]);
  if (h.arenaSmall !== undefined) rows.push(['arena alloc + free (16 B … 64 KiB, worst median)', us(h.arenaSmall), '']);
  return [
    README_BEGIN,
    '<!-- generated by bench/report.ts (npm run bench): do not edit by hand -->',
    markdownTable(['measure (median)', 'shmx', 'ratio to Node `net` (same run)'], rows),
    '',
    `${machineLine(r)} All figures, the method and the other paths: [docs/performance.md](docs/performance.md).`,
    README_END,
  ].join('\n');
}

function replaceBetween(text: string, begin: string, end: string, block: string): string | undefined {
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) return undefined;
  return text.slice(0, a) + block + text.slice(b + end.length);
}

/** Rewrites the generated parts of docs/performance.md and README.md, and the charts beside them. */
export function writeReport(r: Results, root: string): void {
  const { markdown, charts } = performanceMarkdown(r);
  const perfPath = join(root, 'docs', 'performance.md');
  const perf = readFileSync(perfPath, 'utf8');
  writeFileSync(perfPath, replaceBetween(perf, BEGIN, END, markdown) ?? `${perf.trimEnd()}\n\n${markdown}\n`);
  for (const [file, svg] of Object.entries(charts)) writeFileSync(join(root, 'docs', file), svg);
  const readmePath = join(root, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const updated = replaceBetween(readme, README_BEGIN, README_END, readmeMarkdown(r));
  if (updated === undefined) process.stderr.write(`README.md has no ${README_BEGIN} … ${README_END} block: not updated\n`);
  else writeFileSync(readmePath, updated);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const file = process.argv[2] ?? join(root, 'bench', 'results', 'latest.json');
  writeReport(JSON.parse(readFileSync(file, 'utf8')) as Results, root);
  process.stderr.write(`wrote docs/performance.md, README.md and docs/perf-*.svg from ${file}\n`);
}
