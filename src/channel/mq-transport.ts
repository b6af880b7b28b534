/**
 * A channel over a pair of POSIX message queues. The opener creates both queues (recorded in its ledger, so a
 * sweep finds them even without /dev/mqueue) and removes them on close; the accepter opens them by name. A
 * payload larger than the queue's message size goes through the session arena.
 *
 * Events: the kernel says when a queue is readable and when a full one has room again (its descriptor is
 * pollable both ways); the inbound queue is watched while the channel takes messages, the outbound one only
 * while a write waits for room. Both watches stay registered across messages, so a steady exchange costs no
 * epoll_ctl per message; how many messages a reader takes per wake-up is mq-drain.ts's call.
 *
 * Backpressure: messages stay in the kernel queue until the channel takes them — a channel that stops taking
 * them stops the inbound watch; a full outbound queue makes the sender's `write` return false.
 */
import { createRecordedQueue, removeRecordedQueue } from '../cleanup/ledger.js';
import { MQ_READABLE, MQ_WRITABLE, native, type NativeMessageQueue } from '../native.js';
import { ENVELOPE_BYTES } from './envelope.js';
import { MqDrainPolicy } from './mq-drain.js';
import { OWN_BODY_MIN, type RecordVisitor, type Transport } from './transport.js';

/** Queue attributes of mq channels. */
export interface MqChannelOptions {
  /** mq_maxmsg (default 10, the usual fs.mqueue.msg_max). */
  maxMessages?: number;
  /** mq_msgsize (default 8192, the usual fs.mqueue.msgsize_max). */
  messageSize?: number;
}

/** The two queue names of a channel: opener → accepter first. */
export function queueNames(scopePrefix: string, channelId: number): [string, string] {
  return [`${scopePrefix}c${channelId}.a`, `${scopePrefix}c${channelId}.b`];
}

export class MqTransport implements Transport {
  readonly kind = 'mq' as const;
  readonly maxInline: number;
  /** The inbound queue may hold messages: the watch said so and no read has found it empty since. */
  private ready = false;
  /** The inbound queue is watched. */
  private watching = false;
  /** resume() was called since the last readable event (someone takes messages). */
  private asked = false;
  private full = false;
  /** The inbound watch failed: the next read throws it. */
  private failure: Error | undefined;
  private stopped = false;
  private closed = false;
  /** After a discard: where messages that still arrive go. */
  private sink: RecordVisitor | undefined;
  private readonly drain = new MqDrainPolicy();
  /** Where messages are received (one at a time: a body is valid only during its visit), and a view of it. */
  private readonly scratch: Buffer;
  private readonly scratchView: DataView;
  /** Where each outgoing message is put together: mq_send copies it into the kernel before it returns. Not the
   *  receive scratch, which a listener with message views may still be reading when it replies. */
  private readonly outgoing: Buffer;

  private constructor(
    private readonly out: NativeMessageQueue,
    private readonly inq: NativeMessageQueue,
    private readonly created: { serverApp: string; names: [string, string] } | undefined,
    private readonly onIncoming: () => void,
    private readonly onWritable: () => void,
  ) {
    this.maxInline = out.attributes().messageSize - ENVELOPE_BYTES;
    // Not from Buffer's pool: the kernel writes into it, and it lives as long as the channel. Both queues'
    // sizes: the peer made them (when it opened the channel) and might have made them differ.
    this.scratch = Buffer.allocUnsafeSlow(Math.max(inq.attributes().messageSize, out.attributes().messageSize));
    this.scratchView = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
    this.outgoing = Buffer.allocUnsafeSlow(out.attributes().messageSize);
  }

  /**
   * Takes one message from `q` and shows it to `visit`: false when the queue is empty. A message shorter than an
   * envelope (only a broken peer sends one) is shown with tag 0, which no body kind has: the channel rejects it.
   */
  private receiveOne(q: NativeMessageQueue, visit: RecordVisitor): boolean {
    const length = q.receiveInto(this.scratch);
    if (length < 0) return false;
    if (length < ENVELOPE_BYTES) {
      visit(0, 0, this.scratch.subarray(0, length));
      return true;
    }
    const body = this.scratch.subarray(ENVELOPE_BYTES, length);
    const tag = this.scratchView.getUint32(0, true);
    const requestId = this.scratchView.getUint32(4, true);
    // A large body leaves the scratch buffer as a copy of its own, the only one (OWN_BODY_MIN).
    if (body.byteLength >= OWN_BODY_MIN) visit(tag, requestId, Buffer.from(body), true);
    else visit(tag, requestId, body);
    return true;
  }

