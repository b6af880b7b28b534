/**
 * Sessions: open time and idle CPU.
 *
 * - Open: `ClientSession.connect()` in the bench against a `SessionServer` in a peer process, from the call
 *   until the session is open on BOTH sides — the later of the client's promise and the server's 'session'
 *   event, whose `process.hrtime.bigint()` (CLOCK_MONOTONIC: one clock for every process) the peer hands back
 *   afterwards, off the timed path. Each open is followed by a graceful close, waited for on both sides.
 *   Baseline, interleaved: a `net` connect to a Unix socket in the same peer plus one 64-byte round trip.
 * - Idle: a server peer and a client peer holding 0, then N idle sessions, then N sessions with one idle shm
 *   channel each; process.cpuUsage() of both over a window after a settling time.
 */
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';

import { ClientSession, SessionServer, Universe, type Channel, type Session } from '../../dist/index.js';
import type { Checks } from '../checks.js';
import { heartbeat } from '../checks.js';
import { Keyed, newApps, Peer, progress, runDir, uniqueName } from '../harness.js';
import type { Commands, RoleServed } from '../peer.js';
import { median, Recorder, type Summary } from '../stats.js';

interface AppsConfig {
  definition: ConstructorParameters<typeof Universe>[0];
  serverApp: string;
  clientApp: string;
  netPath?: string;
}

/** A SessionServer (default settings) that reports when sessions open and close, and a `net` echo server. */
async function sessionServer(config: AppsConfig): Promise<RoleServed> {
  const server = await SessionServer.start({ universe: new Universe(config.definition), serverApp: config.serverApp });
  const opened = new Keyed<string>();
  const closed = new Keyed<string>();
  server.on('session', (session: Session) => {
    opened.put(session.number, process.hrtime.bigint().toString()); // first thing: open on this side now
    session.on('channel', () => {});
    session.once('close', (reason) => closed.put(session.number, reason));
  });
  let echo: net.Server | undefined;
  if (config.netPath) {
    echo = net.createServer((socket) => {
      socket.on('data', (chunk) => socket.write(chunk));
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => echo!.listen(config.netPath, resolve));
  }
  const commands: Commands = {
    opened: (n) => opened.take(n as number),
    closed: (n) => closed.take(n as number),
  };
  return {
    commands,
    async close() {
      await server.close();
      if (echo) await new Promise<void>((resolve) => echo!.close(() => resolve()));
    },
  };
}

/** Opens sessions (and channels) on command and holds them idle. */
async function idleClient(config: AppsConfig): Promise<RoleServed> {
  const universe = new Universe(config.definition);
  const sessions: Session[] = [];
  const channels: Channel[] = [];
  const closeAll = async () => {
    for (const c of channels.splice(0)) c.close();
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  };
  return {
    commands: {
      async open(n) {
        for (let i = 0; i < (n as number); i++) {
          sessions.push(await ClientSession.connect({ universe, clientApp: config.clientApp, serverApp: config.serverApp }));
        }
        return sessions.length;
      },
      async channels() {
        channels.push(...(await Promise.all(sessions.map((s) => s.openChannel({ metadata: { idle: true } })))));
        return channels.length;
      },
    },
    close: closeAll,
  };
}

/** The session roles a peer can run (see peer.ts). */
export const SESSION_ROLES: Record<string, (config: never) => Promise<RoleServed>> = {
  'session-server': sessionServer,
  'idle-client': idleClient,
};

// --------------------------------------------------------------------------------------------- bench side

export interface SessionOptions {
  opens: number;
  warmup: number;
  sessions: number;
  settleSeconds: number;
  windowSeconds: number;
}

export interface SessionResult {
  options: SessionOptions;
  open: { both: Summary; client: Summary; net: Summary; toNet: number };
  idle: Array<{ state: string; serverPct: number; clientPct: number }>;
}

const nowNs = () => process.hrtime.bigint();

async function netOnce(path: string, message: Buffer): Promise<bigint> {
  const t0 = nowNs();
  const socket = net.connect(path);
  await once(socket, 'connect');
  socket.write(message);
  let got = 0;
  await new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got >= message.length) resolve();
    }),
  );
  const t = nowNs() - t0;
  socket.destroy();
  return t;
}

