/**
 * Channel: ordered, lossless messaging between the two sides of a session, the same API over every transport.
 * Small payloads are copied; an arena Block is sent by handle, so its size does not matter; requests are
 * matched to replies by id. Backpressure is explicit: `send` returns false and `'drain'` follows.
 */
import { EventEmitter } from 'node:events';
import { Block } from '../arena/index.js';
import type { CloseReason } from '../close-reason.js';
import { diag } from '../diagnostics.js';
import { AbortError, ShmxError } from '../errors.js';
import { borrowBody, deliverSpilled, encodeBody, takeBackLend } from './body.js';
import { BodyKind, kindOf, TAG_REQUEST, TAG_RESPONSE } from './envelope.js';
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

/** Options of a request. */
export interface RequestOptions {
  /** Reject with TimeoutError when no reply arrives in time. */
  timeout?: number;
  /** Reject with AbortError when aborted. */
  signal?: AbortSignal;
}

export interface ChannelEvents {
  message: [message: Message];
  /** After `send` returned false: there is room again. */
  drain: [];
  /** Exactly once. */
  close: [reason: CloseReason];
}

const NO_OPTIONS: RequestOptions = {};

/** Traffic of one channel (envelope bytes included), for operators: `shmx session`, metrics. */
export interface ChannelCounters {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
}

/** Messages buffered for an async iterator before the transport is left to fill (backpressure). */
const ITERATOR_BUFFER = 256;
/** From this size up, an inline body of the mq or socket transport is handed over as is, not copied (see deliver). */
const OWN_BODY_MIN = 64 * 1024;

