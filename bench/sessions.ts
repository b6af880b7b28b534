/**
 * Session benchmark, one run, side by side with Node's own alternative:
 *
 *   1. Session open time: `ClientSession.connect()` in this process, the `SessionServer` in a child process;
 *      open = from the call to the moment the session is open on BOTH sides (the later of the client's promise
 *      resolving and the server's 'session' event). Each open is followed by a graceful close. Baseline in the
 *      same run, interleaved with the opens: a bare `net` Unix-socket connect + one 64-byte request/response on
 *      a fresh connection to an echo server in the same child.
 *      Also reported: how many segments of the closed sessions each side still maps (unlinked, but in RAM until
 *      a major GC collects their SharedArrayBuffers).
 *   2. Idle CPU: a fresh server child and a client child with 0 sessions (baseline), 100 idle sessions
 *      (default keep-alive), 100 idle sessions with one idle shm channel each, and the 100 sessions again
 *      with the channels closed (shows drift over time); CPU of each process over a window after a settling
 *      time, from /proc/<pid>/stat utime+stime (plus schedstat ns and event-loop thread context switches).
 *
 *   npx tsx bench/sessions.ts [--quick] [--opens N] [--window SECONDS] [--settle SECONDS] [--sessions N]
 *
 * Defaults: 300 opens (quick 50), 10 s windows (quick 5), 15 s to settle before each window (quick 2), 100
 * sessions (at most the server's default maxSessions, 128).
 *
 * Prints markdown tables with the machine line. Everything it creates in /dev/shm belongs to a server app
 * named for this run; sessions and the server are closed gracefully, the children are killed in `finally` if
 * they are still there, and whatever is left of this run's app is removed — also on error and SIGINT/SIGTERM —
 * and reported.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ClientSession, SessionServer, Universe, type Channel, type Session } from '../dist/index.js';
import { native } from '../dist/native.js';
import { fmt, machine, markdownTable, summarize } from './stats.js';

type Definition = ConstructorParameters<typeof Universe>[0];
interface ChildConfig {
  definition: Definition;
  serverApp: string;
  clientApp: string;
  netPath: string;
}
type Reply = { id: number; ok: true; value?: unknown } | { id: number; ok: false; error: string };

const MESSAGE = 64;

// =============================================================================================== children

/** Answers numbered requests from the parent over the IPC channel; the handler's value goes back. */
function serveRequests(handler: (cmd: string, arg: unknown) => Promise<unknown>): void {
  process.on('message', (m: { id: number; cmd: string; arg?: unknown }) => {
    handler(m.cmd, m.arg).then(
      (value) => process.send!({ id: m.id, ok: true, value } satisfies Reply),
      (err: Error) => process.send!({ id: m.id, ok: false, error: err?.stack ?? String(err) } satisfies Reply),
    );
  });
}

/** Values keyed by session number, each taken once: at once when already put, else when it is. */
class Events<T> {
  private readonly values = new Map<number, T>();
  private readonly waiters = new Map<number, (v: T) => void>();
  put(n: number, v: T): void {
    const w = this.waiters.get(n);
    if (w) {
      this.waiters.delete(n);
      w(v);
    } else this.values.set(n, v);
  }
  take(n: number): Promise<T> {
    const v = this.values.get(n);
    if (v !== undefined) {
      this.values.delete(n);
      return Promise.resolve(v);
    }
    return new Promise((resolve) => this.waiters.set(n, resolve));
  }
}