async function openTimes(o: SessionOptions, checks: Checks): Promise<SessionResult['open']> {
  const apps = newApps();
  const netPath = join(runDir(), `${uniqueName('o')}.sock`);
  const peer = await Peer.start('session-server', { ...apps, netPath });
  const universe = new Universe(apps.definition);
  const both = new Recorder();
  const client = new Recorder();
  const base = new Recorder();
  const pairs: number[] = [];
  const message = Buffer.alloc(64, 1);
  try {
    for (let i = 0; i < o.warmup + o.opens; i++) {
      progress(`sessions  open ${i + 1}/${o.warmup + o.opens}`);
      heartbeat.what = 'session open';
      const measureOpen = async () => {
        const t0 = nowNs();
        const session = await ClientSession.connect({ universe, clientApp: apps.clientApp, serverApp: apps.serverApp });
        const tClient = nowNs();
        const tServer = BigInt(await peer.request<string>('opened', session.number));
        await session.close();
        const reason = await peer.request<string>('closed', session.number);
        if (reason !== 'peer-closed') checks.note(`session open: server saw close reason ${reason}`);
        return { both: (tServer > tClient ? tServer : tClient) - t0, client: tClient - t0 };
      };
      // Alternate which goes first, so neither always runs on a just-woken machine.
      let open: { both: bigint; client: bigint };
      let baseline: bigint;
      if (i % 2) {
        baseline = await netOnce(netPath, message);
        open = await measureOpen();
      } else {
        open = await measureOpen();
        baseline = await netOnce(netPath, message);
      }
      heartbeat.beats++;
      if (i < o.warmup) continue;
      both.recordNs(Number(open.both));
      client.recordNs(Number(open.client));
      base.recordNs(Number(baseline));
      pairs.push(Number(open.both) / Number(baseline));
    }
  } finally {
    await peer.stop();
  }
  if (both.count === 0) checks.fail('session open: no samples');
  return { both: both.summary(), client: client.summary(), net: base.summary(), toNet: median(pairs) };
}

const cpuSum = (u: NodeJS.CpuUsage) => u.user + u.system;

async function idleCpu(o: SessionOptions, checks: Checks): Promise<SessionResult['idle']> {
  const apps = newApps();
  const server = await Peer.start('session-server', apps);
  const client = await Peer.start('idle-client', apps);
  const rows: SessionResult['idle'] = [];
  const window = async (state: string) => {
    progress(`sessions  idle: ${state} (settle ${o.settleSeconds} s, window ${o.windowSeconds} s)`);
    await new Promise((r) => setTimeout(r, o.settleSeconds * 1000));
    heartbeat.beats++;
    const [s0, c0] = [await server.cpu(), await client.cpu()];
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, o.windowSeconds * 1000));
    const [s1, c1] = [await server.cpu(), await client.cpu()];
    const ms = performance.now() - t0;
    heartbeat.beats++;
    rows.push({
      state,
      serverPct: ((cpuSum(s1) - cpuSum(s0)) / 1000 / ms) * 100,
      clientPct: ((cpuSum(c1) - cpuSum(c0)) / 1000 / ms) * 100,
    });
  };
  try {
    await window('0 sessions (baseline)');
    const opened = await client.request<number>('open', o.sessions);
    if (opened !== o.sessions) checks.fail(`idle: opened ${opened} of ${o.sessions} sessions`);
    await window(`${o.sessions} idle sessions`);
    const channels = await client.request<number>('channels');
    if (channels !== o.sessions) checks.fail(`idle: opened ${channels} of ${o.sessions} channels`);
    await window(`${o.sessions} idle sessions, one idle shm channel each`);
  } finally {
    await client.stop();
    await server.stop();
  }
  return rows;
}

export async function runSessions(o: SessionOptions, checks: Checks): Promise<SessionResult> {
  const open = await openTimes(o, checks);
  const idle = await idleCpu(o, checks);
  return { options: o, open, idle };
}
