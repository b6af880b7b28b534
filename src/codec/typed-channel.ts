/**
 * Typed channels: a {@link Channel} seen through a {@link Codec}. `send`/`request`/`reply` take values, messages
 * decode on demand (`message.value`, once, cached), and everything else — order, backpressure, requests,
 * close — is the channel's own.
 *
 * Copies. A value under {@link LARGE_VALUE_BYTES}, sent by `send`, `request` or `reply` on the `shm` transport with
 * a codec that has `encodeInto`, is encoded straight into the channel's ring (the channel's in-place reservation,
 * committed as a message, a request or a reply): no copy on the sending side. The reservation is sized from the
 * channel's last small value (three times it, at least 4 KiB); a value that does not fit it, a
 * ring without room now, or sends already queued take the ordinary way — the value is encoded into the codec's
 * reused buffer (msgpackr hands out a fresh part of it each time) and the channel copies those bytes into its
 * transport (or queues them, in order, with the usual backpressure). That ordinary way is also the one of
 * `sendAsync`/`replyAsync`, of the `mq` and `socket` transports (the kernel copies anyway) and of codecs
 * without `encodeInto`. The receiver copies a small message out of the ring (one copy) unless it reads views.
 * A larger value goes into a session-arena Block sent by handle, so the receiver decodes it in place from shared
 * memory: with a codec that has `encodeInto`, the value is encoded straight into the block (no copy at all; the
 * block is sized from the channel's last large value, and a value that outgrows it is encoded again); otherwise
 * its encoded bytes are copied once into the block. Where a typed channel writes is {@link TypedChannel.write}
 * alone.
 *
 * Wire format: an inline message is the encoded value; a block message is `[u32 LE length][encoded value]`
 * (a block may be longer than the value).
 */
import { EventEmitter } from 'node:events';
import type { Arena, Block } from '../arena/index.js';
import type { Channel, ChannelEvents, Message } from '../channel/index.js';
import { ShmxError } from '../errors.js';
import { checkCodec, type Codec } from './codec.js';

/** Values this large (encoded bytes) or larger travel in an arena block by handle. */
export const LARGE_VALUE_BYTES = 32 * 1024;
/**
 * Smallest ring reservation for a value encoded in place. msgpackr will not start encoding into a buffer with
 * less than 2 KiB of room (it takes one of its own: `encodeInto` then says the value did not fit).
 */
const MIN_IN_PLACE_BYTES = 4096;
const LENGTH_BYTES = 4;

type Rest<F> = F extends (first: never, ...rest: infer R) => unknown ? R : never;

/** Events of a {@link TypedChannel}: those of its channel, with typed messages. */
export interface TypedChannelEvents<In> {
  message: [message: TypedMessage<In>];
  drain: ChannelEvents['drain'];
  close: ChannelEvents['close'];
}

/** A received message of a typed channel. `value` decodes it (once); `release()` as for any message. */
export class TypedMessage<In, Out = unknown> {
  private decoded = false;
  private cached: In | undefined;

  /** @internal */
  constructor(
    /** The message as the channel delivered it (its bytes are the encoded value). */
    readonly message: Message,
    private readonly owner: TypedChannel<Out, In>,
  ) {}

  /**
   * The decoded value. Decoded on first access; a value that came in shared memory (a large value, or a view
   * message) must be read before {@link release} — what it keeps is copied out of the shared memory.
   * Throws `EDECODE` (a ShmxError, the codec's error as `cause`) when the bytes are not a value of the codec.
   */
  get value(): In {
    if (!this.decoded) {
      this.cached = this.owner.decode(this.message);
      this.decoded = true;
    }
    return this.cached as In;
  }

  /** True when the sender awaits a reply. */
  get isRequest(): boolean {
    return this.message.isRequest;
  }

  /** Answers a request with a value, like `Message.reply`. */
  reply(value: Out): boolean {
    const inPlace = this.message.isRequest ? this.owner.replyInPlace(this.message.requestId) : undefined;
    return this.owner.write(value, (data) => this.message.reply(data), inPlace);
  }

  /** Answers a request with a value once there is room, like `Message.replyAsync`. */
  replyAsync(value: Out): Promise<void> {
    return this.owner.write(value, (data) => this.message.replyAsync(data));
  }

  /** Releases the message's block, if any (idempotent). */
  release(): void {
    this.message.release();
  }
}

/**
 * A channel whose messages are values of a codec: `Out` is what this side sends, `In` what it receives. Made by
 * `session.openChannel({ codec })` on the opening side and {@link typed} on the accepting side (both must use
 * the same codec). The underlying channel is {@link channel}.
 */
