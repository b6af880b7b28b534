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
 * Batching: the writes of one tick are put together into as few queue messages as fit (mq-wire.ts), sent when
 * the tick's synchronous work is done, or at once when the next one would not fit — so a burst costs one mq_send
 * per queue message, not per channel message, and wakes the peer once.
 *
 * Backpressure: messages stay in the kernel queue until the channel takes them — a channel that stops taking
 * them stops the inbound watch; a full outbound queue keeps the batch waiting and makes the sender's `write`
 * return false until it went out.
 */
import { createRecordedQueue, removeRecordedQueue } from '../cleanup/ledger.js';
import { HANDLE_BYTES } from '../arena/handle.js';
import { ShmxError } from '../errors.js';
import { MQ_READABLE, MQ_WRITABLE, native, type NativeMessageQueue } from '../native.js';
import { MqDrainPolicy } from './mq-drain.js';
import { MQ_RECORD_HEADER, MqBatch, MqRecords } from './mq-wire.js';
import type { RecordVisitor, Transport } from './transport.js';

/** Queue attributes of mq channels. */
export interface MqChannelOptions {
  /** mq_maxmsg (default 10, the usual fs.mqueue.msg_max). */
  maxMessages?: number;
  /** mq_msgsize (default 8192, the usual fs.mqueue.msgsize_max; at least 44: a record carrying an arena handle). */
  messageSize?: number;
}

/** Smallest queue message size of an mq channel: one record carrying an arena handle (a spilled payload, a block). */
export const MQ_MIN_MESSAGE_SIZE = MQ_RECORD_HEADER + HANDLE_BYTES;