  /** Opener: creates both queues. */
  static create(serverApp: string, names: [string, string], options: MqChannelOptions, mode: number,
    onIncoming: () => void, onWritable: () => void): MqTransport {
    const attrs = { maxMessages: options.maxMessages ?? 10, messageSize: options.messageSize ?? 8192, mode };
    const a = createRecordedQueue(serverApp, names[0], attrs);
    let b: NativeMessageQueue | undefined;
    try {
      b = createRecordedQueue(serverApp, names[1], attrs);
      return new MqTransport(a, b, { serverApp, names }, onIncoming, onWritable);
    } catch (err) {
      a.close();
      removeRecordedQueue(serverApp, names[0]);
      if (b !== undefined) {
        b.close();
        removeRecordedQueue(serverApp, names[1]);
      }
      throw err;
    }
  }

  /** Accepter: opens the opener's queues. */
  static open(names: [string, string], onIncoming: () => void, onWritable: () => void): MqTransport {
    const a = native.mqOpen(names[0]);
    let b: NativeMessageQueue | undefined;
    try {
      b = native.mqOpen(names[1]);
      return new MqTransport(b, a, undefined, onIncoming, onWritable);
    } catch (err) {
      a.close();
      b?.close();
      throw err;
    }
  }

  /**
   * The inbound queue is readable (level-triggered: again on every loop turn while a message waits). A second
   * event with nobody having read or asked since means the channel does not take messages now: stop watching
   * until it asks again ({@link resume}), rather than being woken on every loop turn.
   */
  private readonly onInbound = (_ready: number, error?: Error): void => {
    if (error !== undefined) {
      this.watching = false;
      this.failure = error;
    }
    if (this.sink !== undefined) {
      try {
        this.drainTo(this.sink);
      } catch {
        // discarding never fails; close() releases the queue
      }
      return;
    }
    if (this.ready && !this.asked) this.setWatch(false);
    this.ready = true;
    this.asked = false;
    if (!this.stopped) this.onIncoming();
  };

  /** The outbound queue has room again (or its watch failed: the next write reports why). */
  private readonly onOutbound = (): void => {
    this.out.watch(0);
    this.full = false;
    if (!this.stopped) this.onWritable();
  };

  private setWatch(on: boolean): void {
    if (on === this.watching) return;
    this.watching = on;
    this.inq.watch(on ? MQ_READABLE : 0, this.onInbound);
  }

  resume(): void {
    if (this.stopped) return;
    this.asked = true;
    this.setWatch(true);
  }

  write(tag: number, requestId: number, body: Uint8Array): boolean {
    const message = this.outgoing.subarray(0, ENVELOPE_BYTES + body.byteLength);
    message.writeUInt32LE(tag, 0);
    message.writeUInt32LE(requestId, 4);
    message.set(body, ENVELOPE_BYTES);
    if (this.out.send(message)) return true;
    if (!this.full) {
      this.full = true;
      this.out.watch(MQ_WRITABLE, this.onOutbound);
    }
    return false;
  }

  /**
   * Delivers up to `limit` messages. Finding the queue empty ends the batch until the next readable event; so
   * does the drain policy's limit (mq-drain.ts), assuming the queue empty — the level-triggered watch reports
   * at once if it is not.
   */
  read(limit: number, deliver: RecordVisitor): number {
    if (this.failure !== undefined) throw this.failure;
    const most = Math.min(limit, this.drain.limit());
    let n = 0;
    let emptied = false;
    while (n < most && !this.stopped) {
      if (!this.receiveOne(this.inq, deliver)) {
        emptied = true;
        break;
      }
      n++;
    }
    if (emptied || (n >= most && most < limit)) this.ready = false;
    this.drain.read(n, emptied);
    return n;
  }

  get readable(): boolean {
    return this.ready;
  }

  get writable(): boolean {
    return !this.full;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const q of [this.out, this.inq]) {
      try {
        q.watch(0);
      } catch {
        // closed already
      }
    }
    this.watching = false;
    this.ready = false;
  }

  /** Hands what waits to `visit`, and (watching the queue) what arrives later. */
  discardInbound(visit: RecordVisitor): void {
    if (this.closed) return;
    this.sink = visit;
    this.drainTo(visit);
    this.watching = true;
    this.inq.watch(MQ_READABLE, this.onInbound);
  }

  private drainTo(visit: RecordVisitor): void {
    while (this.receiveOne(this.inq, visit));
  }

  discardOutbound(visit: RecordVisitor): void {
    if (this.closed) return;
    while (this.receiveOne(this.out, visit));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stop();
    for (const q of [this.out, this.inq]) {
      try {
        q.close();
      } catch {
        // already closed
      }
    }
    if (this.created !== undefined) {
      for (const name of this.created.names) {
        try {
          removeRecordedQueue(this.created.serverApp, name);
        } catch {
          // gone already; a sweep removes what is left
        }
      }
    }
  }
}
