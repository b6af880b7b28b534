/**
 * Channels in worker_threads. The session and its channel stay on the thread that opened them (their
 * doorbells, close protocol and arenas live there); {@link bridgeToWorker} hands the channel's traffic to a
 * Worker through a MessagePort, and {@link WorkerChannel} is the Worker's end.
 *
 * Payloads are not copied on the way: a block sent by handle reaches the Worker as a view of the very same
 * SharedArrayBuffer (structured clone shares it), and is released on the owning thread when the Worker calls
 * `release()`. Blocks the Worker allocates (in arenas it opens by name, see {@link WorkerChannel.openArena})
 * travel as handles. Small payloads are copied, as they are on the channel itself. The price is one
 * postMessage hop per message in each direction.
 */
import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Arena, type Block, type Handle } from '../arena/index.js';
import type { CloseReason } from '../close-reason.js';
import '../dispose.js';
import { ShmxError } from '../errors.js';
import { emitCounted, REJECTION } from '../listener-errors.js';
import { abortError, checkAbortOptions, watchCancel, type AbortOptions } from '../abort.js';
import type { Channel } from './channel.js';
import type { Message } from './message.js';

/** Names the Worker needs to open the session's arenas itself. */
export interface BridgeArenas {
  session: string;
  app: string;
}

/** Messages handed to the Worker and not yet taken by its app, at most. */
const WINDOW = 256;
/** The Worker acknowledges what its app took in batches of this many. */
const ACK_EVERY = 32;

type ToWorker =
  | { kind: 'hello'; channelId: number; metadata: unknown; arenas: BridgeArenas }
  | { kind: 'message'; token: number; request: boolean; bytes?: Uint8Array; buffer?: SharedArrayBuffer; offset?: number; length?: number }
  | { kind: 'done'; id: number; error?: string; code?: string; reply?: ToWorker & { kind: 'message' } }
  | { kind: 'close'; reason: CloseReason };

type FromWorker =
  | { kind: 'send'; id: number; bytes?: Uint8Array; handle?: Handle; arena?: keyof BridgeArenas; request?: boolean }
  | { kind: 'reply'; id: number; token: number; bytes?: Uint8Array; handle?: Handle; arena?: keyof BridgeArenas }
  | { kind: 'release'; token: number }
  | { kind: 'consumed'; count: number }
  /** A listener in the Worker threw or rejected: an application error of the channel's session. */
  | { kind: 'error'; message: string; code?: string }
  /** The Worker gave up on call `id` (its signal or time limit): stop waiting for room for it. */
  | { kind: 'cancel'; id: number }
  | { kind: 'close' };

/**
 * Moves `channel`'s traffic to a Worker: post the returned port to the Worker (in the transfer list) and wrap
 * it there with `new WorkerChannel(port)`. From then on the Worker sends and receives; this thread must not
 * listen to the channel itself. Closing either end closes both.
 */