/** Checks an opener's queue attributes before any system call (the kernel's own limits are the addon's to check). */
export function checkMqOptions(options: unknown): MqChannelOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw new TypeError('mq must be an object');
  const { messageSize } = options as MqChannelOptions;
  if (messageSize !== undefined && !(Number.isInteger(messageSize) && messageSize >= MQ_MIN_MESSAGE_SIZE)) {
    throw new RangeError(`mq.messageSize must be an integer of at least ${MQ_MIN_MESSAGE_SIZE} (a record carrying an arena handle), got ${String(messageSize)}`);
  }
  return options as MqChannelOptions;
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
  /** The batch could not be sent (the queue was full): it waits for room, and writes are refused meanwhile. */
  private full = false;
  /** The inbound watch failed: the next read throws it. */
  private failure: Error | undefined;
  /** Sending a batch after its tick failed (not for want of room): the next write throws it. */
  private sendFailure: Error | undefined;
  private stopped = false;
  private closed = false;
  /** After a discard: where messages that still arrive go. */
  private sink: RecordVisitor | undefined;
  private readonly drain = new MqDrainPolicy();
  /** Where messages are received (one at a time: a body is valid only during its visit), and its records. */
  private readonly scratch: Buffer;
  private readonly records: MqRecords;
  /** Where outgoing records are put together: mq_send copies them into the kernel before it returns. Not the
   *  receive scratch, which a listener with message views may still be reading when it replies. */
  private readonly batch: MqBatch;
  /** Messages each queue holds (mq_maxmsg): how many one discard takes at most. */
  private readonly capacity: { in: number; out: number };

  private constructor(
    private readonly out: NativeMessageQueue,
    private readonly inq: NativeMessageQueue,
    private readonly created: { serverApp: string; names: [string, string] } | undefined,
    private readonly onIncoming: () => void,
    private readonly onWritable: () => void,
  ) {
    const sent = out.attributes();
    const received = inq.attributes();
    // The peer made the queues (when it opened the channel): too small for a handle, nothing large could be sent.
    const smallest = Math.min(sent.messageSize, received.messageSize);
    if (smallest < MQ_MIN_MESSAGE_SIZE) {
      throw new ShmxError('EINVAL', `mq channel queues of ${smallest}-byte messages: at least ${MQ_MIN_MESSAGE_SIZE} needed`);
    }
    this.maxInline = sent.messageSize - MQ_RECORD_HEADER;
    this.capacity = { in: received.maxMessages, out: sent.maxMessages };
    // Not from Buffer's pool: the kernel writes into it, and it lives as long as the channel. Both queues'
    // sizes: the peer made them (when it opened the channel) and might have made them differ.
    this.scratch = Buffer.allocUnsafeSlow(Math.max(received.messageSize, sent.messageSize));
    this.records = new MqRecords(this.scratch);
    this.batch = new MqBatch(Buffer.allocUnsafeSlow(sent.messageSize));
  }

  /** Receives one message of `q` into the scratch buffer, for {@link records}: false when the queue is empty. */
  private receive(q: NativeMessageQueue): boolean {
    const length = q.receiveInto(this.scratch);
    if (length < 0) return false;
    this.records.reset(length);
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

  /** The outbound queue has room again (or its watch failed: the next send reports why): the batch goes. */
  private readonly onOutbound = (): void => {
    this.out.watch(0);
    this.full = false;
    if (this.stopped) return;
    try {
      if (!this.flush()) return; // full again: watching
    } catch (err) {
      this.failSend(err as Error);
      return;
    }
    this.onWritable();
  };

  /** Sends the batch; false when the queue is full — then it waits, and the queue is watched for room. */
  private flush(): boolean {
    if (this.batch.isEmpty) return true;
    if (this.out.send(this.batch.bytes())) {
      this.batch.clear();
      return true;
    }
    if (!this.full) {
      this.full = true;
      this.out.watch(MQ_WRITABLE, this.onOutbound);
    }
    return false;
  }

  /** The tick that wrote is over: what it wrote goes out. */
  private readonly flushTick = (): void => {
    if (this.stopped || this.full) return;
    try {
      this.flush();
    } catch (err) {
      this.failSend(err as Error);
    }
  };

  /**
   * A batch the channel counted as sent could not be (not for want of room): the channel must not carry on as if
   * it had been. The next write throws it, and so does the next read, which the delivery loop asks for now —
   * faulting the session, as a failed inbound watch does.
   */
  private failSend(err: Error): void {
    this.sendFailure = err;
    this.failure ??= err;
    this.ready = true;
    this.onIncoming();
  }

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

  /** Accepted records wait in the batch until the tick ends (or the next would not fit). */
  write(tag: number, requestId: number, body: Uint8Array): boolean {
    if (this.sendFailure !== undefined) throw this.sendFailure;
    if (this.full) return false;
    if (!this.batch.fits(body.byteLength) && !this.flush()) return false;
    if (this.batch.isEmpty) process.nextTick(this.flushTick);
    this.batch.add(tag, requestId, body);
    return true;
  }

  /**
   * Delivers up to `limit` records: first what is left of the last message received, then from the queue.
   * Finding the queue empty ends the batch until the next readable event; so does the drain policy's limit of
   * messages per wake-up (mq-drain.ts), assuming the queue empty — the level-triggered watch reports at once if
   * it is not.
   */
  read(limit: number, deliver: RecordVisitor): number {
    if (this.failure !== undefined) throw this.failure;
    let n = this.deliverRecords(0, limit, deliver);
    if (n >= limit || this.stopped) return n;
    const most = this.drain.limit();
    let received = 0;
    let emptied = false;
    while (n < limit && received < most && !this.stopped) {
      if (!this.receive(this.inq)) {
        emptied = true;
        break;
      }
      received++;
      n = this.deliverRecords(n, limit, deliver);
    }
    if (emptied || received >= most) this.ready = false;
    this.drain.read(received, emptied);
    return n;
  }

  /** Shows records of the last message received until `limit` in all were delivered; returns that count. */
  private deliverRecords(n: number, limit: number, deliver: RecordVisitor): number {
    const { records } = this;
    while (n < limit && !this.stopped && records.more) {
      records.next(deliver);
      n++;
    }
    return n;
  }

  get readable(): boolean {
    return this.ready || this.records.more;
  }

  get writable(): boolean {
    return !this.full;
  }

  stop(unsent?: RecordVisitor): void {
    if (this.stopped) return;
    this.stopped = true;
    // What was accepted goes out now if there is room; what cannot, never will: the caller takes back its lends.
    try {
      this.flush(); // even after it found the queue full: the reader may have made room since
    } catch {
      // sent nothing: handed back below
    }
    if (unsent !== undefined) this.batch.visit(unsent);
    this.batch.clear();
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

  /**
   * Hands over what waits, up to one queue's worth: a peer that refills the queue as fast as we empty it must not
   * keep this loop (and the event loop) busy for ever — the level-triggered watch brings the rest a turn later.
   */
  private drainTo(visit: RecordVisitor): void {
    this.records.visitRest(visit);
    for (let n = 0; n < this.capacity.in && this.receive(this.inq); n++) this.records.visitRest(visit);
  }

  /** Up to one queue's worth: what we sent fits in it, and anything more is the peer writing into it. */
  discardOutbound(visit: RecordVisitor): void {
    if (this.closed) return;
    for (let n = 0; n < this.capacity.out && this.receive(this.out); n++) this.records.visitRest(visit);
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
