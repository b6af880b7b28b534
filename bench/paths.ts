/**
 * Every path the suite measures, one entry each: how its far side serves (in a fresh peer process, `serve`)
 * and how the bench talks to it (`connect`). A new path — a new shmx API, another library — is one more
 * entry in {@link PATHS}; the suites pick paths by what they implement (round trip, flood, overlap).
 *
 * Every round trip sends a payload and gets back an 8-byte reply with the receiver's checksum of every byte
 * it got (see checksum.ts), so no path wins by not touching data — except the one entry that measures the
 * pure transport of a block by handle, which says so (`reads: false`).
 */
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { ClientSession, SessionServer, Universe, type Block, type Channel, type ChannelSettings, type Message, type Session } from '../dist/index.js';
import { native } from '../dist/native.js';
// ── extras: codec rows ──
import { Packr } from 'msgpackr';
import { msgpackCodec, typed, type TypedChannel } from '../dist/index.js';
// ── end extras ──
import { Checksum, checksum, decodeReply, encodeReply } from './checksum.js';
import { newApps, rawQueueName, rawSegment, removeRawQueue, runDir, uniqueName, type Peer } from './harness.js';

/** A payload of one size, made once per run: bytes, and the checksum the receiver must answer. */
export interface Payload {
  size: number;
  bytes: Uint8Array;
  sum: number;
}

/** What a receiver answered. */
export interface Answer {
  sum: number;
  length: number;
}

/** The bench side of a path, connected to a fresh peer. */
export interface Client {
  /** Before the round trips of a size (e.g. put the payload into an arena block). */
  prepare?(payload: Payload): void | Promise<void>;
  /** After them. */
  unprepare?(): void;
  /** One round trip. May return synchronously (floors: no promise in the measured loop). */
  roundTrip(payload: Payload): Answer | Promise<Answer>;
  /** One-way flood of `count` copies of `message`; resolves with how many the receiver counted. */
  flood?(count: number, message: Uint8Array): Promise<number>;
  /** Its peer process (for CPU readings), when it has one. */
  peer?: Peer;
  close(): Promise<void>;
}

/** What runs in the peer process for a path. */
export interface Served {
  /** Sent to the bench with 'ready'. */
  info?: unknown;
  /** Runs after 'ready' was sent (a spinning floor starts here). */
  afterReady?(): void;
  close(): Promise<void> | void;
}

/** Starts this path's peer with a JSON config; the harness fills in which path. */
export type StartPeer = (config: unknown, serialization?: 'json' | 'advanced') => Promise<Peer>;

export type Group = 'shmx' | 'node' | 'other' | 'floor' | 'reference';

export interface Path {
  id: string;
  label: string;
  group: Group;
  /** Largest payload it is measured with (bounded time or memory); larger sizes show as "—". */
  maxSize?: number;
  /** False: the receiver does not read the payload (the reply carries only its length). */
  reads?: boolean;
  /** False: not part of the round-trip table (a flood-only variant). */
  roundTrips?: boolean;
  /** Round trips may overlap (replies in order): the open-loop CPU suite needs this. */
  overlaps?: boolean;
  /** Its client implements `flood` (the one-way throughput suite). */
  floods?: boolean;
  /** Part of the CPU-at-fixed-rates suite (needs `overlaps` and a peer process). */
  cpu?: boolean;
  serve?(config: never): Promise<Served>;
  connect(start: StartPeer): Promise<Client>;
}

// ---------------------------------------------------------------------------------------------- helpers

const ONE_GIB = 2 ** 30;

/** Answers handed out in order (replies of overlapping round trips arrive in request order). */
class InOrder {
  private readonly queue: Array<(a: Answer) => void> = [];
  next(): Promise<Answer> {
    return new Promise((resolve) => this.queue.push(resolve));
  }
  answer(a: Answer): void {
    this.queue.shift()?.(a);
  }
}

function reply(m: Message, bytes: Uint8Array): void {
  if (!m.tryReply(bytes)) void m.replyAsync(bytes).catch(() => {});
}

// ------------------------------------------------------------------------------------------------- shmx

interface ShmxConfig {
  definition: ConstructorParameters<typeof Universe>[0];
  serverApp: string;
  clientApp: string;
  /** Channel settings of both sides (the session server's and the client's). */
  channels?: Partial<ChannelSettings>;
}