export function bridgeToWorker(channel: Channel, arenas: BridgeArenas, sessionArena: Arena, appArena: Arena): MessagePort {
  if (channel.state !== 'open') throw new ShmxError('ECLOSED', `channel ${channel.id} is closed`);
  if (channel.listenerCount('message') > 0) throw new TypeError('the channel already has a message listener here');
  const { port1: port, port2: workerPort } = new MessageChannel();
  const held = new Map<number, Message>();
  let nextToken = 1;
  const post = (m: ToWorker) => port.postMessage(m);
  const toWorker = (m: Message): ToWorker & { kind: 'message' } => {
    const token = nextToken++;
    // Held here until the Worker releases a block or answers a request; copied messages need nothing.
    if (m.block !== undefined || m.isRequest) held.set(token, m);
    if (m.block !== undefined) {
      return { kind: 'message', token, request: m.isRequest, buffer: m.block.buffer, offset: m.block.offset, length: m.block.length };
    }
    // An exact copy: the bytes may be a view of the ring (message views) or a slice of a shared pool buffer,
    // and structured clone would alias or drag along the whole underlying buffer.
    return { kind: 'message', token, request: m.isRequest, bytes: Uint8Array.from(m.bytes) };
  };
  const arenaOf = (name: keyof BridgeArenas | undefined) => (name === 'app' ? appArena : sessionArena);
  /** A block the Worker lent us: borrow it for the send, let go once it went out (the channel lends on). */
  const payload = (m: { bytes?: Uint8Array; handle?: Handle; arena?: keyof BridgeArenas }): { data: Uint8Array | Block; done(): void } => {
    if (m.handle === undefined) return { data: m.bytes ?? new Uint8Array(0), done: () => {} };
    const block = arenaOf(m.arena).borrow(m.handle);
    return { data: block, done: () => block.release() };
  };
  const fail = (id: number, err: unknown) =>
    post({ kind: 'done', id, error: err instanceof Error ? err.message : String(err), code: err instanceof ShmxError ? err.code : undefined });
  /** Calls in progress, by id, each abortable by the Worker's 'cancel'. */
  const inProgress = new Map<number, AbortController>();
  /** Decodes what the Worker sent, does `act` with it, and reports the outcome (and a reply) back. */
  const forward = (
    m: { id: number; bytes?: Uint8Array; handle?: Handle; arena?: keyof BridgeArenas },
    act: (data: Uint8Array | Block, signal: AbortSignal) => Promise<Message | void>,
  ) => {
    let p;
    try {
      p = payload(m);
    } catch (err) {
      fail(m.id, err);
      return;
    }
    const cancel = new AbortController();
    inProgress.set(m.id, cancel);
    act(p.data, cancel.signal).then(
      (reply) => post({ kind: 'done', id: m.id, reply: reply === undefined ? undefined : toWorker(reply) }),
      (err) => fail(m.id, err),
    ).finally(() => {
      inProgress.delete(m.id);
      p.done();
    });
  };

  // Backpressure across the hop: at most WINDOW messages handed over and not yet taken by the Worker's app.
  // Past that this thread stops taking from the channel, so the ring fills and the peer's sends wait.
  let outstanding = 0;
  let paused = false;
  const onMessage = (m: Message) => {
    post(toWorker(m));
    if (++outstanding >= WINDOW && !paused) {
      paused = true;
      channel.off('message', onMessage);
    }
  };
  channel.on('message', onMessage);
  // The Worker ended (terminated, crashed, or closed the port): its end of the channel goes with it.
  port.once('close', () => channel.close());
  channel.once('close', (reason) => {
    for (const m of held.values()) m.release();
    held.clear();
    post({ kind: 'close', reason });
    port.close();
  });
  port.on('message', (m: FromWorker) => {
    switch (m.kind) {
      case 'send':
        forward(m, (data, signal) => (m.request === true ? channel.request(data, { signal }) : channel.sendAsync(data, { signal })));
        return;
      case 'reply': {
        const request = held.get(m.token);
        if (request === undefined) return fail(m.id, new ShmxError('ESTALEHANDLE', 'no such request'));
        forward(m, (data, signal) => request.replyAsync(data, { signal }).finally(() => {
          if (request.block === undefined) held.delete(m.token); // answered; a block waits for its release
        }));
        return;
      }
      case 'release':
        held.get(m.token)?.release();
        held.delete(m.token);
        return;
      case 'consumed':
        outstanding = Math.max(0, outstanding - m.count);
        if (paused && outstanding <= WINDOW / 2 && channel.state === 'open') {
          paused = false;
          channel.on('message', onMessage);
        }
        return;
      case 'cancel':
        inProgress.get(m.id)?.abort();
        return;
      case 'error':
        channel.countError(new ShmxError(m.code ?? 'ELISTENER', `a listener in the Worker failed: ${m.message}`));
        return;
      case 'close':
        channel.close();
        return;
    }
  });
  post({ kind: 'hello', channelId: channel.id, metadata: channel.metadata, arenas });
  return workerPort;
}

/** A message as the Worker sees it: `bytes` is a view of shared memory for block messages (no copy). */
export class WorkerMessage {
  /** @internal */
  constructor(
    readonly bytes: Uint8Array,
    /** True when it was sent as an arena block: release it when done. */
    readonly isBlock: boolean,
    readonly isRequest: boolean,
    private readonly token: number,
    private readonly end: WorkerChannel,
  ) {}

