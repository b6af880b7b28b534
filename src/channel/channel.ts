/**
 * Channel: ordered, lossless messaging between the two sides of a session, the same API over every transport.
 * Small payloads are copied; an arena Block is sent by handle, so its size does not matter; requests are
 * matched to replies by id. Backpressure is explicit: `send` returns false and `'drain'` follows.
 */
import { EventEmitter } from 'node:events';
import { Block } from '../arena/index.js';
import type { CloseReason } from '../close-reason.js';
import { Fifo } from '../fifo.js';
import { diag } from '../diagnostics.js';
import '../dispose.js';
import { callCounted, REJECTION, type Listener, type ListenerOutcome } from '../listener-errors.js';
import { abortError, checkAbortOptions, waitInQueue, watchCancel, type AbortOptions } from '../abort.js';
import { AbortError, ShmxError } from '../errors.js';
import { borrowBody, deliverSpilled, encodeBody, takeBackLend } from './body.js';
import { BodyKind, kindOf, tagOf, TAG_REQUEST, TAG_RESPONSE } from './envelope.js';
import type { ChannelHost, SessionChild } from './host.js';
import { Message, type Replier } from './message.js';
import { PendingRequests } from './requests.js';
import type { Transport, TransportKind } from './transport.js';

/**
 * How a channel ended: closed by this side (`local`), by the peer (`peer`; `peer-unread` when the peer never
 * read its end: it abandoned the open), or with its session (`session`).
 */
export type CloseHow = 'local' | 'peer' | 'peer-unread' | 'session';

/** What a channel needs from the multiplexer that owns it. */
export interface ChannelLink {
  readonly host: ChannelHost;
  /** Someone started listening: deliver what is waiting. */
  consumerAppeared(channel: Channel): void;
  /** Spin mode of this side for this channel changed. */
  setSpin(channel: Channel, on: boolean): void;
  /**
   * The channel closed (its transport is stopped): the link takes over the transport — discards what will not
   * be read, tells the peer unless it told us, releases it. Never throws.
   */
  closed(channel: Channel, reason: CloseReason, how: CloseHow, transport: Transport): void;
}

/** Options of a request: `signal` (AbortError) and `timeoutMs` (TimeoutError when no reply arrives in time). */
export interface RequestOptions extends AbortOptions {
  /** @deprecated Use `timeoutMs` (the one name of every time limit in shmx). */
  timeout?: number;
}

/** Options of `sendAsync`/`replyAsync`: abort or time out while the message still waits for room (nothing is
 *  sent then); once written it is sent. */
export type SendOptions = AbortOptions;

/** Events of a {@link Channel}. */
export interface ChannelEvents {
  message: [message: Message];
  /** After `send`/`reply` returned false (or `trySend` could not write): everything queued went out. */
  drain: [];
  /** Exactly once. */
  close: [reason: CloseReason];
}

const NO_OPTIONS: RequestOptions = {};

/** What each queued message counts against the high-water mark and the queue limit, on top of its bytes. */
export const QUEUED_MESSAGE_COST = 64;

/** A message waiting in the send queue, encoded. `done` (sendAsync, replyAsync, requests) learns its fate. */
interface Queued {
  tag: number;
  requestId: number;
  body: Uint8Array;
  cost: number;
  done: ((err?: Error) => void) | undefined;
}

/** Traffic of one channel (envelope bytes included), for operators: `shmx session`, metrics. */
export interface ChannelCounters {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
}

/** Messages buffered for an async iterator before the transport is left to fill (backpressure). */
const ITERATOR_BUFFER = 256;

/** Messages delivered per turn before yielding to the event loop. */
export const DELIVERY_BATCH = 512;

