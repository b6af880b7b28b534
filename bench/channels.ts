/**
 * Channel benchmark, one run, side by side: round trip for 64 B … 1 GiB payloads over
 *   shmx shm (copying), shmx shm (by handle), shmx mq, shmx socket, Node `net` over a Unix socket,
 *   child_process IPC;
 * the 64 B round trip in spin mode; and small-message one-way throughput. Ratios are to `net`.
 *
 *   npm run build && npx tsx bench/channels.ts [--quick] [--json results.json] [--svg chart.svg]
 *
 * It measures the library as users get it: the compiled dist/ (tsx's on-the-fly transform makes closures
 * noticeably slower).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientSession, Universe, type Channel, type Session } from '../dist/index.js';
import { fmt, machine, markdownTable, summarize } from './stats.js';
import { logLogChart } from './chart.js';

const quick = process.argv.includes('--quick');

const argValue = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const maxSize = Number(argValue('max-size') ?? 2 ** 30);
const spinMicros = argValue('spin-micros') === undefined ? undefined : Number(argValue('spin-micros'));
const SIZES = [64, 4096, 1 << 20, 64 << 20, 1 << 30].filter((s) => s <= maxSize);
const rounds = (size: number) => {
  const r = size <= 64 ? 5000 : size <= 4096 ? 3000 : size <= 1 << 20 ? 200 : size <= 64 << 20 ? 10 : 3;
  return quick ? Math.max(3, Math.ceil(r / 10)) : r;
};
const label = (size: number) =>
  size >= 1 << 30 ? `${size / 2 ** 30} GiB` : size >= 1 << 20 ? `${size / 2 ** 20} MiB` : size >= 1024 ? `${size / 1024} KiB` : `${size} B`;

type Path = 'shm copy' | 'shm handle' | 'mq' | 'socket' | 'net' | 'ipc';
const PATHS: Path[] = ['shm copy', 'shm handle', 'mq', 'socket', 'net', 'ipc'];

async function timeRounds(n: number, once_: () => Promise<void>): Promise<number[]> {
  const warm = Math.min(50, Math.ceil(n / 10));
  for (let i = 0; i < warm; i++) await once_();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await once_();
    samples.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  return samples;
}

class NetClient {
  private pending: { need: number; got: number; resolve: () => void } | undefined;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      const p = this.pending!;
      p.got += chunk.length;
      if (p.got >= p.need) {
        this.pending = undefined;
        p.resolve();
      }
    });
  }
  /** Writes `data`, resolves when `expect` bytes came back. */
  roundTrip(data: Uint8Array, expect = data.byteLength): Promise<void> {
    return new Promise((resolve) => {
      this.pending = { need: expect, got: 0, resolve };
      this.socket.write(data);
    });
  }
}

function ipcRoundTrip(child: ChildProcess, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve());
    child.send(data, (err) => err && reject(err));
  });
}