/** The server child: a SessionServer with default keep-alive, and a `net` echo server for the baseline. */
async function serverChild(config: ChildConfig): Promise<void> {
  const server = await SessionServer.start({ universe: new Universe(config.definition), serverApp: config.serverApp });
  // Per session number: when its 'session' event fired (hrtime ns) and why it closed, each handed to whoever
  // asks for it over IPC (now, or as soon as it is known).
  const opened = new Events<string>();
  const closed = new Events<string>();
  const reasons: Record<string, number> = {};
  let channels = 0;
  server.on('session', (session: Session) => {
    const t = process.hrtime.bigint(); // first thing: the moment the session is open on this side
    opened.put(session.number, t.toString());
    session.on('channel', (channel: Channel) => {
      channels++;
      channel.once('close', () => channels--);
    });
    session.once('close', (reason) => {
      reasons[reason] = (reasons[reason] ?? 0) + 1;
      closed.put(session.number, reason);
    });
  });
  const echo = net.createServer((socket) => {
    socket.on('data', (chunk) => socket.write(chunk));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => echo.listen(config.netPath, resolve));

  let shutdown: Promise<void> | undefined;
  const close = () =>
    (shutdown ??= (async () => {
      await server.close();
      await new Promise<void>((resolve) => echo.close(() => resolve()));
    })());
  serveRequests(async (cmd, arg) => {
    switch (cmd) {
      case 'opened': // hrtime (ns, as a string) of session `arg`'s 'session' event
        return opened.take(arg as number);
      case 'closed': // close reason of session `arg`, once its server side has closed
        return closed.take(arg as number);
      case 'reasons':
        return reasons;
      case 'count':
        return { sessions: server.openSessions.length, channels };
      case 'close':
        await close();
        return null;
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  });
  process.on('disconnect', () => void close().finally(() => process.exit(0)));
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => void close().finally(() => process.exit(0)));
  process.send!({ ready: true });
}

/** The client child of the idle measurement: opens sessions (and channels) on command and holds them idle. */
async function clientChild(config: ChildConfig): Promise<void> {
  const universe = new Universe(config.definition);
  const sessions: Session[] = [];
  const closeAll = async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  };
  serveRequests(async (cmd, arg) => {
    switch (cmd) {
      case 'open':
        for (let i = 0; i < (arg as number); i++) {
          sessions.push(await ClientSession.connect({ universe, clientApp: config.clientApp, serverApp: config.serverApp }));
        }
        return sessions.length;
      case 'channels':
        await Promise.all(sessions.map((s) => s.openChannel({ metadata: { idle: true } })));
        return sessions.reduce((n, s) => n + s.channels.length, 0);
      case 'close-channels':
        for (const s of sessions) for (const c of [...s.channels]) c.close();
        return null;
      case 'close':
        await closeAll();
        return null;
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  });
  process.on('disconnect', () => void closeAll().finally(() => process.exit(0)));
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => void closeAll().finally(() => process.exit(0)));
  process.send!({ ready: true });
}

// ================================================================================================= parent

const quick = process.argv.includes('--quick');
function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const children = new Set<ChildProcess>();
const localSessions = new Set<Session>();
let runDirectory: string | undefined;
let serverAppName: string | undefined;

