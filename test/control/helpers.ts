/**
 * A live server for the control tests: channel-peer.ts as the server process, control-traffic.ts clients
 * keeping requests flowing on every transport, the `shmx` command as a real process, and a raw line client.
 */
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { Child, repoRoot } from '../helpers/child.js';
import { testUniverse } from '../helpers/universe.js';
import { controlSocketPath, listResources, type TransportKind } from '../../src/index.js';

export interface LiveServer {
  server: Child;
  clients: Child[];
  serverApp: string;
  runDirectory: string;
  controlPath: string;
  sessionIds: string[];
  /** Round trips completed so far by each client (asks them). */
  roundTrips(): Promise<number[]>;
  stop(): Promise<void>;
}

export async function liveServer(options: { serverOptions?: Record<string, unknown>; clients?: number; transports?: TransportKind[] } = {}): Promise<LiveServer> {
  const { definition, serverApp, clientApp } = testUniverse();
  const runDirectory = definition.servers[0]!.runDirectory!;
  const server = new Child('channel-peer.ts', [JSON.stringify({ definition, serverApp, options: options.serverOptions ?? {} })]);
  const clients: Child[] = [];
  const stop = async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await server.stop();
    rmSync(runDirectory, { recursive: true, force: true });
    const left = listResources(serverApp);
    if (left.length > 0) throw new Error(`left behind: ${left.map((r) => r.name).join(', ')}`);
  };
  try {
    await server.waitFor('listening', () => true, 45_000);
    for (let i = 0; i < (options.clients ?? 2); i++) {
      const transports = options.transports ?? ['shm', 'socket', 'mq'];
      clients.push(new Child('control-traffic.ts', [JSON.stringify({ definition, clientApp, serverApp, transports })]));
    }
    const ready = await Promise.all(clients.map((c) => c.waitFor('ready', () => true, 45_000)));
    return {
      server, clients, serverApp, runDirectory, controlPath: controlSocketPath(runDirectory, serverApp),
      sessionIds: ready.map((e) => e['id'] as string),
      async roundTrips() {
        const seen = clients.map((c) => c.events.filter((e) => e.event === 'stats').length);
        clients.forEach((c) => c.send({ cmd: 'stats' }));
        const stats = await Promise.all(clients.map((c, i) => c.waitFor('stats', () => c.events.filter((e) => e.event === 'stats').length > seen[i]!)));
        return stats.map((s) => s['roundTrips'] as number);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Runs `shmx …` as its own process. */
export function shmx(args: string[], timeoutMs = 60_000): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: repoRoot, encoding: 'utf8', timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = (err as (Error & { code?: unknown }) | null)?.code;
        resolve({ status: err === null ? 0 : typeof code === 'number' ? code : -1, stdout, stderr });
      });
  });
}

/** A control connection that speaks raw lines: what a buggy or hostile client can do. */
export class RawControl {
  readonly lines: Array<Record<string, any>> = [];
  readonly closed: Promise<void>;
  private readonly socket: Socket;
  private waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    let rest = '';
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      rest += text;
      let nl;
      while ((nl = rest.indexOf('\n')) >= 0) {
        this.lines.push(JSON.parse(rest.slice(0, nl)) as Record<string, any>);
        rest = rest.slice(nl + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => {});
    this.closed = new Promise((r) => socket.once('close', () => {
      r();
      for (const w of this.waiters.splice(0)) w();
    }));
  }

  static open(path: string): Promise<RawControl> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new RawControl(socket)));
      socket.once('error', reject);
    });
  }

  /**
   * A connection the server surely admitted: while the busy budget is spent (the whole suite loads the machine),
   * the server drops new connections without a word — so ask once and retry until answered.
   */
  static async admitted(path: string): Promise<RawControl> {
    for (let attempt = 0; attempt < 40; attempt++) {
      const raw = await RawControl.open(path);
      raw.write(`${JSON.stringify({ id: '__admitted', command: 'status' })}\n`);
      const [first] = await raw.waitLines(1, 5_000);
      if (first?.id === '__admitted') {
        raw.lines.length = 0;
        return raw;
      }
      raw.close();
      await raw.closed;
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error(`the control socket ${path} admitted no connection in 40 attempts`);
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** Waits until `n` lines arrived (or the connection closed). */
  async waitLines(n: number, timeoutMs = 15_000): Promise<Array<Record<string, any>>> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length < n && !this.socket.destroyed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
    return this.lines;
  }

  get isClosed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded;
  }

  close(): void {
    this.socket.destroy();
  }
}