/** Messages delivered per turn before yielding to the event loop. */
export const DELIVERY_BATCH = 512;

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
  private readonly inbox: Message[] = [];
  private readonly waiters: Array<(r: IteratorResult<Message>) => void> = [];
  private iterators = 0;
  private blocked = false;
  /** Sends waiting for room, in call order: nothing may overtake them. */
  private readonly outbox: Array<{ flags: number; requestId: number; data: Uint8Array | Block; done: (err?: Error) => void }> = [];
  private closeReason: CloseReason | undefined;
  private views = false;

  /** @internal Made by the session's channel multiplexer. */
  constructor(link: ChannelLink, id: number, transport: Transport, metadata: unknown, init: boolean) {
    super();
    this.link = link;
    this.id = id;
    this.io = transport;
    this.transport = transport.kind;
    this.metadata = metadata;
    this.init = init;
    (this as EventEmitter).on('newListener', (event: string) => {
      if (event === 'message') {
        queueMicrotask(() => {
          // Messages that arrived while nobody listened (a listener removed mid-batch, say) come first.
          while (this.inbox.length > 0 && this.listenerCount('message') > 0 && this.waiters.length === 0) {
            this.emitMessage(this.inbox.shift()!);
          }
          this.consumerAppeared();
        });
      }
    });
    if (diag.channelOpen.hasSubscribers) diag.channelOpen.publish(this.diagnosticsRef());
  }

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

  /**
   * Sends a message: bytes are copied; an arena Block (of this session's session or app arena) is sent by
   * handle — the peer reads the same memory. The sender keeps its own hold on the block. Returns false when
   * the channel is full: nothing was sent; wait for `'drain'` (or use {@link sendAsync}).
   */
  send(data: Uint8Array | Block): boolean {
    this.assertOpen();
    if (this.outbox.length > 0) return false; // queued sends go first
    return this.sendTagged(0, 0, data);
  }

  /** Sends in call order, waiting for room when full. Rejects (ECLOSED) if the channel closes first. Keep a
   *  Block held until this resolves. */
  sendAsync(data: Uint8Array | Block): Promise<void> {
    return this.enqueue(0, 0, data);
  }

  /**
   * Sends a request and resolves with the reply. Many may be in flight; each completes exactly once: reply,
   * timeout (TimeoutError), abort (AbortError) or channel close (ECLOSED), whichever comes first.
   */
  request(data: Uint8Array | Block, options: RequestOptions = NO_OPTIONS): Promise<Message> {
    try {
      this.assertOpen();
      const { timeout, signal } = options;
      if (timeout !== undefined && (!Number.isFinite(timeout) || timeout <= 0)) {
        throw new RangeError('timeout must be a positive number of milliseconds');
      }
      if (signal?.aborted) throw new AbortError('request aborted before it was sent');
      const id = this.requests.nextId();
      const reply = this.requests.add(id, timeout, signal, this.id);
      if (diag.request.hasSubscribers) this.timeRequest(reply);
      if (this.requests.size === 1) this.io.resume(); // the reply must get through even with nobody listening
      try {
        if (this.outbox.length > 0 || !this.sendTagged(TAG_REQUEST, id, data)) {
          this.enqueue(TAG_REQUEST, id, data).catch((err: Error) => this.requests.fail(id, err));
        }
      } catch (err) {
        this.requests.fail(id, err as Error);
      }
      return reply;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Iterates over incoming messages until the channel closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Message> {
    this.iterators++;
    this.consumerAppeared();
    try {
      for (;;) {
        const next = this.inbox.shift();
        if (next !== undefined) {
          if (this.inbox.length === ITERATOR_BUFFER - 1) this.consumerAppeared();
          yield next;
          continue;
        }
        if (this.closeReason !== undefined) return;
        const r = await new Promise<IteratorResult<Message>>((resolve) => this.waiters.push(resolve));
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

  /** @internal The session is closing: close without telling the peer (the session does). */
  closeFromSession(reason: CloseReason): void {
    this.finish(reason, 'session');
  }

  /** @internal The peer closed its end (`unread`: it never read it). */
  closeFromPeer(unread = false): void {
    this.finish('peer-closed', unread ? 'peer-unread' : 'peer');
  }

  // ---- used by the multiplexer ----

  /** @internal True when someone will take messages now; otherwise they stay in the transport. */
  get wantsMessages(): boolean {
    if (this.closeReason !== undefined) return false;
    if (this.listenerCount('message') > 0) return true;
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
    const n = this.io.read(limit, this.deliverBound);
    if (this.wantsMessages) this.io.resume();
    return n;
  }

  /** Someone takes messages now: have the transport report arrivals, and deliver what waits. */
  private consumerAppeared(): void {
    if (!this.wantsMessages) return;
    this.io.resume();
    this.link.consumerAppeared(this);
  }

  private readonly deliverBound = (tag: number, requestId: number, body: Uint8Array): void =>
    this.deliver(tag, requestId, body);

  /** @internal There may be room again: send what waits, in order; emit 'drain' once all went out. */
  checkDrain(): void {
    if (!this.blocked || this.closeReason !== undefined || !this.io.writable) return;
    this.blocked = false;
    while (this.outbox.length > 0) {
      const next = this.outbox[0]!;
      let sent: boolean;
      try {
        sent = this.sendTagged(next.flags, next.requestId, next.data);
      } catch (err) {
        this.outbox.shift();
        next.done(err as Error);
        continue;
      }
      if (!sent) return; // full again: the next drain continues
      this.outbox.shift();
      next.done();
    }
    this.emit('drain');
  }

  // ---- internals ----

  private assertOpen(): void {
    if (this.closeReason !== undefined) {
      throw new ShmxError('ECLOSED', `channel ${this.id} is closed (${this.closeReason})`);
    }
  }

  /** Sends now if nothing waits and there is room, else queues; resolves once sent. */
  private enqueue(flags: number, requestId: number, data: Uint8Array | Block): Promise<void> {
    try {
      this.assertOpen();
      if (this.outbox.length === 0 && this.sendTagged(flags, requestId, data)) return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      this.outbox.push({ flags, requestId, data, done: (err) => (err === undefined ? resolve() : reject(err)) });
    });
  }

  private sendTagged(flags: number, requestId: number, data: Uint8Array | Block): boolean {
    this.assertOpen();
    if (this.blocked) return false;
    const host = this.link.host;
    if (!(data instanceof Uint8Array) && !(data instanceof Block)) {
      throw new TypeError('data must be a Uint8Array or an arena Block');
    }
    const { tag, body, spilled } = encodeBody(host, data, flags, this.io.maxInline);
    const sent = this.io.write(tag, requestId, body);
    // The lend keeps a block alive for the receiver; if nothing was sent, take it back. A spilled copy is ours
    // to let go of either way (the receiver's borrow keeps it alive).
    if (!sent) takeBackLend(host, tag, body);
    spilled?.release();
    if (!sent) {
      this.blocked = true;
      return false;
    }
    host.countOut(body.byteLength + 8);
    this.counters.messagesOut++;
    this.counters.bytesOut += body.byteLength + 8;
    return true;
  }

  private deliver(tag: number, requestId: number, body: Uint8Array): void {
    const host = this.link.host;
    host.countIn(body.byteLength + 8);
    this.counters.messagesIn++;
    this.counters.bytesIn += body.byteLength + 8;
    let message: Message;
    const replier = (tag & TAG_REQUEST) !== 0 ? this.replier : undefined;
    switch (kindOf(tag)) {
      case BodyKind.Inline: {
        // With message views on, a plain message for a 'message' listener (nobody awaits it later) is handed
        // over as a view of the ring: no copy, valid until the listener returns.
        if (this.views && (tag & (TAG_REQUEST | TAG_RESPONSE)) === 0 && this.waiters.length === 0 &&
          this.listenerCount('message') > 0) {
          message = new Message(body, undefined, requestId, undefined, undefined);
          break;
        }
        // A large body of a kernel-copying transport is already in memory of its own (the frame the socket's
        // reader assembled, the message mq received): no second copy. The ring's bodies are shared memory.
        if (body.byteLength >= OWN_BODY_MIN && this.io.kind !== 'shm') {
          message = new Message(Buffer.from(body.buffer, body.byteOffset, body.byteLength), undefined, requestId, replier, undefined);
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
    replyNow: (requestId, d) => this.outbox.length === 0 && this.sendTagged(TAG_RESPONSE, requestId, d),
    replyQueued: (requestId, d) => this.enqueue(TAG_RESPONSE, requestId, d),
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
    if (this.listenerCount('message') > 0) {
      if (this.inbox.length === 0) {
        this.emitMessage(message);
        return;
      }
      // Earlier messages still wait in the inbox (they came while nobody listened): they go first.
      this.inbox.push(message);
      while (this.inbox.length > 0 && this.listenerCount('message') > 0) this.emitMessage(this.inbox.shift()!);
      return;
    }
    this.inbox.push(message);
  }

  private emitMessage(message: Message): void {
    try {
      this.emit('message', message);
      this.link.host.countSuccess();
    } catch (err) {
      this.link.host.countError(err);
    }
  }

  private finish(reason: CloseReason, how: CloseHow): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.spinning = false;
    // First: no more reads (even when we are inside a 'message' handler of a batch) and no more writes.
    this.io.stop();
    this.requests.failAll(reason);
    const closed = new ShmxError('ECLOSED', `channel ${this.id} closed (${reason}) before the message was sent`);
    for (const o of this.outbox.splice(0)) o.done(closed);
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
    for (const m of this.inbox.splice(0)) m.release();
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