export class TypedChannel<Out = unknown, In = Out> extends EventEmitter<TypedChannelEvents<In>> {
  /** The codec of this channel. */
  readonly codec: Codec;
  /** Size of the last value sent by block: the next block is this plus a quarter. */
  private largeHint = 0;
  /** Size of the last small value: an in-place reservation is three times this (at least MIN_IN_PLACE_BYTES). */
  private smallHint = 0;
  /** The last value tried in place did not fit the largest reservation: values as large go the ordinary way. */
  private missedAtMost = false;
  private readonly sendInPlace = (length: number): boolean => {
    this.channel.commitInPlace(length);
    return true;
  };
  private readonly forward = (m: Message) => this.emit('message', new TypedMessage<In, Out>(m, this));

  /** @internal Use {@link typed} or `session.openChannel({ codec })`. */
  constructor(readonly channel: Channel, codec: Codec, private readonly arena: Arena) {
    super();
    this.codec = checkCodec(codec);
    channel.on('drain', () => this.emit('drain'));
    channel.on('close', (reason) => this.emit('close', reason));
    // The channel delivers to 'message' listeners only while it has some (else it keeps messages back, and the
    // sender sees backpressure): listen on it exactly while someone listens here.
    (this as EventEmitter).on('newListener', (event: string) => {
      if (event === 'message' && this.listenerCount('message') === 0) channel.on('message', this.forward);
    });
    (this as EventEmitter).on('removeListener', (event: string) => {
      if (event === 'message' && this.listenerCount('message') === 0) channel.off('message', this.forward);
    });
  }

  /** The channel's id. */
  get id(): number {
    return this.channel.id;
  }

  /** What the opener said this channel is for. */
  get metadata(): unknown {
    return this.channel.metadata;
  }

  /** `open` until closed. */
  get state(): 'open' | 'closed' {
    return this.channel.state;
  }

  /** Sends a value; the return value is the channel's `send`'s. */
  send(value: Out): boolean {
    return this.write(value, (data) => this.channel.send(data), this.sendInPlace);
  }

  /** Sends a value in call order once there is room, like the channel's `sendAsync`. */
  sendAsync(value: Out, ...options: Rest<Channel['sendAsync']>): Promise<void> {
    return this.write(value, (data) => this.channel.sendAsync(data, ...options));
  }

  /** Sends a value as a request; resolves with the typed reply (same options as the channel's `request`). */
  async request(value: Out, ...options: Rest<Channel['request']>): Promise<TypedMessage<In, Out>> {
    const reply = await this.write(value, (data) => this.channel.request(data, ...options),
      (length) => this.channel.commitRequest(length, ...options));
    return new TypedMessage<In, Out>(reply, this);
  }

  /** Iterates over incoming messages until the channel closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<TypedMessage<In, Out>> {
    for await (const m of this.channel) yield new TypedMessage<In, Out>(m, this);
  }

  /** Closes the channel (both ends), as `Channel.close`. */
  close(): ReturnType<Channel['close']> {
    return this.channel.close();
  }

  /**
   * @internal Encodes `value` and hands the bytes or block to `send` (the channel's send, request or reply).
   * The one place that decides where a value is written. A block goes back to the arena once `send` has lent
   * it (at once for a synchronous send, when the promise settles for the others). With `commit` (send, request,
   * reply), a small value is first tried in place: encoded into a reservation of the ring, which `commit`
   * publishes as `send` would have sent it.
   */
  write<R>(value: Out, send: (data: Uint8Array | Block) => R, commit?: (length: number) => R): R {
    if (commit !== undefined && this.largeHint < LARGE_VALUE_BYTES) {
      const n = this.encodeInPlace(value);
      if (n >= 0) return commit(n);
    }
    const block = this.encodeLarge(value);
    if (block === undefined) {
      const bytes = this.codec.encode(value);
      if (bytes.byteLength < LARGE_VALUE_BYTES) {
        this.smallHint = bytes.byteLength;
        return send(bytes);
      }
      return this.sendBlock(this.copyIntoBlock(bytes), send);
    }
    return this.sendBlock(block, send);
  }

  /** @internal How a request of this channel (id `requestId`) is answered in place. */
  replyInPlace(requestId: number): (length: number) => boolean {
    return (length) => {
      this.channel.commitInPlace(length, requestId);
      return true;
    };
  }