interface ChannelMeta {
  /** sum: reply with the checksum; length: reply without reading; count: count one-way messages; sum-send: answer a
   *  plain message with a plain message (no request machinery). */
  mode: 'sum' | 'length' | 'count' | 'sum-send';
  spin?: boolean;
  views?: boolean;
}

/** The far side of every shmx path: a SessionServer whose channels answer as their metadata asks. */
async function serveShmx(config: ShmxConfig): Promise<Served> {
  const server = await SessionServer.start({
    universe: new Universe(config.definition),
    serverApp: config.serverApp,
    // Room for a 1 GiB payload (and the copy of one in flight); reserved only as used.
    sessionArena: { maxBytes: 3 * ONE_GIB, initialBytes: 1 << 20, growChunk: 64 << 20 },
    // Not what is measured: a peer busy reading 1 GiB on a loaded machine must not be taken for a dead one.
    keepAlive: { intervalMs: 1000, timeoutMs: 600_000 },
    channels: config.channels,
  });
  server.on('session', (session: Session) => session.on('channel', (channel: Channel) => answer(channel)));
  return { close: () => server.close() };
}

function answer(channel: Channel): void {
  const meta = channel.metadata as ChannelMeta;
  if (meta.views === true) channel.setMessageViews(true);
  if (meta.spin === true) channel.setSpin(true);
  if (meta.mode === 'count') {
    let count = 0;
    channel.on('message', (m: Message) => {
      if (m.isRequest) reply(m, encodeReply(count, 0));
      else count++;
    });
    return;
  }
  if (meta.mode === 'sum-send') {
    channel.on('message', (m: Message) => {
      const out = encodeReply(checksum(m.bytes), m.bytes.byteLength);
      if (!channel.trySend(out)) void channel.sendAsync(out).catch(() => {});
    });
    return;
  }
  const reads = meta.mode === 'sum';
  channel.on('message', (m: Message) => {
    const length = m.bytes.byteLength;
    const out = encodeReply(reads ? checksum(m.bytes) : 0, length);
    m.release();
    reply(m, out);
  });
}

interface ShmxOptions {
  transport?: 'shm' | 'mq' | 'socket';
  spin?: boolean;
  /** Channel settings of both sides. */
  channels?: Partial<ChannelSettings>;
  /** Send the payload as an arena block, by handle. */
  handle?: boolean;
  reads?: boolean;
  views?: boolean;
  /** Round trips as plain messages (`send` + `'message'`) instead of `request()`. */
  plain?: boolean;
  /** Floods with `sendMany` in batches of this many messages (published together, one wake-up each). */
  batch?: number;
}

function shmxPath(id: string, label: string, o: ShmxOptions, extra: Partial<Path> = {}): Path {
  return {
    id,
    label,
    group: 'shmx',
    reads: o.reads ?? true,
    overlaps: true,
    floods: o.handle !== true,
    ...extra,
    serve: (config: ShmxConfig) => serveShmx(config),
    async connect(start) {
      const apps = newApps();
      const peer = await start({ ...apps, channels: o.channels } satisfies ShmxConfig);
      const session = await ClientSession.connect({
        universe: new Universe(apps.definition),
        clientApp: apps.clientApp,
        serverApp: apps.serverApp,
        channels: o.channels,
      });
      const meta: ChannelMeta = { mode: o.plain ? 'sum-send' : o.reads === false ? 'length' : 'sum', spin: o.spin };
      const channel = await session.openChannel({ transport: o.transport, spin: o.spin, metadata: meta });
      let block: Block | undefined;
      let counter: Channel | undefined;
      // Plain-message round trips: answers come back as messages, in order.
      const replies = o.plain ? new InOrder() : undefined;
      if (replies) channel.on('message', (m: Message) => replies.answer(decodeReply(m.bytes)));
      const decode = (m: Message): Answer => {
        const a = decodeReply(m.bytes);
        m.release();
        return a;
      };
      return {
        peer,
        prepare(payload) {
          if (!o.handle) return;
          block = session.sessionArena.alloc(payload.size);
          block.bytes.set(payload.bytes);
        },
        unprepare() {
          block?.release();
          block = undefined;
        },
        roundTrip: o.plain
          ? (payload) => {
              const answer = replies!.next();
              if (!channel.trySend(payload.bytes)) return channel.sendAsync(payload.bytes).then(() => answer);
              return answer;
            }
          : (payload) => channel.request(block ?? payload.bytes).then(decode),
        async flood(count, message) {
          counter ??= await session.openChannel({
            transport: o.transport,
            spin: o.spin,
            metadata: { mode: 'count', spin: o.spin, views: o.views } satisfies ChannelMeta,
          });
          if (o.batch !== undefined) {
            const batch: Uint8Array[] = new Array<Uint8Array>(o.batch).fill(message);
            for (let sent = 0; sent < count;) {
              const n = counter.sendMany(count - sent >= batch.length ? batch : batch.slice(0, count - sent));
              sent += n;
              if (n < batch.length && sent < count) await once(counter, 'drain');
            }
          } else {
            for (let i = 0; i < count; i++) if (!counter.trySend(message)) await counter.sendAsync(message);
          }
          return decodeReply((await counter.request(new Uint8Array(1))).bytes).sum;
        },
        async close() {
          block?.release();
          channel.close();
          counter?.close();
          await session.close();
          await peer.stop();
        },
      };
    },
  };
}

