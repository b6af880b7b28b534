/**
 * A received message. `bytes` is the payload: for a block sent by handle, and for a large copied payload (over
 * `maxInline`, which the sender copied once into the session arena), a view of the very bytes the sender wrote
 * in the arena (zero-copy), valid until `release()`; for a small copied payload, a private copy.
 */
import '../dispose.js';
import type { AbortOptions } from '../abort.js';
import type { Block } from '../arena/index.js';

/** @internal How a request is answered: as the channel's send, trySend and sendAsync. */
export interface Replier {
  reply(requestId: number, data: Uint8Array | Block): boolean;
  tryReply(requestId: number, data: Uint8Array | Block): boolean;
  replyAsync(requestId: number, data: Uint8Array | Block, options?: AbortOptions): Promise<void>;
}

/** A received message (see the file comment: copied bytes, or a view of a block sent by handle). */
export class Message {
  /**
   * The payload. For a block message, and for a copied payload larger than the channel's `maxInline`, a view into
   * shared memory valid until {@link release} (a large copied payload is also let go when this view is
   * garbage-collected; past a quarter of the session arena held that way — half, for one payload held alone —
   * it is delivered as a private copy). A small copied payload is a private copy, a Buffer that may share its
   * memory with other messages' (as small Buffers share Node's pool: messages that arrived together are copied
   * together).
   */
  readonly bytes: Uint8Array;
  /** For a message sent as an arena Block: the borrowed block. Release it when done (or the session will). */
  readonly block: Block | undefined;
  /** @internal Request id when this message is a request (reply with {@link reply}). */
  readonly requestId: number;
  private readonly replier: Replier | undefined;
  private readonly onRelease: (() => void) | undefined;

  /** @internal */
  constructor(
    bytes: Uint8Array,
    block: Block | undefined,
    requestId: number,
    replier: Replier | undefined,
    onRelease: (() => void) | undefined,
  ) {
    this.bytes = bytes;
    this.block = block;
    this.requestId = requestId;
    this.replier = replier;
    this.onRelease = onRelease;
  }

  /** True when the sender awaits a reply ({@link reply}). */
  get isRequest(): boolean {
    return this.replier !== undefined;
  }

  /**
   * Answers a request, as `channel.send`: never dropped — written now or queued in order; false when the
   * channel's queue reached its high-water mark (wait for the channel's `'drain'`).
   */
  reply(data: Uint8Array | Block): boolean {
    return this.requester().reply(this.requestId, data);
  }

  /** Answers now or not at all, as `channel.trySend`: false when nothing was sent. */
  tryReply(data: Uint8Array | Block): boolean {
    return this.requester().tryReply(this.requestId, data);
  }

  /** Answers in order with the channel's other queued sends; resolves once written (abortable while it waits). */
  replyAsync(data: Uint8Array | Block, options?: AbortOptions): Promise<void> {
    return this.requester().replyAsync(this.requestId, data, options);
  }

  private requester(): Replier {
    if (this.replier === undefined) throw new TypeError('this message is not a request');
    return this.replier;
  }

  /** Releases the borrowed block, or the hold on a large copied payload read in place (no-op for small copied
   *  messages). Idempotent. */
  release(): void {
    if (this.block === undefined) {
      this.onRelease?.(); // a payload read in place (idempotent), or nothing
    } else if (this.block.held) {
      this.block.release();
      this.onRelease?.();
    }
  }

  /** `using m = await channel.request(…)`: released at the end of the scope. */
  [Symbol.dispose](): void {
    this.release();
  }
}