  /** @internal Decodes a message of this channel. */
  decode(message: Message): In {
    let bytes = message.bytes;
    const borrowed = message.block !== undefined || this.channel.messageViews;
    if (message.block !== undefined) {
      const length = bytes.byteLength >= LENGTH_BYTES ? new DataView(bytes.buffer, bytes.byteOffset, LENGTH_BYTES).getUint32(0, true) : -1;
      if (length < 0 || length > bytes.byteLength - LENGTH_BYTES) {
        throw new ShmxError('EDECODE', `a block message of typed channel ${this.channel.id} has no valid length prefix`);
      }
      bytes = bytes.subarray(LENGTH_BYTES, LENGTH_BYTES + length);
    }
    try {
      return this.codec.decode(bytes, borrowed) as In;
    } catch (cause) {
      throw new ShmxError('EDECODE', `${this.codec.name} could not decode a message of channel ${this.channel.id}`, { cause });
    }
  }

  /**
   * On `shm` with `encodeInto`: encodes `value` into a reservation of the ring and returns its length, the
   * reservation left open for the caller to commit; -1 when it was not (no room now, sends queued, the value
   * did not fit the reservation: nothing is reserved then).
   */
  private encodeInPlace(value: Out): number {
    const encodeInto = this.codec.encodeInto;
    const channel = this.channel;
    if (encodeInto === undefined || channel.transport !== 'shm') return -1;
    const most = Math.min(channel.maxReserve, LARGE_VALUE_BYTES - 1);
    if (most < MIN_IN_PLACE_BYTES) return -1; // a ring this small takes small values the ordinary way
    // Three times the last small value: msgpackr wants room for 3 bytes a character before it writes a string.
    const want = Math.max(MIN_IN_PLACE_BYTES, 3 * this.smallHint + 64);
    if (want > most && this.missedAtMost) return -1; // values this large did not fit the largest reservation
    const size = Math.min(most, want);
    const view = channel.reserveInPlace(size);
    if (view === undefined) return -1;
    let n: number;
    try {
      n = encodeInto.call(this.codec, value, view);
    } catch (err) {
      channel.cancelReserve();
      throw err;
    }
    if (n < 0 || n > view.byteLength) {
      channel.cancelReserve();
      this.missedAtMost = size === most;
      return -1;
    }
    this.missedAtMost = false;
    this.smallHint = n;
    return n;
  }

  /** With `encodeInto` and a channel that sent large values before: the value encoded in a block, in place. */
  private encodeLarge(value: Out): Block | undefined {
    const encodeInto = this.codec.encodeInto;
    if (encodeInto === undefined || this.largeHint < LARGE_VALUE_BYTES) return undefined;
    const block = this.arena.alloc(LENGTH_BYTES + this.largeHint + (this.largeHint >> 2));
    try {
      const n = encodeInto.call(this.codec, value, block.bytes.subarray(LENGTH_BYTES));
      if (n < 0) {
        block.release();
        this.largeHint = 0; // grew: encode() says how large it is now
        return undefined;
      }
      if (n < LARGE_VALUE_BYTES) {
        block.release();
        this.largeHint = n; // small again: next values go inline
        return undefined;
      }
      this.largeHint = n;
      new DataView(block.buffer, block.offset, LENGTH_BYTES).setUint32(0, n, true);
      return block;
    } catch (err) {
      block.release();
      throw err;
    }
  }

  private copyIntoBlock(bytes: Uint8Array): Block {
    this.largeHint = bytes.byteLength;
    const block = this.arena.alloc(LENGTH_BYTES + bytes.byteLength);
    new DataView(block.buffer, block.offset, LENGTH_BYTES).setUint32(0, bytes.byteLength, true);
    block.bytes.set(bytes, LENGTH_BYTES);
    return block;
  }

  private sendBlock<R>(block: Block, send: (data: Block) => R): R {
    let result: R;
    try {
      result = send(block);
    } catch (err) {
      block.release();
      throw err;
    }
    if (result instanceof Promise) {
      void result.then(() => block.release(), () => block.release());
    } else {
      block.release();
    }
    return result;
  }
}

/**
 * A typed view of `channel` with `codec` — on the accepting side, in the `'channel'` listener:
 *
 * ```ts
 * session.on('channel', (ch) => {
 *   const quotes = typed<Ack, Quote>(ch, msgpackCodec());
 *   quotes.on('message', (m) => { handle(m.value); m.release(); });
 * });
 * ```
 */
export function typed<Out = unknown, In = Out>(channel: Channel, codec: Codec<unknown> | Codec<Out | In>): TypedChannel<Out, In> {
  return new TypedChannel<Out, In>(channel, codec as Codec, channel.arenaForCodecs);
}