async function main(): Promise<void> {
  const tag = `b${process.pid.toString(36)}`;
  const runDirectory = mkdtempSync(join(tmpdir(), 'shmx-bench-'));
  const definition = {
    apps: [{ name: `cli${tag}` }],
    servers: [{ name: `srv${tag}`, acceptedClients: [`cli${tag}`], runDirectory }],
  };
  const netPath = join(runDirectory, 'net.sock');
  const peer = fork(fileURLToPath(new URL('./channel-peer.ts', import.meta.url)),
    [JSON.stringify({ definition, serverApp: `srv${tag}`, netPath, spinMicros })],
    { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let session: Session | undefined;
  // Interrupted: close the session (its queues and segments go with it) and stop the peer before leaving.
  const interrupted = () => void (session?.close() ?? Promise.resolve()).finally(() => {
    peer.kill('SIGTERM');
    rmSync(runDirectory, { recursive: true, force: true });
    process.exit(130);
  });
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await once(peer, 'message');
    session = await ClientSession.connect({
      universe: new Universe(definition), clientApp: `cli${tag}`, serverApp: `srv${tag}`,
      channels: spinMicros === undefined ? undefined : { spinMicros },
    });
    const s = session;
    const channels: Record<string, Channel> = {
      'shm copy': await s.openChannel({ metadata: { mode: 'echo' }, ringCapacity: 1 << 20 }),
      'shm handle': await s.openChannel({ metadata: { mode: 'echo' } }),
      mq: await s.openChannel({ transport: 'mq', metadata: { mode: 'echo' } }),
      socket: await s.openChannel({ transport: 'socket', metadata: { mode: 'echo' } }),
    };
    const netSocket = net.connect(netPath);
    await once(netSocket, 'connect');
    const netClient = new NetClient(netSocket);

    // By handle, first and back to back: a handle's round trip does not depend on the payload size, so the
    // series compares sizes under the same conditions — and before the copying sweep below leaves gigabytes of
    // garbage (and GC pauses) behind. The 64 B copying round trip is measured in the same series, as the
    // reference of the "1 GiB by handle ≤ 2 × 64 B" target.
    const handleSeries: Record<string, { median: number; p99: number }> = {};
    const small64 = Buffer.alloc(64, 7);
    const reference = summarize(await timeRounds(rounds(64), async () => void (await channels['shm copy']!.request(small64))));
    for (const size of SIZES) {
      const block = s.sessionArena.alloc(size);
      block.bytes[0] = 1;
      const sum = summarize(await timeRounds(rounds(64), async () => (await channels['shm handle']!.request(block)).release()));
      handleSeries[label(size)] = { median: sum.median, p99: sum.p99 };
      process.stderr.write(`  ${label(size).padEnd(7)} by handle  ${fmt(sum.median)} µs\n`);
      block.release();
    }

    const results: Record<string, Record<Path, { median: number; p99: number } | null>> = {};
    for (const size of SIZES) {
      const payload = Buffer.alloc(size, 7);
      const row = {} as Record<Path, { median: number; p99: number } | null>;
      for (const path of PATHS) {
        if (path === 'shm handle') {
          row[path] = handleSeries[label(size)]!;
          continue;
        }
        const n = rounds(size) / (path === 'ipc' && size >= 64 << 20 ? rounds(size) : 1);
        let op: () => Promise<void>;
        if (path === 'net') op = () => netClient.roundTrip(payload);
        else if (path === 'ipc') op = () => ipcRoundTrip(peer, payload);
        else op = async () => void (await channels[path]!.request(payload));
        try {
          const sum = summarize(await timeRounds(Math.max(1, Math.round(n)), op));
          row[path] = { median: sum.median, p99: sum.p99 };
        } catch (err) {
          process.stderr.write(`${path} ${label(size)}: ${(err as Error).message}\n`);
          row[path] = null;
        }
        process.stderr.write(`  ${label(size).padEnd(7)} ${path.padEnd(10)} ${row[path] ? fmt(row[path]!.median) : 'n/a'} µs\n`);
      }
      results[label(size)] = row;
    }

    // spin mode: both sides poll the ring instead of parking
    const spin = await s.openChannel({ metadata: { mode: 'echo', spin: true }, spin: true });
    const small = Buffer.alloc(64);
    const spinSummary = summarize(await timeRounds(quick ? 2000 : 20000, async () => void (await spin.request(small))));
    // ... and as plain messages: send, and send again from the 'message' handler (no promise per round trip)
    const spinEvents = await new Promise<number[]>((resolve) => {
      const n = quick ? 2000 : 20000;
      const samples: number[] = [];
      let t = 0;
      spin.on('message', () => {
        samples.push(Number(process.hrtime.bigint() - BigInt(t)) / 1000);
        if (samples.length === n + 100) return resolve(samples.slice(100));
        t = Number(process.hrtime.bigint());
        spin.send(small);
      });
      t = Number(process.hrtime.bigint());
      spin.send(small);
    });
    const spinEventSummary = summarize(spinEvents);
    spin.close();

    // one-way throughput of 64 B messages
    const count = quick ? 20_000 : 200_000;
    const throughput: Record<string, number> = {};
    for (const [label, transport, views] of [['shm', 'shm', false], ['shm, message views', 'shm', true], ['socket', 'socket', false]] as const) {
      const c = await s.openChannel({ transport, metadata: { mode: 'count', views }, ringCapacity: 1 << 20 });
      const t0 = performance.now();
      for (let i = 0; i < count; i++) if (!c.send(small)) await c.sendAsync(small);
      const seen = await c.request(Buffer.alloc(1));
      if (Number(Buffer.from(seen.bytes).toString()) !== count) throw new Error(`${transport}: lost messages`);
      throughput[`shmx ${label}`] = count / ((performance.now() - t0) / 1000);
      c.close();
    }
    {
      const t0 = performance.now();
      const header = Buffer.alloc(5);
      header[0] = 0x43;
      header.writeUInt32LE(count * 64, 1);
      netSocket.removeAllListeners('data');
      const done = new Promise<void>((resolve) => netSocket.once('data', () => resolve()));
      netSocket.write(header);
      for (let i = 0; i < count; i++) if (!netSocket.write(small)) await once(netSocket, 'drain');
      await done;
      throughput.net = count / ((performance.now() - t0) / 1000);
    }

    // report
    const m = machine();
    const lines: string[] = [];
    lines.push(`Machine: ${m.nproc} vCPU, ${m.cpu}, Linux ${m.kernel}, Node ${m.node}. ${new Date().toISOString().slice(0, 10)}.`, '');
    lines.push('Round trip (request → echo → reply), median µs (p99), ratio of medians to `net`:', '');
    const headers = ['payload', ...PATHS.map((p) => (p === 'net' ? 'Node net (baseline)' : p === 'ipc' ? 'child_process IPC' : `shmx ${p}`))];
    const rows = Object.entries(results).map(([size, row]) => [
      size,
      ...PATHS.map((p) => {
        const r = row[p];
        const base = row.net;
        if (r === null) return 'n/a';
        const ratio = base ? ` ×${fmt(r.median / base.median, 2)}` : '';
        return `${fmt(r.median)} (${fmt(r.p99)})${p === 'net' ? '' : ratio}`;
      }),
    ]);
    lines.push(markdownTable(headers, rows), '');
    const net64 = results['64 B']!.net!.median;
    lines.push(`Spin mode, 64 B round trip: ${fmt(spinEventSummary.median)} µs median (p99 ${fmt(spinEventSummary.p99)}) as ` +
      `send + 'message', ${fmt(spinSummary.median)} µs (p99 ${fmt(spinSummary.p99)}) as await request(); ` +
      `×${fmt(spinEventSummary.median / net64, 3)} and ×${fmt(spinSummary.median / net64, 3)} of net.`, '');
    lines.push('One-way throughput, 64 B messages:', '');
    lines.push(markdownTable(['path', 'messages/s', 'ratio to net'],
      Object.entries(throughput).map(([k, v]) => [k, Math.round(v).toLocaleString('en-US'), fmt(v / throughput.net!, 2)])));
    const handle1g = handleSeries['1 GiB'];
    if (handle1g) {
      lines.push('', `By-handle series (measured first, back to back): 64 B copying round trip ${fmt(reference.median)} µs; ` +
        `1 GiB by handle ${fmt(handle1g.median)} µs: ×${fmt(handle1g.median / reference.median, 2)}.`);
    }
    const report = lines.join('\n');
    console.log(report);
    const jsonPath = argValue('json');
    if (jsonPath) writeFileSync(jsonPath, JSON.stringify({ machine: m, results, handleSeries, reference, spin: spinSummary, spinEvents: spinEventSummary, throughput }, null, 2));
    const svgPath = argValue('svg');
    if (svgPath) {
      writeFileSync(svgPath, logLogChart({
        title: 'Round trip vs payload (median, log-log)',
        xLabel: 'payload bytes',
        yLabel: 'µs',
        xs: SIZES,
        series: PATHS.map((p) => ({
          name: p === 'net' ? 'Node net' : p === 'ipc' ? 'child_process IPC' : `shmx ${p}`,
          ys: SIZES.map((size) => results[label(size)]![p]?.median ?? null),
        })),
      }));
    }
    netSocket.destroy();
  } finally {
    await session?.close();
    peer.kill('SIGTERM');
    await once(peer, 'exit');
    rmSync(runDirectory, { recursive: true, force: true });
  }
}

await main();
