/**
 * A channel over a pair of POSIX message queues. The opener creates both queues (recorded in its ledger, so a
 * sweep finds them even without /dev/mqueue) and removes them on close; the accepter opens them by name. A
 * payload larger than the queue's message size goes through the session arena.
 */
import { createRecordedQueue, removeRecordedQueue } from '../cleanup/ledger.js';
import { native, type NativeMessageQueue } from '../native.js';
import { ENVELOPE_BYTES } from './envelope.js';
import type { Transport } from './transport.js';

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
  private readonly queued: Uint8Array[] = [];
  private full = false;
  private fullTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly out: NativeMessageQueue,
    private readonly inq: NativeMessageQueue,
    private readonly created: { serverApp: string; names: [string, string] } | undefined,
    private readonly onIncoming: () => void,
    private readonly onWritable: () => void,
  ) {
    this.maxInline = out.attributes().messageSize - ENVELOPE_BYTES;
    this.arm();
  }

  /** Opener: creates both queues. */
  static create(serverApp: string, names: [string, string], options: MqChannelOptions, mode: number,
    onIncoming: () => void, onWritable: () => void): MqTransport {
    const attrs = { maxMessages: options.maxMessages ?? 10, messageSize: options.messageSize ?? 8192, mode };
    const a = createRecordedQueue(serverApp, names[0], attrs);
    let b: NativeMessageQueue;
    try {
      b = createRecordedQueue(serverApp, names[1], attrs);
    } catch (err) {
      a.close();
      removeRecordedQueue(serverApp, names[0]);
      throw err;
    }
    return new MqTransport(a, b, { serverApp, names }, onIncoming, onWritable);
  }

  /** Accepter: opens the opener's queues. */
  static open(names: [string, string], onIncoming: () => void, onWritable: () => void): MqTransport {
    const a = native.mqOpen(names[0]);
    try {
      return new MqTransport(native.mqOpen(names[1]), a, undefined, onIncoming, onWritable);
    } catch (err) {
      a.close();
      throw err;
    }
  }

  /** Waits for the next message on the event loop (the descriptor is polled, no thread blocks). */
  private arm(): void {
    this.inq.receiveAsync().then(
      (m) => {
        this.queued.push(m);
        this.onIncoming();
        if (!this.closed) this.arm();
      },
      () => {}, // rejected on close
    );
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

  /** A full queue gives no event when it empties; check its depth until there is room. */
  private watchForRoom(): void {
    this.full = true;
    if (this.fullTimer !== undefined) return;
    this.fullTimer = setInterval(() => {
      if (this.closed) return;
      const a = this.out.attributes();
      if (a.currentMessages < a.maxMessages) {
        clearInterval(this.fullTimer);
        this.fullTimer = undefined;
        this.full = false;
        this.onWritable();
      }
    }, 1);
  }

  read(limit: number, deliver: (tag: number, requestId: number, body: Uint8Array) => void): number {
    let n = 0;
    for (; n < limit; n++) {
      const m = this.queued.shift() ?? this.inq.receive();
      if (m === null || m === undefined) break;
      if (m.byteLength < ENVELOPE_BYTES) {
        deliver(0, 0, m);
        continue;
      }
      const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
      deliver(dv.getUint32(0, true), dv.getUint32(4, true), m.subarray(ENVELOPE_BYTES));
    }
    return n;
  }

  get readable(): boolean {
    return this.queued.length > 0;
  }

  get writable(): boolean {
    return !this.full;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fullTimer !== undefined) clearInterval(this.fullTimer);
    this.out.close();
    this.inq.close();
    if (this.created !== undefined) {
      for (const name of this.created.names) removeRecordedQueue(this.created.serverApp, name);
    }
  }
}
