/**
 * A channel over a pair of POSIX message queues. The opener creates both queues (recorded in its ledger, so a
 * sweep finds them even without /dev/mqueue) and removes them on close; the accepter opens them by name. A
 * payload larger than the queue's message size goes through the session arena.
 *
 * Backpressure: messages stay in the kernel queue until the channel takes them. We wait for the queue on the
 * event loop only while the channel wants messages, and take at most one message ahead of it; a full queue
 * makes the sender's `write` return false.
 */
import { createRecordedQueue, removeRecordedQueue } from '../cleanup/ledger.js';
import { native, type NativeMessageQueue } from '../native.js';
import { ENVELOPE_BYTES } from './envelope.js';
import type { RecordVisitor, Transport } from './transport.js';

/** Queue attributes of mq channels. */
export interface MqChannelOptions {
  /** mq_maxmsg (default 10, the usual fs.mqueue.msg_max). */
  maxMessages?: number;
  /** mq_msgsize (default 8192, the usual fs.mqueue.msgsize_max). */
  messageSize?: number;
}

/** How often a sender refused by a full queue looks whether there is room (a full queue has no event). */
const FULL_POLL_MS = 5;

/** The two queue names of a channel: opener → accepter first. */
export function queueNames(scopePrefix: string, channelId: number): [string, string] {
  return [`${scopePrefix}c${channelId}.a`, `${scopePrefix}c${channelId}.b`];
}

function visitMessage(m: Uint8Array, visit: RecordVisitor): void {
  if (m.byteLength < ENVELOPE_BYTES) {
    visit(0, 0, m);
    return;
  }
  const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
  visit(dv.getUint32(0, true), dv.getUint32(4, true), m.subarray(ENVELOPE_BYTES));
}

export class MqTransport implements Transport {
  readonly kind = 'mq' as const;
  readonly maxInline: number;
  /** Messages taken from the kernel queue by the event-loop wait, not yet delivered (at most one). */
  private readonly queued: Uint8Array[] = [];
  private armed = false;
  private full = false;
  private fullTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private closed = false;
  /** After a discard: where messages that still arrive go. */
  private sink: RecordVisitor | undefined;

  private constructor(
    private readonly out: NativeMessageQueue,
    private readonly inq: NativeMessageQueue,
    private readonly created: { serverApp: string; names: [string, string] } | undefined,
    private readonly onIncoming: () => void,
    private readonly onWritable: () => void,
  ) {
    this.maxInline = out.attributes().messageSize - ENVELOPE_BYTES;
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

  /** Waits for the next message on the event loop (the descriptor is polled, no thread blocks). */
  private arm(): void {
    this.armed = true;
    this.inq.receiveAsync().then(
      (m) => {
        this.armed = false;
        if (this.sink !== undefined) {
          visitMessage(m, this.sink);
          return;
        }
        this.queued.push(m);
        if (!this.stopped) this.onIncoming();
      },
      () => {
        this.armed = false; // rejected on close
      },
    );
  }

  resume(): void {
    if (!this.armed && !this.stopped && this.queued.length === 0) this.arm();
  }

  write(tag: number, requestId: number, body: Uint8Array): boolean {
    const message = Buffer.allocUnsafe(ENVELOPE_BYTES + body.byteLength);
    message.writeUInt32LE(tag, 0);
    message.writeUInt32LE(requestId, 4);
    message.set(body, ENVELOPE_BYTES);
    if (this.out.send(message)) return true;
    this.watchForRoom();
    return false;
  }

  /**
   * A full queue gives no event when it empties: check its depth until there is room — soon at first (a reader
   * that keeps up makes room within a millisecond), then every {@link FULL_POLL_MS}. The timer never keeps the
   * process alive by itself.
   */
  private watchForRoom(): void {
    this.full = true;
    if (this.fullTimer !== undefined) return;
    let delay = 1;
    const check = (): void => {
      this.fullTimer = undefined;
      if (this.stopped) return;
      const a = this.out.attributes();
      if (a.currentMessages < a.maxMessages) {
        this.full = false;
        this.onWritable();
        return;
      }
      delay = Math.min(FULL_POLL_MS, delay * 2);
      this.fullTimer = setTimeout(check, delay);
      this.fullTimer.unref();
    };
    this.fullTimer = setTimeout(check, delay);
    this.fullTimer.unref();
  }

  read(limit: number, deliver: RecordVisitor): number {
    let n = 0;
    for (; n < limit && !this.stopped; n++) {
      const m = this.queued.shift() ?? this.inq.receive();
      if (m === null || m === undefined) break;
      visitMessage(m, deliver);
    }
    return n;
  }

  get readable(): boolean {
    return this.queued.length > 0;
  }

  get writable(): boolean {
    return !this.full;
  }

  stop(): void {
    this.stopped = true;
    if (this.fullTimer !== undefined) clearTimeout(this.fullTimer);
    this.fullTimer = undefined;
  }

  discardInbound(visit: RecordVisitor): void {
    if (this.closed) return;
    this.sink = visit;
    for (let m = this.queued.shift(); m !== undefined; m = this.queued.shift()) visitMessage(m, visit);
    for (let m = this.inq.receive(); m !== null; m = this.inq.receive()) visitMessage(m, visit);
  }

  discardOutbound(visit: RecordVisitor): void {
    if (this.closed) return;
    for (let m = this.out.receive(); m !== null; m = this.out.receive()) visitMessage(m, visit);
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