// -------------------------------------------------------------------------------------------- Node net

/** Frames on a byte stream: a 4-byte little-endian length; the top bit marks a one-way message (no reply). */
const ONE_WAY = 0x8000_0000;

function serveNet(config: { socketPath: string }): Promise<Served> {
  const server = net.createServer((socket) => {
    let need = -1; // body bytes still to come; -1: reading a header
    let header = Buffer.alloc(0);
    let oneWay = false;
    let sum = new Checksum();
    let length = 0;
    let count = 0;
    const done = () => {
      if (oneWay) count++;
      else socket.write(length === 0 ? encodeReply(count, 0) : encodeReply(sum.value, length));
      need = -1;
      sum = new Checksum();
    };
    socket.on('data', (chunk: Buffer) => {
      let at = 0;
      while (at < chunk.length) {
        if (need < 0) {
          const take = Math.min(4 - header.length, chunk.length - at);
          header = Buffer.concat([header, chunk.subarray(at, at + take)]);
          at += take;
          if (header.length < 4) return;
          const word = header.readUInt32LE(0);
          header = Buffer.alloc(0);
          oneWay = (word & ONE_WAY) !== 0;
          length = need = word & ~ONE_WAY;
          if (need === 0) done();
          continue;
        }
        const take = Math.min(need, chunk.length - at);
        sum.update(chunk.subarray(at, at + take));
        at += take;
        need -= take;
        if (need === 0) done();
      }
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve) =>
    server.listen(config.socketPath, () => resolve({ close: () => new Promise<void>((r) => server.close(() => r())) })),
  );
}

const netPath: Path = {
  id: 'net',
  label: 'Node `net`, Unix socket (baseline)',
  group: 'node',
  overlaps: true,
  floods: true,
  cpu: true,
  serve: (config: { socketPath: string }) => serveNet(config),
  async connect(start) {
    const socketPath = join(runDir(), `${uniqueName('n')}.sock`);
    const peer = await start({ socketPath });
    const socket = net.connect(socketPath);
    await once(socket, 'connect');
    socket.setNoDelay(true);
    const replies = new InOrder();
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 8) {
        replies.answer(decodeReply(pending.subarray(0, 8)));
        pending = pending.subarray(8);
      }
    });
    const header = (n: number) => {
      const h = Buffer.alloc(4);
      h.writeUInt32LE(n >>> 0, 0);
      return h;
    };
    return {
      peer,
      roundTrip(payload) {
        const answer = replies.next();
        socket.cork();
        socket.write(header(payload.size));
        socket.write(payload.bytes);
        socket.uncork();
        return answer;
      },
      async flood(count, message) {
        const frame = Buffer.concat([header(message.byteLength | ONE_WAY), message]);
        for (let i = 0; i < count; i++) if (!socket.write(frame)) await once(socket, 'drain');
        const answer = replies.next();
        socket.write(header(0));
        return (await answer).sum;
      },
      async close() {
        socket.end();
        await once(socket, 'close');
        await peer.stop();
      },
    };
  },
};

