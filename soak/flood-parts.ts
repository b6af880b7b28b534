/**
 * The flood's pieces: a sender that floods with backpressure (`send()` until false, wait for `'drain'`), a
 * consumer that checks order and now and then stops for a moment, and the two requests that check a run. They
 * import only types from shmx, so a soak agent can load them beside either build (dist/ as plain JavaScript, or
 * src/ under tsx): soak/flood.ts (standalone), the soak's `flood` scenario (soak/agent.ts) and
 * test/channel/flood.test.ts all use these.
 */
import type { Channel, Message } from '../src/index.js';

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
  const reply = await channel.request(Buffer.from('count'), { timeoutMs });
  const { received, disorder } = JSON.parse(Buffer.from(reply.bytes).toString()) as { received: number; disorder: number };
  if (received !== expected || disorder >= 0) {
    throw new Error(`peer received ${received} of ${expected} messages (first out of order: ${disorder})`);
  }
}

/** Has the peer flood us with `count` messages; resolves when its flood ended, throws on its stall. */
export async function floodFromPeer(channel: Channel, count: number, size: number, timeoutMs: number, big: BigOptions = NO_BIG): Promise<void> {
  const reply = await channel.request(Buffer.from(`flood ${count} ${size} ${big.bigEvery} ${big.bigSize}`), { timeoutMs });
  const r = JSON.parse(Buffer.from(reply.bytes).toString()) as { ok?: boolean; stall?: string };
  if (r.ok !== true) throw new Error(`the peer's flood: ${r.stall}`);
}

/** The settings of a flood run (the standalone soak's options). */
export interface FloodSettings extends PauseOptions, BigOptions {
  /** Messages per run. */
  messages: number;
  /** Bytes of a small message. */
  size: number;
  /** A `'drain'` missing this long is a stall. */
  stallMs: number;
}

/** 20 000 messages of 64 B, every 50th of 16 000 B, a stall after 5 s without `'drain'`, no pauses. */
export const FLOOD_DEFAULTS: Readonly<FloodSettings> = {
  messages: 20_000, size: 64, stallMs: 5000, pauseEvery: 0, pauseMicros: 0, bigEvery: 50, bigSize: 16_000,
};

/**
 * One flood run on `channel`, freshly opened with {@link FloodMetadata} of `settings`' pauses: even runs flood
 * the peer and check that it received everything in order, odd runs have the peer flood us. Throws
 * {@link FloodStall} (or an error saying "stall" for the peer's flood) on a stall, another error on loss or
 * disorder.
 */
export async function floodOnce(channel: Channel, run: number, settings: FloodSettings): Promise<void> {
  floodConsumer(channel, settings, settings.stallMs);
  if (run % 2 === 0) {
    await floodSend(channel, settings.messages, settings.size, settings.stallMs, settings);
    await checkReceived(channel, settings.messages, settings.stallMs);
  } else {
    await floodFromPeer(channel, settings.messages, settings.size, settings.stallMs + 5000, settings);
  }
}

/** Whether `err` (from {@link floodOnce}) is a stall, ours or the peer's. */
export function isStall(err: unknown): boolean {
  return err instanceof FloodStall || /stall/.test(String(err));
}
