/**
 * Flood with backpressure, the way an app writes it: `send()` until it returns false, wait for `'drain'`,
 * repeat — against a consumer that now and then stops for a moment (a busy handler, a descheduled process).
 * A lost wake-up shows as a flood that never gets its `'drain'`: the ring is full, the consumer sleeps. Each
 * run also checks that a request on the same channel is answered afterwards and that every message arrived,
 * in order.
 *
 * Standalone: `tsx soak/flood.ts --runs 1000 [--messages 20000] [--size 64] [--stall-ms 5000]` — starts a
 * peer process (this file with `--peer`), floods in both directions, prints one JSON line per 100 runs and a
 * summary, exits 1 on any stall or error. The unit test test/channel/flood.test.ts uses the same pieces.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ClientSession, SessionServer, Universe } from '../src/index.js';
import { FLOOD_DEFAULTS, floodConsumer, floodOnce, isStall, type FloodMetadata, type FloodSettings } from './flood-parts.js';

export { checkReceived, FloodStall, floodConsumer, floodFromPeer, floodSend, type BigOptions, type FloodMetadata, type PauseOptions } from './flood-parts.js';

/** The peer process: a server whose flood channels consume (with pauses) and flood back on request. */
export async function runPeer(config: { definition: ConstructorParameters<typeof Universe>[0]; serverApp: string; stallMs: number }): Promise<void> {
  const server = await SessionServer.start({ universe: new Universe(config.definition), serverApp: config.serverApp });
  server.on('session', (session) => {
    session.on('channel', (channel) => {
      const meta = channel.metadata as Partial<FloodMetadata> | null;
      if (meta?.flood !== true) return;
      floodConsumer(channel, { pauseEvery: meta.pauseEvery ?? 0, pauseMicros: meta.pauseMicros ?? 0 }, config.stallMs);
    });
  });
  process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
  process.stdout.write(`${JSON.stringify({ event: 'listening' })}\n`);
}

interface Args extends FloodSettings { runs: number }

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: 1000, ...FLOOD_DEFAULTS };
  const names: Record<string, keyof Args> = {
    '--runs': 'runs', '--messages': 'messages', '--size': 'size', '--stall-ms': 'stallMs', '--pause-every': 'pauseEvery',
    '--pause-micros': 'pauseMicros', '--big-every': 'bigEvery', '--big-size': 'bigSize',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]!];
    const value = Number(argv[i + 1]);
    if (key === undefined || !Number.isInteger(value) || value < 0) {
      throw new RangeError(`usage: flood.ts [--runs N] [--messages N] [--size BYTES] [--stall-ms MS] [--pause-every N] [--pause-micros US] [--big-every N] [--big-size BYTES]; bad '${argv[i]} ${argv[i + 1]}'`);
    }
    args[key] = value;
  }
  return args;
}

/** Standalone soak: `args.runs` floods, alternating direction, against a fresh peer process. */
async function main(args: Args): Promise<number> {
  const tag = `${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const serverApp = `floodsrv${tag}`;
  const clientApp = `floodcli${tag}`;
  const runDirectory = `/tmp/shmx-soak-${tag}`;
  mkdirSync(runDirectory, { recursive: true, mode: 0o755 });
  const definition = { apps: [{ name: clientApp }], servers: [{ name: serverApp, acceptedClients: [clientApp], runDirectory }] };
  const peer = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--peer',
    JSON.stringify({ definition, serverApp, stallMs: args.stallMs })], { stdio: ['ignore', 'pipe', 'inherit'] });
  const started = Date.now();
  let stalls = 0;
  let errors = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: peer.stdout! }).once('line', () => resolve());
      peer.once('exit', (code) => reject(new Error(`peer exited with ${code}`)));
    });
    const session = await ClientSession.connect({ universe: new Universe(definition), clientApp, serverApp });
    try {
      const pause = { pauseEvery: args.pauseEvery, pauseMicros: args.pauseMicros };
      for (let run = 0; run < args.runs; run++) {
        const metadata: FloodMetadata = { flood: true, ...pause };
        const channel = await session.openChannel({ metadata });
        try {
          await floodOnce(channel, run, args);
        } catch (err) {
          if (isStall(err)) stalls++;
          else errors++;
          process.stdout.write(`${JSON.stringify({ run, error: String(err) })}\n`);
        }
        channel.close();
        if ((run + 1) % 100 === 0) {
          process.stdout.write(`${JSON.stringify({ runs: run + 1, stalls, errors, seconds: (Date.now() - started) / 1000 })}\n`);
        }
      }
    } finally {
      await session.close();
    }
  } finally {
    peer.kill('SIGTERM');
    await new Promise((r) => peer.once('exit', r));
    rmSync(runDirectory, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify({ summary: true, runs: args.runs, stalls, errors, seconds: (Date.now() - started) / 1000 })}\n`);
  return stalls + errors === 0 ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--peer') {
    await runPeer(JSON.parse(process.argv[3]!));
  } else {
    process.exitCode = await main(parseArgs(process.argv.slice(2)));
  }
}