// --------------------------------------------------------------------------------- child_process IPC

/** What arrives over IPC for a Uint8Array: itself ('advanced') or Buffer's JSON form ('json'). */
function ipcBytes(m: unknown): Uint8Array | undefined {
  if (m instanceof Uint8Array) return m;
  const j = m as { type?: string; data?: number[] };
  if (j && j.type === 'Buffer' && Array.isArray(j.data)) return Uint8Array.from(j.data);
  return undefined;
}

async function serveIpc(): Promise<Served> {
  const onMessage = (m: unknown) => {
    const bytes = ipcBytes(m);
    if (bytes) process.send!(Buffer.from(encodeReply(checksum(bytes), bytes.byteLength)));
  };
  process.on('message', onMessage);
  return { close: () => void process.off('message', onMessage) };
}

function ipcPath(serialization: 'json' | 'advanced', maxSize: number, cpu = false): Path {
  return {
    cpu,
    id: `ipc-${serialization}`,
    label: `\`child_process\` IPC, serialization '${serialization}'`,
    group: 'node',
    maxSize,
    overlaps: true,
    serve: () => serveIpc(),
    async connect(start) {
      const peer = await start(null, serialization);
      const replies = new InOrder();
      const onMessage = (m: unknown) => {
        const bytes = ipcBytes(m);
        if (bytes) replies.answer(decodeReply(bytes));
      };
      peer.process.on('message', onMessage);
      return {
        peer,
        roundTrip(payload) {
          const answer = replies.next();
          peer.process.send(Buffer.from(payload.bytes.buffer, payload.bytes.byteOffset, payload.size));
          return answer;
        },
        async close() {
          peer.process.off('message', onMessage);
          await peer.stop();
        },
      };
    },
  };
}

// ------------------------------------------------------------------------------------------- zeromq

/** zeromq is optional: without it (not installed, no prebuilt binary for this platform) the path is skipped. */
async function loadZmq(): Promise<typeof import('zeromq')> {
  return import('zeromq');
}

const KIND_REQUEST = Buffer.from([1]);
const KIND_ONE_WAY = Buffer.from([0]);
const KIND_COUNT = Buffer.from([2]);

async function serveZmq(config: { endpoint: string }): Promise<Served> {
  const zmq = await loadZmq();
  const router = new zmq.Router({ linger: 0 });
  await router.bind(config.endpoint);
  let count = 0;
  void (async () => {
    try {
      for await (const [id, kind, body] of router) {
        if (kind![0] === 0) count++;
        else if (kind![0] === 2) await router.send([id!, encodeReply(count, 0)]);
        else await router.send([id!, encodeReply(checksum(body!), body!.byteLength)]);
      }
    } catch {
      // closed
    }
  })();
  return { close: () => router.close() };
}

const zmqPath: Path = {
  id: 'zmq',
  label: 'zeromq `ipc://` (dealer ↔ router)',
  group: 'other',
  floods: true,
  serve: (config: { endpoint: string }) => serveZmq(config),
  async connect(start) {
    const zmq = await loadZmq();
    const endpoint = `ipc://${join(runDir(), `${uniqueName('z')}.zmq`)}`;
    const peer = await start({ endpoint });
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(endpoint);
    const read = async (): Promise<Answer> => {
      const [body] = await dealer.receive();
      return decodeReply(body!);
    };
    return {
      peer,
      async roundTrip(payload) {
        await dealer.send([KIND_REQUEST, payload.bytes]);
        return read();
      },
      async flood(count, message) {
        for (let i = 0; i < count; i++) await dealer.send([KIND_ONE_WAY, message]);
        await dealer.send([KIND_COUNT, message]);
        return (await read()).sum;
      },
      async close() {
        dealer.close();
        await peer.stop();
      },
    };
  },
};

// ------------------------------------------------------------------------------------ worker_threads