  /** Lets the owning thread release the block (no-op for copied messages). Idempotent. */
  release(): void {
    if (!this.isBlock || this.released) return;
    this.released = true;
    this.end.releaseToken(this.token);
  }

  private released = false;

  /** Answers a request (bytes, or a block of an arena opened with {@link WorkerChannel.openArena}); resolves
   *  once it went out. `signal` / `timeoutMs` end the wait for room (AbortError / TimeoutError; then not sent). */
  reply(data: Uint8Array | Block, options?: AbortOptions): Promise<void> {
    if (!this.isRequest) throw new TypeError('this message is not a request');
    return this.end.replyTo(this.token, data, options).then(() => undefined);
  }
}

/** Events of a {@link WorkerChannel}. */
export interface WorkerChannelEvents {
  message: [message: WorkerMessage];
  close: [reason: CloseReason];
}

/** The Worker's end of a bridged channel. Construct it with the port from `session.channelToWorker(channel)`. */
export class WorkerChannel extends EventEmitter<WorkerChannelEvents> {
  private readonly pending = new Map<number, { resolve: (v: WorkerMessage | undefined) => void; reject: (e: Error) => void }>();
  private readonly arenas = new Map<keyof BridgeArenas, Arena>();
  /** Messages that arrived before anyone listened: delivered, in order, to the first listener. */
  private readonly early: WorkerMessage[] = [];
  private unacked = 0;
  private hello: (ToWorker & { kind: 'hello' }) | undefined;
  private readonly ready: Promise<void>;
  private nextId = 1;
  private closeReason: CloseReason | undefined;

  constructor(private readonly port: MessagePort) {
    super({ captureRejections: true }); // listener errors go to the channel's session (listener-errors.ts)
    let markReady!: () => void;
    this.ready = new Promise((resolve) => (markReady = resolve));
    (this as EventEmitter).on('newListener', (event: string) => {
      if (event === 'message' && this.early.length > 0) {
        queueMicrotask(() => {
          while (this.early.length > 0 && this.listenerCount('message') > 0) this.handOut(this.early.shift()!);
        });
      }
    });
    port.on('message', (m: ToWorker) => {
      switch (m.kind) {
        case 'hello':
          this.hello = m;
          markReady();
          return;
        case 'message':
          this.deliver(this.toMessage(m));
          return;
        case 'done': {
          const p = this.pending.get(m.id);
          this.pending.delete(m.id);
          if (m.error !== undefined) p?.reject(new ShmxError(m.code ?? 'EIO', m.error));
          else p?.resolve(m.reply === undefined ? undefined : this.toMessage(m.reply));
          return;
        }
        case 'close':
          this.finish(m.reason);
          return;
      }
    });
  }

  /** The channel's id and metadata, once the bridge said hello. */
  async info(): Promise<{ id: number; metadata: unknown }> {
    await this.ready;
    return { id: this.hello!.channelId, metadata: this.hello!.metadata };
  }

  /** `open` until either end closed. */
  get state(): 'open' | 'closed' {
    return this.closeReason === undefined ? 'open' : 'closed';
  }

  /**
   * Opens the session's (or the app's) arena in this Worker, so it can build payloads in shared memory and
   * send them by handle. One instance per Worker and arena; closed with the channel.
   */
  async openArena(which: keyof BridgeArenas = 'session'): Promise<Arena> {
    await this.ready;
    let arena = this.arenas.get(which);
    if (arena === undefined) {
      arena = Arena.open(this.hello!.arenas[which], { lockTimeoutMs: 100 });
      this.arenas.set(which, arena);
    }
    return arena;
  }

  /**
   * Sends bytes (copied) or a block (by handle); resolves once it went out on the channel. `signal` /
   * `timeoutMs` end the wait (AbortError / TimeoutError): a message still waiting for room is then not sent.
   */
  async send(data: Uint8Array | Block, options?: AbortOptions): Promise<void> {
    checkAbortOptions(options);
    await this.call({ kind: 'send', id: 0, ...(await this.encode(data)) }, options, 'send');
  }

  /** Sends a request; resolves with the reply. `signal` / `timeoutMs`: AbortError / TimeoutError. */
  async request(data: Uint8Array | Block, options?: AbortOptions): Promise<WorkerMessage> {
    checkAbortOptions(options);
    return (await this.call({ kind: 'send', id: 0, request: true, ...(await this.encode(data)) }, options, 'request'))!;
  }