/** An ordered, lossless, two-way message stream of a session (`session.openChannel`, the `'channel'` event). */
export class Channel extends EventEmitter<ChannelEvents> implements SessionChild {
  /** Unique within its session. */
  readonly id: number;
  /** What the opener said this channel is for. */
  readonly metadata: unknown;
  /** How messages move: `shm` rings, POSIX `mq`, or the session's Unix `socket`. */
  readonly transport: TransportKind;
  /** True for a channel requested at session open. */
  readonly init: boolean;
  /** Messages and bytes sent and received on this channel. */
  readonly counters: ChannelCounters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };

  private readonly link: ChannelLink;
  private readonly io: Transport;
  private spinning = false;
  private readonly requests = new PendingRequests();
  private readonly inbox = new Fifo<Message>();
  private readonly waiters: Array<(r: IteratorResult<Message>) => void> = [];
  private iterators = 0;
  private blocked = false;
  // ---- send side state (issue 11 item 1) ----
  /** Sends waiting for room, in call order, already encoded (bytes copied, blocks lent): nothing may overtake them. */
  private readonly outbox = new Fifo<Queued>();
  /** What the outbox holds, as counted against the high-water mark and the queue limit. */
  private queuedBytes = 0;
  /** A send returned false: 'drain' is owed once the outbox is empty. */
  private needDrain = false;
  // ---- end send side state ----
  private closeReason: CloseReason | undefined;
  /**
   * The 'message' listeners as `rawListeners` gave them, kept until they change (undefined: look again): per
   * message, a copy of the listener list and a count of it cost more than the rest of delivering a small message.
   */
  private messageListeners: Listener[] | undefined;
  private views = false;
  /** The open reservation ({@link reserve}): a view of the ring (`direct`) or a buffer sent on commit. */
  private reservation: { view: Uint8Array; direct: boolean } | undefined;

  /** @internal Made by the session's channel multiplexer. */
  constructor(link: ChannelLink, id: number, transport: Transport, metadata: unknown, init: boolean) {
    super({ captureRejections: true }); // listener errors are the session's (listener-errors.ts)
    this.link = link;
    this.id = id;
    this.io = transport;
    this.transport = transport.kind;
    this.metadata = metadata;
    this.init = init;
    this.watchListeners();
    if (diag.channelOpen.hasSubscribers) diag.channelOpen.publish(this.diagnosticsRef());
  }

  /** Follows the 'message' listeners (see {@link messageListeners}); idempotent. */
  private watchListeners(): void {
    const self = this as EventEmitter;
    if (!self.listeners('newListener').includes(this.onNewListener)) self.on('newListener', this.onNewListener);
    if (!self.listeners('removeListener').includes(this.onRemoveListener)) self.on('removeListener', this.onRemoveListener);
  }

  private readonly onNewListener = (event: string | symbol): void => {
    if (event !== 'message') return;
    this.messageListeners = undefined;
    queueMicrotask(() => {
      // Messages that arrived while nobody listened (a listener removed mid-batch, say) come first.
      while (this.inbox.length > 0 && this.listening() && this.waiters.length === 0) {
        this.emitMessage(this.inbox.shift()!);
      }
      this.consumerAppeared();
    });
  };

  private readonly onRemoveListener = (event: string | symbol): void => {
    if (event === 'message') this.messageListeners = undefined;
  };

  /** As EventEmitter's; the channel goes on following its 'message' listeners (it removes its own watch too). */
  override removeAllListeners(...args: Parameters<EventEmitter<ChannelEvents>['removeAllListeners']>): this {
    super.removeAllListeners(...args);
    this.messageListeners = undefined;
    this.watchListeners();
    return this;
  }

  // ── extras (issue 11 item 6) ──
  /** @internal The session arena: typed channels (src/codec) put large values in its blocks. */
  get arenaForCodecs(): ChannelHost['sessionArenaForChannels'] {
    return this.link.host.sessionArenaForChannels;
  }
  // ── end extras ──

  /** `open` until closed. */
  get state(): 'open' | 'closed' {
    return this.closeReason === undefined ? 'open' : 'closed';
  }

  /** Requests awaiting their reply. */
  get pendingRequests(): number {
    return this.requests.size;
  }

  /** True when small messages reach 'message' listeners as views (see {@link setMessageViews}). */
  get messageViews(): boolean {
    return this.views;
  }

  /**
   * Message views (receiving side, a local choice): a plain message copied into the channel (not a block, not a
   * request or reply) is handed to 'message' listeners as a view of the shared ring instead of a private copy.
   * The view is valid only until the listener returns (and not past a `close()` made inside it) — copy what you
   * keep. Saves the copy-out per message,
   * which is most of a small message's receive cost. Messages for `for await` are always copies.
   */
  setMessageViews(on: boolean): void {
    if (typeof on !== 'boolean') throw new TypeError('messageViews must be a boolean');
    this.views = on;
  }

  /** True while this side polls the channel instead of parking (see {@link setSpin}). */
  get spin(): boolean {
    return this.spinning;
  }

  /**
   * Spin mode (shm): while on, this side never parks — it polls on every event-loop turn, for the lowest
   * latency at the cost of a busy core. A local choice: the peer decides for its own side (the opener with
   * `openChannel({ spin: true })`, the accepter by calling this in its `'channel'` handler). Off again when
   * the channel closes.
   */
  setSpin(on: boolean): void {
    if (typeof on !== 'boolean') throw new TypeError('spin must be a boolean');
    if (this.closeReason !== undefined || on === this.spinning) return;
    this.spinning = on;
    this.link.setSpin(this, on);
  }

  // ---- send side (issue 11 item 1): the contract of Node's Writable.write ----

  /**
   * Sends a message, like `Writable.write`: it is never dropped. Written to the transport at once when there is
   * room, else queued in call order (bytes copied, a block lent: the caller may reuse its buffer or release its
   * block at once). Returns false when the queue reached the high-water mark (`channels.sendHighWaterMark`):
   * the message is queued all the same — wait for `'drain'` before sending more. A producer that ignores false
   * gets `ESENDQUEUEFULL` (thrown; that message is not queued) past `channels.sendQueueLimit`, never a silent loss.
   * Bytes are copied; an arena Block (of this session's session or app arena) is sent by handle — the peer reads
   * the same memory.
   */
  send(data: Uint8Array | Block): boolean {
    return this.sendOrQueue(0, 0, data);
  }

  /**
   * Writes now or says it did not: true when written to the transport, false when it is full or sends are
   * queued (nothing was sent or queued; `'drain'` follows). For producers that would rather skip or coalesce
   * than queue.
   */
  trySend(data: Uint8Array | Block): boolean {
    return this.tryTagged(0, 0, data);
  }

  /**
   * Sends in call order; resolves once the message was written to the transport. Rejects with ECLOSED if the
   * channel closes first, AbortError / TimeoutError when `signal` / `timeoutMs` end the wait for room (the
   * message is then not sent), ESENDQUEUEFULL past `channels.sendQueueLimit`.
   */
  sendAsync(data: Uint8Array | Block, options?: SendOptions): Promise<void> {
    return this.enqueue(0, 0, data, options, 'send');
  }

  /** Bytes waiting in the send queue (each message counts its byte length plus 64 bytes for its bookkeeping). */
  get writableLength(): number {
    return this.queuedBytes;
  }

  /** Queued bytes at which `send` starts returning false (`channels.sendHighWaterMark`). */
  get writableHighWaterMark(): number {
    return this.link.host.sendLimits.highWaterMark;
  }

  /** True from a `send` that returned false until its `'drain'`. */
  get writableNeedDrain(): boolean {
    return this.needDrain;
  }
  // ---- end send side ----

  /**
   * Sends a request and resolves with the reply. Many may be in flight; each completes exactly once: reply,
   * timeout (TimeoutError), abort (AbortError) or channel close (ECLOSED), whichever comes first.
   */
  request(data: Uint8Array | Block, options: RequestOptions = NO_OPTIONS): Promise<Message> {
    return this.startRequest(options, (id, reply) => {
      if (this.outbox.length > 0 || !this.sendTagged(TAG_REQUEST, id, data)) {
        const queued = this.queue(TAG_REQUEST, id, data, (err) => err !== undefined && this.requests.fail(id, err));
        // A request that ends (abort, timeout) while it still waits for room is not sent at all.
        reply.catch(() => this.unqueue(queued));
      }
    });
  }

  /**
   * A request's life up to its sending: checks the options, registers the request (timeout, signal), then lets
   * `write` send it under its id — an error of `write` fails the request. Shared by {@link request} and
   * {@link commitRequest}.
   */
  private startRequest(options: RequestOptions, write: (id: number, reply: Promise<Message>) => void): Promise<Message> {
    try {
      this.assertOpen();
      if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
      const { timeout, signal } = options;
      const timeoutMs = options.timeoutMs ?? timeout;
      checkAbortOptions({ signal, timeoutMs });
      if (signal?.aborted) throw new AbortError('request aborted before it was sent', { cause: signal.reason });
      const id = this.requests.nextId();
      const reply = this.requests.add(id, timeoutMs, signal, this.id);
      if (diag.request.hasSubscribers) this.timeRequest(reply);
      if (this.requests.size === 1) this.io.resume(); // the reply must get through even with nobody listening
      try {
        write(id, reply);
      } catch (err) {
        this.requests.fail(id, err as Error);
      }
      return reply;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Iterates over incoming messages until the channel closes. */
  [Symbol.asyncIterator](): AsyncGenerator<Message> {
    return this.iterate(undefined);
  }

  /**
   * Iterates over incoming messages until the channel closes — or until `signal` aborts: the loop then throws
   * AbortError (as `events.on(emitter, name, { signal })` does); messages not yet taken stay for the next reader.
   */
  messages(options: { signal?: AbortSignal } = {}): AsyncGenerator<Message> {
    checkAbortOptions(options);
    return this.iterate(options.signal);
  }

  private async *iterate(signal: AbortSignal | undefined): AsyncGenerator<Message> {
    this.iterators++;
    this.consumerAppeared();
    try {
      for (;;) {
        if (signal?.aborted) throw abortError(`iterating channel ${this.id}`, signal);
        const next = this.inbox.shift();
        if (next !== undefined) {
          if (this.inbox.length === ITERATOR_BUFFER - 1) this.consumerAppeared();
          yield next;
          continue;
        }
        if (this.closeReason !== undefined) return;
        const r = await waitInQueue(this.waiters, signal, `iterating channel ${this.id}`);
        if (r.done) return;
        yield r.value;
      }
    } finally {
      this.iterators--;
    }
  }


  /**
   * Closes the channel (both ends). Idempotent; emits `'close'` exactly once. Messages not yet delivered are
   * dropped (blocks they carry are released). Safe inside a `'message'` handler: nothing more is delivered.
   */
  close(): void {
    this.finish('local-close', 'local');
  }

  /** `await using channel = await session.openChannel()`: closed at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /** @internal The session is closing: close without telling the peer (the session does). */
  closeFromSession(reason: CloseReason): void {
    this.finish(reason, 'session');
  }

  /** @internal The peer closed its end (`unread`: it never read it). */
  closeFromPeer(unread = false): void {
    this.finish('peer-closed', unread ? 'peer-unread' : 'peer');
  }

  // ---- batching and zero-copy writes (sendMany, reserve/commit) ----

  /**
   * Sends several messages as one batch: on the `shm` transport they are published to the peer together (one
   * store of the ring's write count) and wake it at most once; on `mq` and `socket` the writes of one tick travel
   * together anyway (in as few queue messages, or one socket write), so a loop of `send` costs the same. Each is
   * sent as {@link send} would (bytes copied, a Block by handle). Returns how many were sent, from the start of
   * `messages`; fewer than all when the channel filled up — then, as when `send` returns false,
   * `'drain'` follows and the rest is yours to send again. Throws (nothing sent) if any element is neither a
   * Uint8Array nor a Block.
   */
  sendMany(messages: readonly (Uint8Array | Block)[]): number {
    if (!Array.isArray(messages)) throw new TypeError('messages must be an array');
    for (const m of messages) {
      if (!(m instanceof Uint8Array) && !(m instanceof Block)) throw new TypeError('each message must be a Uint8Array or an arena Block');
    }
    this.assertOpen();
    if (this.outbox.length > 0 && messages.length > 0) {
      this.needDrain = true; // queued sends go first; 'drain' says when they went
      return 0;
    }
    let sent = 0;
    this.io.cork?.();
    try {
      for (const m of messages) {
        if (!this.sendTagged(0, 0, m)) break;
        sent++;
      }
    } finally {
      this.io.uncork?.();
    }
    if (sent < messages.length) this.needDrain = true;
    return sent;
  }

  /** Largest message {@link reserve} can make room for on this channel (bytes). */
  get maxReserve(): number {
    return this.io.maxInline;
  }

  /**
   * Zero-copy send, step 1: makes room for a message of at most `maxBytes` bytes and returns the place to write
   * it. On the `shm` transport the view *is* the ring in shared memory: what you write there is what the peer
   * reads, with no copy; on `mq` and `socket` it is a fresh buffer, sent (copied by the kernel) on commit.
   * Then call {@link commit} with the length you wrote, or {@link cancelReserve}.
   *
   * Returns undefined when the channel is full (nothing reserved): as when `send` returns false, wait for
   * `'drain'` and try again. One reservation at a time, and no other send on this channel until it is committed
   * or cancelled (they throw EBUSY). The view is valid only until then — never keep it.
   *
   * @param maxBytes an integer from 0 to {@link maxReserve}
   * @throws RangeError for a bad `maxBytes`; ECLOSED when the channel is closed; EBUSY when a reservation is open
   */
  reserve(maxBytes: number): Uint8Array | undefined {
    if (!Number.isInteger(maxBytes) || maxBytes < 0 || maxBytes > this.io.maxInline) {
      throw new RangeError(`maxBytes must be an integer from 0 to ${this.io.maxInline} (channel.maxReserve)`);
    }
    this.assertOpen();
    if (this.reservation !== undefined) throw new ShmxError('EBUSY', `channel ${this.id}: a reservation is open already`);
    if (this.blocked || this.outbox.length > 0) {
      this.needDrain = true;
      return undefined;
    }
    if (this.io.reserve === undefined) {
      this.reservation = { view: Buffer.allocUnsafe(maxBytes), direct: false };
      return this.reservation.view;
    }
    const view = this.io.reserve(maxBytes);
    if (view === undefined) {
      this.blocked = true;
      this.needDrain = true; // 'drain' follows once there is room
      return undefined;
    }
    this.reservation = { view, direct: true };
    return view;
  }

  /**
   * Zero-copy send, step 2: sends the first `length` bytes of the view {@link reserve} returned, as one plain
   * message (as `send` would have sent them). Never fails for want of room: the room was reserved.
   *
   * @param length an integer from 0 to the `maxBytes` reserved
   * @throws RangeError for a bad `length` (the reservation stays open); EBUSY when nothing is reserved; ECLOSED
   *   when the channel closed meanwhile (nothing is sent)
   */
  commit(length: number): void {
    const r = this.reservation;
    if (r === undefined) throw new ShmxError('EBUSY', `channel ${this.id}: nothing reserved to commit`);
    if (!Number.isInteger(length) || length < 0 || length > r.view.byteLength) {
      throw new RangeError(`length must be an integer from 0 to the ${r.view.byteLength} bytes reserved`);
    }
    this.reservation = undefined;
    if (!r.direct) {
      const body = r.view.subarray(0, length);
      if (this.outbox.length > 0 || !this.sendTagged(0, 0, body)) void this.enqueue(0, 0, body, undefined, 'commit').catch(() => {});
      return;
    }
    this.commitDirect(0, 0, length);
  }

  /** Gives up the open reservation, if any: nothing is sent, and other sends may go again. */
  cancelReserve(): void {
    const r = this.reservation;
    if (r === undefined) return;
    this.reservation = undefined;
    if (r.direct) this.io.cancelReserve?.();
  }

  // ── in-place writes of typed channels (issue 11 item 6): reserve/commit as a request or a reply ──

  /**
   * @internal Room in the ring (shm only) for a message of at most `maxBytes` bytes, for a typed channel to
   * encode a value into; undefined when there is none now (nothing reserved, nothing else changes: the caller
   * sends the ordinary way, which queues, blocks and owes 'drain' as it always does). Undefined too when a
   * reservation is open, sends are queued or the channel waits for room — an in-place write never overtakes
   * them — or the channel is closed (the ordinary way reports that). Commit with {@link commitInPlace} or
   * {@link commitRequest}, or give up with {@link cancelReserve}.
   */
  reserveInPlace(maxBytes: number): Uint8Array | undefined {
    if (this.io.reserve === undefined || this.closeReason !== undefined || this.reservation !== undefined ||
      this.blocked || this.outbox.length > 0) return undefined;
    const view = this.io.reserve(Math.min(maxBytes, this.io.maxInline));
    if (view === undefined) return undefined; // no room for maxBytes: the ordinary way tries the real length
    this.reservation = { view, direct: true };
    return view;
  }

  /**
   * @internal Sends the first `length` bytes of the {@link reserveInPlace} reservation as `send` would have sent
   * them — or, with `replyTo` (the id of a request this channel delivered), as its reply.
   */
  commitInPlace(length: number, replyTo?: number): void {
    this.takeDirectReservation(length);
    if (replyTo === undefined) this.commitDirect(0, 0, length);
    else this.commitDirect(TAG_RESPONSE, replyTo, length);
  }

  /**
   * @internal Sends the first `length` bytes of the {@link reserveInPlace} reservation as a request, exactly as
   * {@link request} would (same options, same timeout and abort; the request is registered before its bytes
   * are published). When the options refuse it (bad options, signal already aborted), nothing is sent: the
   * reservation is cancelled and the promise rejects.
   */
  commitRequest(length: number, options: RequestOptions = NO_OPTIONS): Promise<Message> {
    this.takeDirectReservation(length, true);
    const reply = this.startRequest(options, (id) => {
      this.reservation = undefined;
      this.commitDirect(TAG_REQUEST, id, length);
    });
    this.cancelReserve(); // the options refused the request: nothing was committed
    return reply;
  }

  /** Checks that the open reservation is an in-place one that holds `length`; `keep`: leave it open. */
  private takeDirectReservation(length: number, keep = false): void {
    const r = this.reservation;
    if (r === undefined || !r.direct) throw new ShmxError('EBUSY', `channel ${this.id}: nothing reserved in place to commit`);
    if (!Number.isInteger(length) || length < 0 || length > r.view.byteLength) {
      throw new RangeError(`length must be an integer from 0 to the ${r.view.byteLength} bytes reserved`);
    }
    if (!keep) this.reservation = undefined;
  }

  /** Publishes the transport's open reservation as an inline record (the channel's reservation is taken). */
  private commitDirect(flags: number, requestId: number, length: number): void {
    this.assertOpen();
    this.io.commit!(tagOf(BodyKind.Inline, flags), requestId, length);
    this.countSent(length + 8);
  }
  // ── end in-place writes ──

  // ---- used by the multiplexer ----

  /** @internal True when someone will take messages now; otherwise they stay in the transport. */
  get wantsMessages(): boolean {
    if (this.closeReason !== undefined) return false;
    if (this.listening()) return true;
    // Replies must get through to pending requests even when nobody listens for other messages.
    return (this.iterators > 0 || this.requests.size > 0) && this.inbox.length < ITERATOR_BUFFER;
  }

  /** @internal */
  get readable(): boolean {
    return this.io.readable;
  }

  /** @internal Delivers up to `limit` messages; returns how many. */
  pump(limit: number): number {
    if (!this.wantsMessages) return 0;
    // Without message views for a listener, every body is copied for the app: the transport copies a batch at once.
    const n = this.io.read(limit, this.deliverBound, !this.views || !this.listening());
    if (this.wantsMessages) this.io.resume();
    return n;
  }

  /** Someone takes messages now: have the transport report arrivals, and deliver what waits. */
  private consumerAppeared(): void {
    if (!this.wantsMessages) return;
    this.io.resume();
    this.link.consumerAppeared(this);
  }

  private readonly deliverBound = (tag: number, requestId: number, body: Uint8Array, owned?: boolean): void =>
    this.deliver(tag, requestId, body, owned === true);

  /** @internal There may be room again: send what waits, in order; emit 'drain' (if owed) once all went out. */
  checkDrain(): void {
    if (!this.blocked || this.closeReason !== undefined || !this.io.writable) return;
    this.blocked = false;
    while (this.outbox.length > 0) {
      const next = this.outbox.peek()!;
      let sent: boolean;
      try {
        sent = this.writeQueued(next);
      } catch (err) {
        this.outbox.shift();
        this.queuedBytes -= next.cost;
        this.takeBack(next);
        if (next.done !== undefined) next.done(err as Error);
        else this.link.host.logger.warn({ err, channel: this.id }, 'a queued message could not be sent');
        continue;
      }
      if (!sent) return; // full again: the next drain continues
      this.outbox.shift();
      this.queuedBytes -= next.cost;
      next.done?.();
    }
    if (this.needDrain && this.closeReason === undefined) {
      this.needDrain = false;
      this.emit('drain');
    }
  }

  // ---- internals ----

  private assertOpen(): void {
    if (this.closeReason !== undefined) {
      throw new ShmxError('ECLOSED', `channel ${this.id} is closed (${this.closeReason})`);
    }
  }

  // ---- send side internals (issue 11 item 1) ----

  /** send/reply: write now, else queue; false once the queue reached the high-water mark. */
  private sendOrQueue(flags: number, requestId: number, data: Uint8Array | Block): boolean {
    this.assertOpen();
    if (this.outbox.length === 0 && this.sendTagged(flags, requestId, data)) return true;
    this.queue(flags, requestId, data, undefined);
    if (this.queuedBytes < this.link.host.sendLimits.highWaterMark) return true;
    this.needDrain = true;
    return false;
  }

  /** trySend/tryReply: write now or nothing. */
  private tryTagged(flags: number, requestId: number, data: Uint8Array | Block): boolean {
    this.assertOpen();
    if (this.outbox.length === 0 && this.sendTagged(flags, requestId, data)) return true;
    this.needDrain = true;
    return false;
  }

  /** sendAsync/replyAsync: sends now if nothing waits and there is room, else queues; resolves once written. */
  private enqueue(flags: number, requestId: number, data: Uint8Array | Block, options: SendOptions | undefined, what: string): Promise<void> {
    try {
      this.assertOpen();
      checkAbortOptions(options);
      if (options?.signal?.aborted) throw abortError(`${what} on channel ${this.id}`, options.signal);
      if (this.outbox.length === 0 && this.sendTagged(flags, requestId, data)) return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      let stop = (): void => {};
      let queued: Queued;
      try {
        queued = this.queue(flags, requestId, data, (err) => {
          stop();
          if (err === undefined) resolve();
          else reject(err);
        });
      } catch (err) {
        reject(err);
        return;
      }
      stop = watchCancel(`${what} on channel ${this.id}`, options, (err) => {
        this.unqueue(queued);
        reject(err);
      });
    });
  }

  /**
   * Queues a message behind what waits: encoded now (small bytes copied, large ones spilled to the arena, a
   * block lent), so the caller may reuse its buffer or release its block. Throws ESENDQUEUEFULL past the limit.
   */
  private queue(flags: number, requestId: number, data: Uint8Array | Block, done: Queued['done']): Queued {
    if (!(data instanceof Uint8Array) && !(data instanceof Block)) {
      throw new TypeError('data must be a Uint8Array or an arena Block');
    }
    const cost = (data instanceof Uint8Array ? data.byteLength : 0) + QUEUED_MESSAGE_COST;
    const { queueLimit } = this.link.host.sendLimits;
    // The limit bounds what waits behind the first message, as Writable's highWaterMark does: one message larger
    // than the limit is still taken when nothing else waits (a 1 GiB send that meets a full transport).
    if (this.queuedBytes > 0 && this.queuedBytes + cost > queueLimit) {
      throw new ShmxError('ESENDQUEUEFULL', `channel ${this.id}: ${this.queuedBytes} bytes wait to be sent and this ` +
        `message would pass channels.sendQueueLimit (${queueLimit}); wait for 'drain' when send() returns false`,
      { resource: `${this.link.host.id}/${this.id}` });
    }
    const host = this.link.host;
    const encoded = encodeBody(host, data, flags, this.io.maxInline);
    encoded.spilled?.release(); // the lend keeps a spilled copy alive until the receiver lets go
    const body = kindOf(encoded.tag) === BodyKind.Inline ? new Uint8Array(encoded.body) : encoded.body;
    const queued: Queued = { tag: encoded.tag, requestId, body, cost, done };
    this.outbox.push(queued);
    this.queuedBytes += cost;
    return queued;
  }

  /** Takes a message out of the queue if it is still there (aborted, timed out): it is not sent. */
  private unqueue(queued: Queued): void {
    if (!this.outbox.remove(queued)) return;
    this.queuedBytes -= queued.cost;
    this.takeBack(queued);
  }

  /** Writes a queued message; false when the transport is full (then `blocked`). */
  private writeQueued(queued: Queued): boolean {
    if (!this.io.write(queued.tag, queued.requestId, queued.body)) {
      this.blocked = true;
      return false;
    }
    this.countSent(queued.body.byteLength + 8);
    return true;
  }

  /** A queued message that will not be sent: its lend (a block, a spilled copy) goes back. */
  private takeBack(queued: Queued): void {
    this.takeBackRecord(queued.tag, queued.requestId, queued.body);
  }

  /** A record that will not be sent (queued here, or held back by the transport): its lend goes back. */
  private readonly takeBackRecord = (tag: number, _requestId: number, body: Uint8Array): void => {
    try {
      takeBackLend(this.link.host, tag, body);
    } catch (err) {
      this.link.host.logger.warn({ err, channel: this.id }, 'taking back the lend of an unsent message failed');
    }
  };
  // ---- end send side internals ----

  private sendTagged(flags: number, requestId: number, data: Uint8Array | Block): boolean {
    this.assertOpen();
    if (this.reservation !== undefined) throw new ShmxError('EBUSY', `channel ${this.id}: commit or cancel the reservation first`);
    if (this.blocked) return false;
    const host = this.link.host;
    if (data instanceof Uint8Array && data.byteLength <= this.io.maxInline) {
      // Small bytes, the common case, go inline as they are (what encodeBody would decide): nothing to allocate.
      if (!this.io.write(tagOf(BodyKind.Inline, flags), requestId, data)) {
        this.blocked = true;
        return false;
      }
      this.countSent(data.byteLength + 8);
      return true;
    }
    if (!(data instanceof Uint8Array) && !(data instanceof Block)) {
      throw new TypeError('data must be a Uint8Array or an arena Block');
    }
    const { tag, body, spilled } = encodeBody(host, data, flags, this.io.maxInline);
    let sent = false;
    try {
      sent = this.io.write(tag, requestId, body);
    } finally {
      // The lend keeps a block alive for the receiver; if nothing was sent (refused, or the write threw), take it
      // back. A spilled copy is ours to let go of either way (the receiver's borrow keeps it alive).
      if (!sent) takeBackLend(host, tag, body);
      spilled?.release();
    }
    if (!sent) {
      this.blocked = true;
      return false;
    }
    this.countSent(body.byteLength + 8);
    return true;
  }

  /** One message of `bytes` (envelope included) went out. */
  private countSent(bytes: number): void {
    this.link.host.countOut(bytes);
    this.counters.messagesOut++;
    this.counters.bytesOut += bytes;
  }

  /** Delivers one record; `owned`: `body` is a private copy already (see Transport.read). */
  private deliver(tag: number, requestId: number, body: Uint8Array, owned: boolean): void {
    const host = this.link.host;
    host.countIn(body.byteLength + 8);
    this.counters.messagesIn++;
    this.counters.bytesIn += body.byteLength + 8;
    let message: Message;
    const replier = (tag & TAG_REQUEST) !== 0 ? this.replier : undefined;
    switch (kindOf(tag)) {
      case BodyKind.Inline: {
        if (owned) {
          message = new Message(body, undefined, requestId, replier, undefined);
          break;
        }
        // With message views on, a plain message for a 'message' listener (nobody awaits it later) is handed
        // over as a view of the ring: no copy, valid until the listener returns.
        if (this.views && (tag & (TAG_REQUEST | TAG_RESPONSE)) === 0 && this.waiters.length === 0 &&
          this.listening()) {
          message = new Message(body, undefined, requestId, undefined, undefined);
          break;
        }
        const copy = Buffer.allocUnsafe(body.byteLength);
        copy.set(body);
        message = new Message(copy, undefined, requestId, replier, undefined);
        break;
      }
      case BodyKind.Spilled: {
        // Read in place: the sender's copy into the arena is the only one (body.ts).
        const spilled = deliverSpilled(host, tag, body);
        message = new Message(spilled.bytes, undefined, requestId, replier, spilled.release);
        break;
      }
      case BodyKind.SessionBlock:
      case BodyKind.AppBlock: {
        const block = this.borrow(tag, body);
        // A borrowed block is a child of the session: released when the session closes, if not before.
        const child: SessionChild = { closeFromSession: () => message.release() };
        host.adopt(child);
        message = new Message(block.bytes, block, requestId, replier, () => host.disown(child));
        break;
      }
      default:
        throw new ShmxError('EPROTO', `channel ${this.id}: unknown message kind ${kindOf(tag)}`);
    }
    if ((tag & TAG_RESPONSE) !== 0) {
      if (!this.requests.complete(requestId, message)) message.release(); // late: its request already ended
      return;
    }
    this.dispatch(message);
  }

  /** How this channel's requests are answered (shared by all its request messages). */
  private readonly replier: Replier = {
    reply: (requestId, d) => this.sendOrQueue(TAG_RESPONSE, requestId, d),
    tryReply: (requestId, d) => this.tryTagged(TAG_RESPONSE, requestId, d),
    replyAsync: (requestId, d, options) => this.enqueue(TAG_RESPONSE, requestId, d, options, 'reply'),
  };

  private borrow(tag: number, body: Uint8Array): Block {
    return borrowBody(this.link.host, tag, body);
  }

  private dispatch(message: Message): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter({ value: message, done: false });
      return;
    }
    if (this.listening()) {
      if (this.inbox.length === 0) {
        this.emitMessage(message);
        return;
      }
      // Earlier messages still wait in the inbox (they came while nobody listened): they go first.
      this.inbox.push(message);
      while (this.inbox.length > 0 && this.listening()) this.emitMessage(this.inbox.shift()!);
      return;
    }
    this.inbox.push(message);
  }

  // ---- listener errors (issue 11 item 2): the session's, never the process's ----
  private emitMessage(message: Message): void {
    callCounted(this, this.currentListeners(), [message], this.listenerOutcome);
  }

  /** The 'message' listeners now (a snapshot: never changed in place, replaced when they change). */
  private currentListeners(): Listener[] {
    return (this.messageListeners ??= this.rawListeners('message') as Listener[]);
  }

  /** True when a 'message' listener is registered. */
  private listening(): boolean {
    return this.currentListeners().length > 0;
  }

  /** A 'message' listener's outcome, async ones included, goes to the session's error policy. */
  private readonly listenerOutcome: ListenerOutcome = {
    error: (err) => this.countError(err),
    success: () => this.link.host.countSuccess(),
  };

  /** @internal A rejected listener of any other event ('drain', 'close'): an error of the session. */
  override [REJECTION](err: Error, ..._event: unknown[]): void {
    this.countError(err);
  }

  /** @internal An application error on this channel (a listener here or in a Worker it is bridged to). */
  countError(err: unknown): void {
    this.link.host.countError(err);
  }
  // ---- end listener errors ----

  private finish(reason: CloseReason, how: CloseHow): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.spinning = false;
    // First: no more reads (even when we are inside a 'message' handler of a batch) and no more writes.
    this.io.stop(this.takeBackRecord);
    this.requests.failAll(reason);
    const closed = new ShmxError('ECLOSED', `channel ${this.id} closed (${reason}) before the message was sent`);
    for (const o of this.outbox.takeAll()) {
      this.takeBack(o);
      o.done?.(closed);
    }
    this.queuedBytes = 0;
    this.needDrain = false;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
    for (const m of this.inbox.takeAll()) m.release();
    try {
      this.link.closed(this, reason, how, this.io);
    } finally {
      this.emit('close', reason);
      if (diag.channelClose.hasSubscribers) {
        diag.channelClose.publish({ ...this.diagnosticsRef(), reason, counters: { ...this.counters } });
      }
    }
  }

  /** @internal What operators see of this channel's state beyond its counters (`shmx session`). */
  inspect(): { pendingRequests: number; queuedSends: number; inbox: number; ringFill?: { out: number; in: number } } {
    return { pendingRequests: this.requests.size, queuedSends: this.outbox.length, inbox: this.inbox.length, ringFill: this.io.fill?.() };
  }

  private diagnosticsRef() {
    const { host } = this.link;
    return { sessionId: host.id, serverApp: host.serverApp, side: host.side, channelId: this.id, transport: this.transport };
  }

  /** Publishes the request's latency when it settles (only while someone subscribes: see diagnostics.ts). */
  private timeRequest(reply: Promise<Message>): void {
    const started = performance.now();
    const done = (ok: boolean) => {
      diag.request.publish({ ...this.diagnosticsRef(), durationMs: performance.now() - started, ok });
    };
    reply.then(() => done(true), () => done(false));
  }
}