const workerPath: Path = {
  id: 'worker',
  label: '`worker_threads` postMessage (in-process reference)',
  group: 'reference',
  overlaps: true,
  async connect() {
    const worker = new Worker(new URL('./worker-echo.js', import.meta.url));
    await once(worker, 'online');
    const replies = new InOrder();
    worker.on('message', (m: Uint8Array) => replies.answer(decodeReply(m)));
    return {
      roundTrip(payload) {
        const answer = replies.next();
        worker.postMessage(payload.bytes); // structured clone: one copy, as between processes
        return answer;
      },
      async close() {
        await worker.terminate();
      },
    };
  },
};

// --------------------------------------------------------------------------------------------- floors

// Layout of a floor's segment: word 0 = request sequence, word 1 = reply sequence, request slot at 64, reply
// slot at 128 (64-byte messages only: a floor is the cost of the wake-up, not of a copy).
const PING = 0;
const PONG = 1;
const REQUEST_SLOT = 64;
const REPLY_SLOT = 128;
const STOP = -1;
const FLOOR_SIZE = 64;

/** A floor's segment as sequence words and message bytes. */
function mapFloor(buffer: SharedArrayBuffer): { buffer: SharedArrayBuffer; words: Int32Array; bytes: Uint8Array } {
  return { buffer, words: new Int32Array(buffer), bytes: new Uint8Array(buffer) };
}

const readReply = (bytes: Uint8Array): Answer => decodeReply(bytes.subarray(REPLY_SLOT, REPLY_SLOT + 8));

/** The peer's side of a floor: checksum of the request slot into the reply slot. */
function floorReply(bytes: Uint8Array): void {
  bytes.set(encodeReply(checksum(bytes.subarray(REQUEST_SLOT, REQUEST_SLOT + FLOOR_SIZE)), FLOOR_SIZE), REPLY_SLOT);
}

const spinFloor: Path = {
  id: 'floor-spin',
  label: 'floor: both processes spin on a shared word',
  group: 'floor',
  maxSize: FLOOR_SIZE,
  async serve(config: { segment: string }) {
    const { buffer, words, bytes } = mapFloor(native.shmMap(config.segment));
    return {
      // Spins (blocking this process's event loop) until the bench stores STOP.
      afterReady() {
        let last = 0;
        for (;;) {
          let seq: number;
          while ((seq = Atomics.load(words, PING)) === last) {
            /* spin */
          }
          if (seq === STOP) return;
          floorReply(bytes);
          Atomics.store(words, PONG, seq);
          last = seq;
        }
      },
      close() {},
    };
  },
  async connect(start) {
    const segment = rawSegment(4096);
    const { words, bytes } = mapFloor(segment.buffer);
    const peer = await start({ segment: segment.name });
    let seq = 0;
    return {
      roundTrip(payload) {
        bytes.set(payload.bytes, REQUEST_SLOT);
        Atomics.store(words, PING, ++seq);
        while (Atomics.load(words, PONG) !== seq) {
          /* spin */
        }
        return readReply(bytes);
      },
      async close() {
        Atomics.store(words, PING, STOP);
        await peer.stop();
        segment.remove();
      },
    };
  },
};

const doorbellFloor: Path = {
  id: 'floor-doorbell',
  label: 'floor: doorbell + `uv_poll` (shared slot, addon API)',
  group: 'floor',
  maxSize: FLOOR_SIZE,
  async serve(config: { segment: string; bench: string; peer: string }) {
    const { buffer, words, bytes } = mapFloor(native.shmMap(config.segment));
    let last = 0;
    const bell = native.createDoorbell(config.peer, () => {
      const seq = Atomics.load(words, PING);
      if (seq === last || seq === STOP) return;
      last = seq;
      floorReply(bytes);
      Atomics.store(words, PONG, seq);
      bell.ring();
    });
    bell.connect(config.bench); // the bench's doorbell exists before the peer starts
    bell.ref();
    return { close: () => bell.close() };
  },
  async connect(start) {
    const segment = rawSegment(4096);
    const { words, bytes } = mapFloor(segment.buffer);
    const names = { segment: segment.name, bench: `shmxbench.${uniqueName('db')}`, peer: `shmxbench.${uniqueName('dp')}` };
    let waiting: { seq: number; resolve: (a: Answer) => void } | undefined;
    const bell = native.createDoorbell(names.bench, () => {
      if (waiting && Atomics.load(words, PONG) === waiting.seq) {
        const w = waiting;
        waiting = undefined;
        w.resolve(readReply(bytes));
      }
    });
    bell.ref();
    const peer = await start(names);
    bell.connect(names.peer); // doorbells take datagrams from their connected peer only
    let seq = 0;
    return {
      peer,
      roundTrip(payload) {
        return new Promise<Answer>((resolve) => {
          bytes.set(payload.bytes, REQUEST_SLOT);
          waiting = { seq: ++seq, resolve };
          Atomics.store(words, PING, seq);
          bell.ring();
        });
      },
      async close() {
        bell.close();
        await peer.stop();
        segment.remove();
      },
    };
  },
};

