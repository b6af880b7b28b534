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
import { ClientSession, SessionServer, Universe, type Channel, type Message } from '../src/index.js';

/** The flood waited longer than `stallMs` for a `'drain'` that never came. */
export class FloodStall extends Error {
  constructor(readonly sent: number, readonly total: number, stallMs: number) {
    super(`flood stalled: no 'drain' within ${stallMs} ms after ${sent} of ${total} messages`);
  }
}

/** How a consumer pauses: after every `pauseEvery`-th message it busy-waits `pauseMicros` (0: never). */
export interface PauseOptions {
  pauseEvery: number;
  pauseMicros: number;
}

/**
 * Mixed sizes: every `bigEvery`-th message has `bigSize` bytes (0: never). A big record refused while the ring
 * is full of small ones is what exposes a consumer that signals "room" before there is room for *that* record.
 */
export interface BigOptions {
  bigEvery: number;
  bigSize: number;
}
const NO_BIG: BigOptions = { bigEvery: 0, bigSize: 0 };

/** Metadata of a flood channel: the peer either sinks what we send, or floods us on request. */
export interface FloodMetadata extends PauseOptions {
  flood: true;
}

function busyWait(micros: number): void {
  const until = performance.now() + micros / 1000;
  while (performance.now() < until) {
    // a consumer that is busy: it reads nothing meanwhile
  }
}

/**
 * Sends `count` numbered messages of `size` bytes (u32 sequence number first): `send()` until false, then
 * waits for `'drain'`. Rejects with {@link FloodStall} when a drain does not come within `stallMs`.
 */
export async function floodSend(channel: Channel, count: number, size: number, stallMs: number, big: BigOptions = NO_BIG): Promise<void> {
  const small = Buffer.alloc(Math.max(4, size));
  const large = Buffer.alloc(Math.max(4, big.bigSize));
  let i = 0;
  while (i < count) {
    const msg = big.bigEvery > 0 && i % big.bigEvery === big.bigEvery - 1 ? large : small;
    msg.writeUInt32LE(i, 0);
    if (channel.trySend(msg)) {
      i++;
      continue;
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        channel.off('drain', onDrain);
        reject(new FloodStall(i, count, stallMs));
      }, stallMs);
      const onDrain = () => {
        clearTimeout(timer);
        resolve();
      };
      channel.once('drain', onDrain);
    });
  }
}

/**
 * Consumes a flood: checks the sequence numbers, pauses as told, and answers requests — `count` with the
 * number of messages received so far (and the first out-of-order one), `flood N S` by flooding N messages of
 * S bytes back before answering.
 */
export function floodConsumer(channel: Channel, pause: PauseOptions, stallMs: number): void {
  let received = 0;
  let disorder = -1;
  channel.on('message', (m: Message) => {
    if (m.isRequest) {
      const [cmd, n, size, bigEvery, bigSize] = Buffer.from(m.bytes).toString().split(' ');
      if (cmd === 'count') {
        void m.replyAsync(Buffer.from(JSON.stringify({ received, disorder }))).catch(() => {});
        received = 0;
        disorder = -1;
      } else if (cmd === 'flood') {
        floodSend(channel, Number(n), Number(size), stallMs, { bigEvery: Number(bigEvery), bigSize: Number(bigSize) }).then(
          () => m.replyAsync(Buffer.from('{"ok":true}')),
          (err: Error) => m.replyAsync(Buffer.from(JSON.stringify({ stall: err.message }))),
        ).catch(() => {});
      }
      return;
    }
    if (m.bytes.length >= 4 && Buffer.from(m.bytes.buffer, m.bytes.byteOffset, 4).readUInt32LE(0) !== received && disorder < 0) {
      disorder = received;
    }
    received++;
    if (pause.pauseEvery > 0 && received % pause.pauseEvery === 0) busyWait(pause.pauseMicros);
  });
}

/** Counts what the peer received since the last count; throws on loss or disorder. */
export async function checkReceived(channel: Channel, expected: number, timeoutMs: number): Promise<void> {
  const reply = await channel.request(Buffer.from('count'), { timeout: timeoutMs });
  const { received, disorder } = JSON.parse(Buffer.from(reply.bytes).toString()) as { received: number; disorder: number };
  if (received !== expected || disorder >= 0) {
    throw new Error(`peer received ${received} of ${expected} messages (first out of order: ${disorder})`);
  }
}

/** Has the peer flood us with `count` messages; resolves when its flood ended, throws on its stall. */
export async function floodFromPeer(channel: Channel, count: number, size: number, timeoutMs: number, big: BigOptions = NO_BIG): Promise<void> {
  const reply = await channel.request(Buffer.from(`flood ${count} ${size} ${big.bigEvery} ${big.bigSize}`), { timeout: timeoutMs });
  const r = JSON.parse(Buffer.from(reply.bytes).toString()) as { ok?: boolean; stall?: string };
  if (r.ok !== true) throw new Error(`the peer's flood: ${r.stall}`);
}

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

interface Args { runs: number; messages: number; size: number; stallMs: number; pauseEvery: number; pauseMicros: number; bigEvery: number; bigSize: number }

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: 1000, messages: 20_000, size: 64, stallMs: 5000, pauseEvery: 0, pauseMicros: 0, bigEvery: 50, bigSize: 16_000 };
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
        floodConsumer(channel, pause, args.stallMs);
        try {
          if (run % 2 === 0) {
            await floodSend(channel, args.messages, args.size, args.stallMs, args);
            await checkReceived(channel, args.messages, args.stallMs);
          } else {
            await floodFromPeer(channel, args.messages, args.size, args.stallMs + 5000, args);
          }
        } catch (err) {
          if (err instanceof FloodStall || /stall/.test(String(err))) stalls++;
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
