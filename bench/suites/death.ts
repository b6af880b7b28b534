/**
 * Peer death: from a client's SIGKILL to the server's `'hosed'` (reason `peer-crashed`), with the server idle in
 * the bench process — and, from the same killed process in the same trial, the raw floor: a plain `net`
 * connection over a Unix socket reaching EOF in the same bench process. Both learn of the death the same way
 * (the kernel closes the dead process's descriptors in `do_exit`, after tearing down its memory), so the ratio
 * says what shmx adds on top of the kernel: the master socket's `'end'`, the fault and the sweep before
 * `'hosed'`.
 *
 * Each trial: a fresh client peer connects a session and a `net` socket, says ready; the bench takes the clock,
 * SIGKILLs it, and waits for both events (CLOCK_MONOTONIC via process.hrtime.bigint()). Which of the two the
 * event loop runs first varies; each is timed from the same SIGKILL.
 */
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';

import { ClientSession, SessionServer, Universe, type Session } from '../../dist/index.js';
import type { Checks } from '../checks.js';
import { heartbeat } from '../checks.js';
import { Keyed, newApps, Peer, progress, runDir, silentLogger, uniqueName } from '../harness.js';
import type { RoleServed } from '../peer.js';
import { median, Recorder, type Summary } from '../stats.js';

interface DeathConfig {
  definition: ConstructorParameters<typeof Universe>[0];
  serverApp: string;
  clientApp: string;
  netPath: string;
}

/** The victim: one session and one `net` connection to the bench, then nothing until SIGKILL. */
async function deathClient(config: DeathConfig): Promise<RoleServed> {
  const universe = new Universe(config.definition);
  const session = await ClientSession.connect({ universe, clientApp: config.clientApp, serverApp: config.serverApp });
  const socket = net.connect(config.netPath);
  await once(socket, 'connect');
  socket.write(`${session.number}\n`); // tells the bench which session this connection belongs to
  return {
    info: { session: session.number },
    async close() {
      socket.destroy();
      await session.close();
    },
  };
}

/** The roles a peer can run for this suite (see peer.ts). */
export const DEATH_ROLES: Record<string, (config: never) => Promise<RoleServed>> = {
  'death-client': deathClient,
};

export interface DeathOptions {
  trials: number;
}

export interface DeathResult {
  options: DeathOptions;
  /** SIGKILL → the server's 'hosed' (µs). */
  hosed: Summary;
  /** SIGKILL → EOF on a plain `net` connection from the same process (µs): the floor. */
  net: Summary;
  /** Median of the per-trial ratios hosed / net EOF. */
  toNet: number;
}

export async function runDeath(o: DeathOptions, checks: Checks): Promise<DeathResult> {
  const apps = newApps();
  const netPath = join(runDir(), `${uniqueName('k')}.sock`);
  const server = await SessionServer.start({ universe: new Universe(apps.definition), serverApp: apps.serverApp, logger: silentLogger });
  const sessions = new Keyed<Session>();
  server.on('session', (s: Session) => sessions.put(s.number, s));
  const sockets = new Keyed<net.Socket>();
  const listener = net.createServer((socket) => {
    socket.on('error', () => {});
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      socket.off('data', onData);
      socket.resume(); // keep reading so that EOF is seen
      sockets.put(Number(text.slice(0, nl)), socket);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => listener.listen(netPath, resolve));
  const hosed = new Recorder();
  const floor = new Recorder();
  const pairs: number[] = [];
  try {
    for (let i = 0; i < o.trials; i++) {
      progress(`death  trial ${i + 1}/${o.trials}`);
      heartbeat.what = 'peer death';
      const peer = await Peer.start('death-client', { ...apps, netPath });
      const number = (peer.info as { session: number }).session;
      const [session, socket] = await Promise.all([sessions.take(number), sockets.take(number)]);
      const sawHosed = new Promise<{ at: bigint; reason: string }>((resolve) =>
        session.once('hosed', (err: { reason?: string }) => resolve({ at: process.hrtime.bigint(), reason: String(err.reason) })));
      const sawEof = new Promise<bigint>((resolve) => socket.once('end', () => resolve(process.hrtime.bigint())));
      // Let the event loop go idle: the server side is waiting, as an idle server would.
      await new Promise((r) => setTimeout(r, 20));
      const killedAt = process.hrtime.bigint();
      await peer.kill();
      const [h, eof] = await Promise.all([sawHosed, sawEof]);
      socket.destroy();
      heartbeat.beats++;
      if (h.reason !== 'peer-crashed') checks.fail(`peer death: 'hosed' with reason ${h.reason}, expected peer-crashed`);
      hosed.recordNs(Number(h.at - killedAt));
      floor.recordNs(Number(eof - killedAt));
      pairs.push(Number(h.at - killedAt) / Number(eof - killedAt));
    }
  } finally {
    await server.close();
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  }
  if (hosed.count === 0) checks.fail('peer death: no samples');
  return { options: o, hosed: hosed.summary(), net: floor.summary(), toNet: median(pairs) };
}