const futexFloor: Path = {
  id: 'floor-futex',
  label: 'floor: futex waited in a native thread (`createFutexWaiter` + `futexWake`)',
  group: 'floor',
  maxSize: FLOOR_SIZE,
  async serve(config: { segment: string }) {
    const { buffer, words, bytes } = mapFloor(native.shmMap(config.segment));
    const waiter = native.createFutexWaiter(buffer, PING * 4);
    let open = true;
    void (async () => {
      let last = 0;
      while (open) {
        const seq = Atomics.load(words, PING);
        if (seq === STOP) break;
        if (seq === last) {
          await waiter.wait(last, -1);
          continue;
        }
        last = seq;
        floorReply(bytes);
        Atomics.store(words, PONG, seq);
        native.futexWake(buffer, PONG * 4, 1);
      }
    })();
    return {
      close() {
        open = false;
        waiter.close();
      },
    };
  },
  async connect(start) {
    const segment = rawSegment(4096);
    const { words, bytes } = mapFloor(segment.buffer);
    const peer = await start({ segment: segment.name });
    const waiter = native.createFutexWaiter(segment.buffer, PONG * 4);
    let seq = 0;
    return {
      peer,
      async roundTrip(payload) {
        bytes.set(payload.bytes, REQUEST_SLOT);
        const mine = ++seq;
        Atomics.store(words, PING, mine);
        native.futexWake(segment.buffer, PING * 4, 1);
        while (Atomics.load(words, PONG) !== mine) await waiter.wait(mine - 1, -1);
        return readReply(bytes);
      },
      async close() {
        Atomics.store(words, PING, STOP);
        native.futexWake(segment.buffer, PING * 4, 1);
        waiter.close();
        await peer.stop();
        segment.remove();
      },
    };
  },
};

const mqFloor: Path = {
  id: 'floor-mq',
  label: 'floor: POSIX MQ pair + `uv_poll` (addon `receiveAsync`)',
  group: 'floor',
  maxSize: FLOOR_SIZE,
  async serve(config: { request: string; reply: string }) {
    const request = native.mqOpen(config.request);
    const replyQueue = native.mqOpen(config.reply);
    let open = true;
    void (async () => {
      while (open) {
        const m = await request.receiveAsync().catch(() => new Uint8Array(0));
        if (m.byteLength === 0) break;
        const out = encodeReply(checksum(m), m.byteLength);
        while (!replyQueue.send(out)) await new Promise((r) => setImmediate(r));
      }
    })();
    return {
      close() {
        open = false;
        request.close();
        replyQueue.close();
      },
    };
  },
  async connect(start) {
    const names = { request: rawQueueName(), reply: rawQueueName() };
    const request = native.mqOpen(names.request, { create: true, exclusive: true, maxMessages: 10, messageSize: FLOOR_SIZE });
    const replyQueue = native.mqOpen(names.reply, { create: true, exclusive: true, maxMessages: 10, messageSize: FLOOR_SIZE });
    const unlink = () => {
      removeRawQueue(names.request);
      removeRawQueue(names.reply);
    };
    let peer: Peer;
    try {
      peer = await start(names);
    } catch (err) {
      request.close();
      replyQueue.close();
      unlink();
      throw err;
    }
    return {
      peer,
      async roundTrip(payload) {
        if (!request.send(payload.bytes)) throw new Error('request queue full');
        return decodeReply(await replyQueue.receiveAsync());
      },
      async close() {
        request.send(new Uint8Array(0)); // stop
        await peer.stop();
        request.close();
        replyQueue.close();
        unlink();
      },
    };
  },
};