/** A child process running this file in `role`, with a request/reply helper over its IPC channel. */
class Child {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private constructor(readonly role: string, readonly process: ChildProcess) {
    process.on('message', (m: Reply | { ready: true }) => {
      if ('ready' in m) return;
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(new Error(`${role}: ${m.error}`));
    });
    process.once('exit', (code, signal) => {
      for (const w of this.waiting.values()) w.reject(new Error(`${role} exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  static async start(role: 'server' | 'client', config: ChildConfig): Promise<Child> {
    const proc = fork(fileURLToPath(import.meta.url), [role, JSON.stringify(config)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(proc);
    await new Promise<void>((resolve, reject) => {
      proc.once('message', () => resolve());
      proc.once('exit', (code, signal) => reject(new Error(`${role} exited (${code ?? signal}) before ready`)));
    });
    return new Child(role, proc);
  }

  get pid(): number {
    return this.process.pid!;
  }

  request<T>(cmd: string, arg?: unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.process.send({ id, cmd, arg });
    });
  }

  /** Graceful: asks the child to close what it holds, then lets it exit (disconnect); SIGKILL after `ms`. */
  async stop(ms = 5000): Promise<void> {
    const proc = this.process;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
    try {
      await Promise.race([this.request('close'), exited]);
      if (proc.connected) proc.disconnect();
      await exited;
    } catch {
      proc.kill('SIGKILL');
      await exited;
    } finally {
      clearTimeout(timer);
      children.delete(proc);
    }
  }
}

// ------------------------------------------------------------------------------------------ open time

interface OpenResults {
  both: number[]; // ms, connect() call -> open on both sides
  client: number[]; // ms, connect() call -> client promise resolved
  serverLag: number[]; // µs, server 'session' event minus client resolve (negative: server first)
  net: number[]; // ms, net.connect() call -> 64 B echoed back
}

async function openOnce(universe: Universe, config: ChildConfig, server: Child, out: OpenResults | null): Promise<void> {
  const t0 = process.hrtime.bigint();
  const session = await ClientSession.connect({ universe, clientApp: config.clientApp, serverApp: config.serverApp });
  const t1 = process.hrtime.bigint();
  localSessions.add(session);
  // Close only once the server side is open too: a close racing the server's READY handling is another
  // measure (and the server would see it as a crash, see docs/performance.md).
  const ts = BigInt(await server.request<string>('opened', session.number));
  const serverClosed = server.request<string>('closed', session.number);
  await session.close();
  localSessions.delete(session);
  await serverClosed; // the next open starts with both sides idle
  if (out) {
    const end = ts > t1 ? ts : t1;
    out.both.push(Number(end - t0) / 1e6);
    out.client.push(Number(t1 - t0) / 1e6);
    out.serverLag.push(Number(ts - t1) / 1e3);
  }
}

const payload = Buffer.alloc(MESSAGE, 0x5a);

async function netOnce(path: string, out: OpenResults | null): Promise<void> {
  const t0 = process.hrtime.bigint();
  const socket = net.connect(path);
  socket.setNoDelay?.(true);
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    socket.once('error', reject);
    socket.once('connect', () => socket.write(payload));
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got >= MESSAGE) resolve();
    });
  });
  const t1 = process.hrtime.bigint();
  const closed = once(socket, 'close');
  socket.end();
  await closed;
  if (out) out.net.push(Number(t1 - t0) / 1e6);
}

async function measureOpens(universe: Universe, config: ChildConfig, server: Child, n: number, warmup: number) {
  for (let i = 0; i < warmup; i++) {
    await openOnce(universe, config, server, null);
    await netOnce(config.netPath, null);
  }
  const out: OpenResults = { both: [], client: [], serverLag: [], net: [] };
  for (let i = 0; i < n; i++) {
    // Interleaved, alternating which goes first, so that other load falls on both alike.
    if (i % 2 === 0) {
      await openOnce(universe, config, server, out);
      await netOnce(config.netPath, out);
    } else {
      await netOnce(config.netPath, out);
      await openOnce(universe, config, server, out);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------- idle CPU

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // sysconf(_SC_CLK_TCK) is 100 on Linux
}

interface CpuSample {
  at: bigint; // hrtime ns
  ticks: number; // utime + stime of the whole process (all threads), clock ticks
  ns: number; // sum of sum_exec_runtime over its threads (/proc/<pid>/task/*/schedstat), ns
  switches: number; // context switches of the main (event-loop) thread
}

function cpuSample(pid: number): CpuSample {
  const at = process.hrtime.bigint();
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
  const ticks = Number(fields[11]) + Number(fields[12]); // fields 14 utime, 15 stime
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // thread ended
    }
  }
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  const count = (key: string) => Number(new RegExp(`^${key}:\\s*(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { at, ticks, ns, switches: count('voluntary_ctxt_switches') + count('nonvoluntary_ctxt_switches') };
}

interface CpuUse {
  percent: number; // % of one core, from ticks
  ticks: number;
  percentNs: number; // % of one core, from schedstat
  wakeups: number; // main-thread context switches per second
}

function cpuBetween(a: CpuSample, b: CpuSample): CpuUse {
  const seconds = Number(b.at - a.at) / 1e9;
  const ticks = b.ticks - a.ticks;
  return {
    percent: ((ticks / clockTicks) / seconds) * 100,
    ticks,
    percentNs: ((b.ns - a.ns) / 1e9 / seconds) * 100,
    wakeups: (b.switches - a.switches) / seconds,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measureIdle(server: Child, client: Child, windowMs: number) {
  const a = [cpuSample(server.pid), cpuSample(client.pid)];
  await sleep(windowMs);
  const b = [cpuSample(server.pid), cpuSample(client.pid)];
  return {
    server: cpuBetween(a[0]!, b[0]!),
    client: cpuBetween(a[1]!, b[1]!),
    windowMs: Number(b[0]!.at - a[0]!.at) / 1e6,
    shm: shmUse(),
  };
}

/** Mappings of this run's segments whose names are already unlinked, in process `pid` (from /proc/<pid>/maps). */
function unlinkedMappings(pid: number): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const path = line.split(/\s+/).slice(5).join(' ');
    if (!path.startsWith(`/dev/shm/shmx.`) || path.split('.')[2] !== serverAppName || !path.endsWith('(deleted)')) continue;
    const [from, to] = line.split(' ')[0]!.split('-').map((h) => parseInt(h, 16));
    count++;
    bytes += to! - from!;
  }
  return { count, bytes };
}

/** Segments of this run in /dev/shm and the bytes reserved for them (allocated blocks). */
function shmUse(): { segments: number; bytes: number } {
  let bytes = 0;
  const names = leftovers();
  for (const name of names) {
    try {
      bytes += statSync(`/dev/shm/${name}`).blocks * 512;
    } catch {
      // removed meanwhile
    }
  }
  return { segments: names.length, bytes };
}

async function waitFor(server: Child, sessions: number, channels: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const c = await server.request<{ sessions: number; channels: number }>('count');
    if (c.sessions === sessions && c.channels === channels) return;
    await sleep(10);
  }
  throw new Error(`server did not reach ${sessions} sessions / ${channels} channels`);
}

// ------------------------------------------------------------------------------------------- cleanup

/** This run's objects in /dev/shm (every name of this run's server app). */
function leftovers(): string[] {
  if (serverAppName === undefined) return [];
  return native.shmList('shmx.').filter((name) => name.split('.')[2] === serverAppName);
}

/** Last resort, synchronous: kill children, remove this run's objects and socket directory. */
function hardCleanup(): string[] {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  const left = leftovers();
  for (const name of left) native.shmUnlink(name);
  if (runDirectory) rmSync(runDirectory, { recursive: true, force: true });
  runDirectory = undefined;
  return left;
}

// ----------------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const opens = arg('opens', quick ? 50 : 300);
  const warmup = quick ? 10 : 30;
  const windowMs = arg('window', quick ? 5 : 10) * 1000;
  // Long enough for V8's memory reducer GC after start-up and for the keep-alive path to be optimised: the
  // first ~15 s after 100 sessions open cost about twice the steady state.
  const settleMs = arg('settle', quick ? 2 : 15) * 1000;
  const idleSessions = arg('sessions', 100);

  const tag = `b${process.pid.toString(36)}`;
  serverAppName = `ssrv${tag}`;
  runDirectory = mkdtempSync(join(tmpdir(), 'shmx-bench-'));
  const config: ChildConfig = {
    definition: {
      apps: [{ name: `scli${tag}` }],
      servers: [{ name: serverAppName, acceptedClients: [`scli${tag}`], runDirectory }],
    },
    serverApp: serverAppName,
    clientApp: `scli${tag}`,
    netPath: join(runDirectory, 'echo.sock'),
  };
  const universe = new Universe(config.definition);
  const m = machine();
  let code = 'unknown';
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'native'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    code = `${head}${dirty ? ' + uncommitted changes in src/ or native/' : ''}`;
  } catch {
    // not a git checkout
  }
  const lines: string[] = [];
  lines.push(`Machine: ${m.nproc} vCPU, ${m.cpu}, Linux ${m.kernel}, Node ${m.node}. ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}. Code: ${code}.`, '');

  let server: Child | undefined;
  let client: Child | undefined;
  try {
    // ---- 1. open time
    server = await Child.start('server', config);
    process.stderr.write(`open time: ${warmup} warm-up + ${opens} opens, interleaved with net...\n`);
    const r = await measureOpens(universe, config, server, opens, warmup);
    const both = summarize(r.both);
    const clientOnly = summarize(r.client);
    const netS = summarize(r.net);
    const lag = summarize(r.serverLag);
    const serverLast = r.serverLag.filter((v) => v > 0).length;
    lines.push(`Session open, ${opens} opens (after ${warmup} warm-up), each followed by a graceful close; server in a child ` +
      'process, client in the bench process; interleaved with the baseline:', '');
    lines.push(markdownTable(['measure', 'n', 'median ms', 'p99 ms', 'median / net'], [
      ['session open, both sides (`connect()` → later of client resolve and server `session` event)', both.count,
        fmt(both.median), fmt(both.p99), `${fmt(both.median / netS.median, 2)}×`],
      ['… client side only (`connect()` → resolved)', clientOnly.count, fmt(clientOnly.median), fmt(clientOnly.p99),
        `${fmt(clientOnly.median / netS.median, 2)}×`],
      ['`net` Unix-socket connect + one 64 B request/response, fresh connection (baseline)', netS.count,
        fmt(netS.median), fmt(netS.p99), '1.0×'],
    ]), '');
    const reasons = await server.request<Record<string, number>>('reasons');
    lines.push(`Server \`session\` event after the client's resolve: median ${fmt(lag.median)} µs (p99 ${fmt(lag.p99)}); ` +
      `the server side was the later one in ${serverLast} of ${r.serverLag.length} opens. Close reasons seen by the server: ` +
      `${Object.entries(reasons).map(([k, v]) => `${k} ${v}`).join(', ')}.`, '');
    const retained = [unlinkedMappings(server.pid), unlinkedMappings(process.pid)];
    lines.push(`After these ${warmup + opens} closed sessions (every name already unlinked), still mapped — so still in RAM ` +
      `until a major GC collects their SharedArrayBuffers: server ${retained[0]!.count} segments, ` +
      `${fmt(retained[0]!.bytes / 2 ** 20, 3)} MiB; client ${retained[1]!.count} segments, ${fmt(retained[1]!.bytes / 2 ** 20, 3)} MiB.`, '');
    await server.stop();
    server = undefined;
    const leftAfterOpens = leftovers();
    if (leftAfterOpens.length > 0) lines.push(`LEFT in /dev/shm after the open-time server closed: ${leftAfterOpens.join(', ')}`, '');

    // ---- 2. idle CPU, with fresh processes (the open-time server's history — JIT, garbage, retained mappings
    // waiting for GC — would otherwise fall into the baseline window)
    server = await Child.start('server', config);
    client = await Child.start('client', config);
    await sleep(settleMs);
    process.stderr.write(`idle CPU: ${windowMs / 1000} s windows...\n`);
    const baseline = await measureIdle(server, client, windowMs);
    await client.request('open', idleSessions);
    await waitFor(server, idleSessions, 0);
    await sleep(settleMs);
    const withSessions = await measureIdle(server, client, windowMs);
    await client.request('channels');
    await waitFor(server, idleSessions, idleSessions);
    await sleep(settleMs);
    const withChannels = await measureIdle(server, client, windowMs);
    // The same state as row 2 again: what drifts with time (JIT tiering, GC) shows as the difference of rows 2 and 4.
    await client.request('close-channels');
    await waitFor(server, idleSessions, 0);
    await sleep(settleMs);
    const again = await measureIdle(server, client, windowMs);
    await client.request('close');
    await waitFor(server, 0, 0);

    const row = (label: string, x: Awaited<ReturnType<typeof measureIdle>>) => [
      label,
      `${fmt(x.server.percent, 2)} (${x.server.ticks})`,
      `${fmt(x.client.percent, 2)} (${x.client.ticks})`,
      `${fmt(x.server.percentNs, 2)} / ${fmt(x.client.percentNs, 2)}`,
      `${Math.round(x.server.wakeups)} / ${Math.round(x.client.wakeups)}`,
      `${x.shm.segments} / ${fmt(x.shm.bytes / 2 ** 20, 3)} MiB`,
    ];
    lines.push(`Idle CPU, a fresh server child and a client child, ${fmt(baseline.windowMs / 1000, 3)} s window per row after ${settleMs / 1000} s ` +
      `to settle; default keep-alive (ping every 1000 ms, timeout 3000 ms); % of one core (clock ticks at ${clockTicks} Hz):`, '');
    lines.push(markdownTable(
      ['state', 'server CPU % (ticks)', 'client CPU % (ticks)', 'server / client % (schedstat ns)', 'loop wake-ups/s server / client', '/dev/shm segments / reserved'],
      [
        row('0 sessions (baseline)', baseline),
        row(`${idleSessions} idle sessions`, withSessions),
        row(`${idleSessions} idle sessions + 1 idle shm channel each`, withChannels),
        row(`${idleSessions} idle sessions again (channels closed)`, again),
      ],
    ), '');
    const extra = (x: CpuUse, base: CpuUse) => fmt(Math.max(0, x.percentNs - base.percentNs), 2);
    lines.push(`Above baseline (schedstat): ${idleSessions} sessions cost server ${extra(withSessions.server, baseline.server)} % / ` +
      `client ${extra(withSessions.client, baseline.client)} %; with channels server ${extra(withChannels.server, baseline.server)} % / ` +
      `client ${extra(withChannels.client, baseline.client)} %; again without channels server ` +
      `${extra(again.server, baseline.server)} % / client ${extra(again.client, baseline.client)} % of one core.`);

    // ---- shutdown, gracefully
    await client.stop();
    client = undefined;
    await server.stop();
    server = undefined;
    const left = leftovers();
    lines.push('', left.length === 0
      ? 'After graceful shutdown: nothing of this run left in /dev/shm.'
      : `After graceful shutdown, LEFT in /dev/shm: ${left.join(', ')}`);
    console.log(lines.join('\n'));
    if (left.length > 0) process.exitCode = 1;
  } finally {
    for (const s of localSessions) await s.close().catch(() => {});
    await client?.stop().catch(() => {});
    await server?.stop().catch(() => {});
    const left = hardCleanup();
    if (left.length > 0) process.stderr.write(`removed ${left.length} leftover segments of this run (${left.slice(0, 3).join(', ')}, …)\n`);
  }
}

const role = process.argv[2];
if (role === 'server' || role === 'client') {
  const config = JSON.parse(process.argv[3]!) as ChildConfig;
  (role === 'server' ? serverChild(config) : clientChild(config)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      const left = hardCleanup();
      if (left.length > 0) process.stderr.write(`removed ${left.length} leftover segments of this run (${left.slice(0, 3).join(', ')}, …)\n`);
      process.exit(130);
    });
  }
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