  /** Closes both ends. */
  close(): void {
    if (this.closeReason !== undefined) return;
    this.port.postMessage({ kind: 'close' } satisfies FromWorker);
  }

  /** `await using` in a Worker: closes both ends at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /** @internal */
  releaseToken(token: number): void {
    if (this.closeReason !== undefined) return;
    this.port.postMessage({ kind: 'release', token } satisfies FromWorker);
  }

  /** @internal */
  async replyTo(token: number, data: Uint8Array | Block, options?: AbortOptions): Promise<WorkerMessage | undefined> {
    checkAbortOptions(options);
    return this.call({ kind: 'reply', id: 0, token, ...(await this.encode(data)) }, options, 'reply');
  }

  private deliver(m: WorkerMessage): void {
    if (this.listenerCount('message') > 0 && this.early.length === 0) this.handOut(m);
    else this.early.push(m);
  }

  /** Gives a message to the app and, now and then, tells the other thread how many were taken. */
  private handOut(m: WorkerMessage): void {
    try {
      emitCounted(this, 'message', [m], { error: (err) => this.reportError(err), success: () => {} });
    } finally {
      if (++this.unacked >= ACK_EVERY) {
        this.port.postMessage({ kind: 'consumed', count: this.unacked } satisfies FromWorker);
        this.unacked = 0;
      }
    }
  }

  /** A listener here threw or rejected: the owning thread counts it against the channel's session. */
  private reportError(err: unknown): void {
    if (this.closeReason !== undefined) return; // the session is gone: nothing left to count it against
    const e = err as { message?: unknown; code?: unknown };
    this.port.postMessage({
      kind: 'error', message: String(e?.message ?? err), code: typeof e?.code === 'string' ? e.code : undefined,
    } satisfies FromWorker);
  }

  /** @internal A rejected listener of another event ('close'): reported like a 'message' listener's. */
  override [REJECTION](err: Error, ..._event: unknown[]): void {
    this.reportError(err);
  }

  /** Messages waiting for a listener (bounded by the bridge's window). */
  get waiting(): number {
    return this.early.length;
  }

  private toMessage(m: ToWorker & { kind: 'message' }): WorkerMessage {
    const bytes = m.buffer !== undefined ? new Uint8Array(m.buffer, m.offset, m.length) : m.bytes!;
    return new WorkerMessage(bytes, m.buffer !== undefined, m.request, m.token, this);
  }

  private async encode(data: Uint8Array | Block): Promise<{ bytes?: Uint8Array; handle?: Handle; arena?: keyof BridgeArenas }> {
    if (data instanceof Uint8Array) return { bytes: data };
    for (const [which, arena] of this.arenas) if (arena.owns(data)) return { handle: arena.lend(data), arena: which };
    throw new RangeError('a block sent from a Worker must come from an arena opened with openArena()');
  }

  private call(m: FromWorker & { id: number }, options: AbortOptions | undefined, what: string): Promise<WorkerMessage | undefined> {
    if (this.closeReason !== undefined) return Promise.reject(new ShmxError('ECLOSED', `channel closed (${this.closeReason})`));
    if (options?.signal?.aborted) return Promise.reject(abortError(`${what} from a Worker`, options.signal));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const stop = watchCancel(`${what} from a Worker`, options, (err) => {
        if (!this.pending.delete(id)) return;
        this.port.postMessage({ kind: 'cancel', id } satisfies FromWorker); // the owning thread stops waiting too
        reject(err);
      });
      this.pending.set(id, {
        resolve: (v) => {
          stop();
          resolve(v);
        },
        reject: (e) => {
          stop();
          reject(e);
        },
      });
      this.port.postMessage({ ...m, id });
    });
  }

  private finish(reason: CloseReason): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    for (const p of this.pending.values()) p.reject(new ShmxError('ECLOSED', `channel closed (${reason})`));
    this.pending.clear();
    for (const arena of this.arenas.values()) arena.close();
    this.arenas.clear();
    this.port.close();
    this.emit('close', reason);
  }
}