/** No transport at all: what reading every byte of the payload costs in one process. */
const readFloor: Path = {
  id: 'read',
  label: 'reference: checksum of the payload in-process (no transport)',
  group: 'reference',
  async connect() {
    return {
      roundTrip: (payload) => ({ sum: checksum(payload.bytes), length: payload.size }),
      async close() {},
    };
  },
};

// ------------------------------------------------------------------------- structured messages (codecs)
// ── extras (issue 11 item 6): an object of 20 fields, round trip, through a codec on each side ──
// The receiver decodes the whole object and answers with it, encoded again; the bench decodes the answer. The
// object carries the payload's checksum and length, so the suite's check of every answer holds through both
// codecs. Measured at the smallest payload size only (`maxSize`): the payload itself does not travel.

/** An order of 20 fields: numbers, strings, a boolean, a Date, a small array — a typical service message. */
function orderOf(payload: Payload): Record<string, unknown> {
  return {
    id: 184_467, account: 'ACC-000193', symbol: 'ACME', venue: 'XNAS', side: 'buy', type: 'limit', tif: 'day',
    qty: 1500, filled: 300, price: 187.25, stop: 0, notional: 280_875.5, currency: 'USD', urgent: false,
    tags: ['algo', 'vwap'], at: new Date(1_733_190_000_000), trader: 'jdoe', note: 'rebalance Q4',
    sum: payload.sum, length: payload.size,
  };
}

const codecOrders = new WeakMap<Payload, Record<string, unknown>>();
const orderFor = (payload: Payload) => {
  let o = codecOrders.get(payload);
  if (o === undefined) codecOrders.set(payload, (o = orderOf(payload)));
  return o;
};
const answerOf = (o: unknown): Answer => {
  const r = o as { sum: number; length: number };
  return { sum: r.sum, length: r.length };
};

async function serveShmxCodec(config: ShmxConfig): Promise<Served> {
  const server = await SessionServer.start({ universe: new Universe(config.definition), serverApp: config.serverApp });
  server.on('session', (session: Session) => session.on('channel', (channel: Channel) => {
    if ((channel.metadata as { spin?: boolean } | undefined)?.spin === true) channel.setSpin(true); // both sides spin
    const t = typed(channel, msgpackCodec());
    t.on('message', (m) => {
      if (!m.reply(m.value)) void m.replyAsync(m.value).catch(() => {});
    });
  }));
  return { close: () => server.close() };
}

function codecShmxPath(spin: boolean): Path {
  return {
    id: spin ? 'codec-shmx-spin' : 'codec-shmx',
    label: `object of 20 fields: shmx typed channel, msgpack codec (shm, ${spin ? 'spin mode, both sides' : 'default settings'})`,
    group: 'shmx',
    maxSize: 64,
    serve: (config: ShmxConfig) => serveShmxCodec(config),
    async connect(start) {
      const apps = newApps();
      const peer = await start({ ...apps } satisfies ShmxConfig);
      const session = await ClientSession.connect({ universe: new Universe(apps.definition), clientApp: apps.clientApp, serverApp: apps.serverApp });
      const channel: TypedChannel = await session.openChannel({ codec: msgpackCodec(), spin, metadata: { spin } });
      return {
        peer,
        roundTrip: (payload) => channel.request(orderFor(payload)).then((m) => answerOf(m.value)),
        async close() {
          channel.close();
          await session.close();
          await peer.stop();
        },
      };
    },
  };
}

/** A length-prefixed stream of encoded objects over a Unix socket: `encode`/`decode` are JSON's or msgpackr's. */
interface StreamCodec {
  encode(o: unknown): Buffer;
  decode(b: Buffer): unknown;
}

function streamCodec(kind: 'json' | 'msgpack'): StreamCodec {
  if (kind === 'json') return { encode: (o) => Buffer.from(JSON.stringify(o)), decode: (b) => JSON.parse(b.toString()) as unknown };
  const packr = new Packr({ useRecords: false, moreTypes: true });
  return { encode: (o) => packr.pack(o), decode: (b) => packr.unpack(b) as unknown };
}

/** Calls `onFrame` with each length-prefixed frame of a socket's byte stream. */
function readFrames(socket: net.Socket, onFrame: (frame: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : (chunk as Buffer);
    while (pending.length >= 4) {
      const n = pending.readUInt32LE(0);
      if (pending.length < 4 + n) return;
      onFrame(pending.subarray(4, 4 + n));
      pending = pending.subarray(4 + n);
    }
  });
}

function writeFrame(socket: net.Socket, body: Buffer): void {
  const h = Buffer.allocUnsafe(4);
  h.writeUInt32LE(body.length, 0);
  socket.cork();
  socket.write(h);
  socket.write(body);
  socket.uncork();
}

function codecNetPath(kind: 'json' | 'msgpack'): Path {
  return {
    id: `codec-net-${kind}`,
    label: `object of 20 fields: Node \`net\`, Unix socket, ${kind === 'json' ? 'JSON' : 'msgpackr'}`,
    group: 'node',
    maxSize: 64,
    serve: (config: { socketPath: string }) => {
      const c = streamCodec(kind);
      const server = net.createServer((socket) => {
        socket.setNoDelay(true);
        socket.on('error', () => {});
        readFrames(socket, (frame) => writeFrame(socket, c.encode(c.decode(frame))));
      });
      return new Promise((resolve) =>
        server.listen(config.socketPath, () => resolve({ close: () => new Promise<void>((r) => server.close(() => r())) })),
      );
    },
    async connect(start) {
      const c = streamCodec(kind);
      const socketPath = join(runDir(), `${uniqueName('c')}.sock`);
      const peer = await start({ socketPath });
      const socket = net.connect(socketPath);
      await once(socket, 'connect');
      socket.setNoDelay(true);
      const replies = new InOrder();
      readFrames(socket, (frame) => replies.answer(answerOf(c.decode(frame))));
      return {
        peer,
        roundTrip(payload) {
          const answer = replies.next();
          writeFrame(socket, c.encode(orderFor(payload)));
          return answer;
        },
        async close() {
          socket.end();
          await once(socket, 'close');
          await peer.stop();
        },
      };
    },
  };
}
// ── end extras ──

// ---------------------------------------------------------------------------------------------- table

/** Every path, in the order of the tables. */
export const PATHS: Path[] = [
  shmxPath('shm', 'shmx shm, copied (default settings)', {}, { cpu: true }),
  shmxPath('shm-park', 'shmx shm, copied, `spinMicros: 0` (every message wakes the peer)', { channels: { spinMicros: 0 } }, { cpu: true }),
  shmxPath('shm-spin', 'shmx shm, spin mode (both sides)', { spin: true }),
  shmxPath('shm-spin-send', 'shmx shm, spin mode, plain `send` + message event (no request machinery)', { spin: true, plain: true }, { maxSize: 64 * 1024, floods: false }),
  shmxPath('shm-handle', 'shmx shm, arena block by handle, receiver reads every byte', { handle: true }),
  shmxPath('shm-handle-t', 'shmx shm, arena block by handle, transport only (no read)', { handle: true, reads: false }),
  shmxPath('shm-views', 'shmx shm, copied, receiver with message views', { views: true }, { roundTrips: false }),
  shmxPath('shm-batch', 'shmx shm, copied, `sendMany` batches of 64, receiver with message views', { views: true, batch: 64 }, { roundTrips: false }),
  shmxPath('mq', 'shmx mq transport', { transport: 'mq' }, { cpu: true }),
  shmxPath('socket', 'shmx socket transport', { transport: 'socket' }, { cpu: true }),
  shmxPath('socket-inline', 'shmx socket transport, every size inline (`maxSocketMessage: 1 GiB + 4 KiB`)', { transport: 'socket', channels: { maxSocketMessage: 2 ** 30 + 4096 } }, { floods: false }),
  netPath,
  ipcPath('json', 1 << 20),
  ipcPath('advanced', 256 << 20, true),
  zmqPath,
  workerPath,
  spinFloor,
  doorbellFloor,
  futexFloor,
  mqFloor,
  readFloor,
  // ── extras: codec rows ──
  codecShmxPath(false),
  codecShmxPath(true),
  codecNetPath('json'),
  codecNetPath('msgpack'),
  // ── end extras ──
];

export function pathById(id: string): Path {
  const p = PATHS.find((x) => x.id === id);
  if (!p) throw new Error(`no path '${id}'`);
  return p;
}
