/**
 * A channel multiplexed on the session's Unix stream socket: the kernel copies every byte, twice, and the channel
 * needs no shared memory of its own. Payloads over `maxSocketMessage` (8 KiB by default) go through the session
 * arena instead, as on mq (the channel decides that: body.ts).
 *
 * Flow control is by credit, per channel: a sender may have at most {@link SOCKET_WINDOW} bytes (each message
 * counted with {@link SOCKET_MESSAGE_COST} extra) that the receiving channel has not yet taken; a single
 * message bigger than the window goes alone. The receiver returns credit (CREDIT op) as the app consumes; a
 * sender out of credit says so once (WANT_CREDIT op), and the receiver then returns whatever it has consumed.
 * So a receiver that does not consume buffers at most one window per channel, and the sender's `send` returns
 * false until credit comes back ('drain' follows).
 */
import { carriesHandle, spilledLength } from './body.js';
import { OWN_BODY_MIN, type RecordVisitor, type Transport } from './transport.js';
import { Fifo } from '../fifo.js';
import { ShmxError } from '../errors.js';

/** Bytes a socket channel may have in flight, unconsumed by the receiving channel. */
export const SOCKET_WINDOW = 1 << 20;
/** What each message counts on top of its body (bounds the number of small messages buffered). */
export const SOCKET_MESSAGE_COST = 64;

/**
 * What a message counts against the window: its body and {@link SOCKET_MESSAGE_COST}, and for a spilled payload
 * (copied into the session arena, sent by handle) its length up to a window — so a receiver that does not consume
 * holds back a sender's spills as it holds back inline bytes, and a credit fits its 32 bits.
 */
function costOf(tag: number, body: Uint8Array): number {
  return body.byteLength + SOCKET_MESSAGE_COST + Math.min(spilledLength(tag, body), SOCKET_WINDOW);
}

/** What the transport asks of the multiplexer. */
export interface SocketLink {
  /** Writes one DATA frame for this channel. */
  send(tag: number, requestId: number, body: Uint8Array): void;
  /** Whether the session socket accepts more without buffering past its high-water mark. */
  socketWritable(): boolean;
  /** Returns `bytes` of credit to the peer. */
  sendCredit(bytes: number): void;
  /** Tells the peer we wait for credit. */
  sendWantCredit(): void;
}

interface Queued {
  tag: number;
  requestId: number;
  body: Uint8Array;
  /** What it counts against the window ({@link costOf}). */
  cost: number;
}

/** A message carrying a handle, sent and not yet known consumed (credit covers `end`). */
interface Unacked {
  end: number;
  tag: number;
  body: Uint8Array;
}

/**
 * Whether a body can be handed to the app as it is, uncopied. Frames are memory of their own — a read of the socket
 * (Node gives each read a buffer of exactly what it brought), or a buffer a frame was assembled in — so the
 * channel may keep one as it is: a large one always, a smaller one when it is most of that memory (a request
 * read alone), since a kept message then pins at most twice its size. A small one among others of a burst is
 * copied, so that keeping it does not pin the whole read.
 */
function ownable(body: Uint8Array): boolean {
  return body.byteLength >= OWN_BODY_MIN || body.byteLength * 2 >= body.buffer.byteLength;
}

export class SocketTransport implements Transport {
  readonly kind = 'socket' as const;
  private readonly queued = new Fifo<Queued>();
  private stopped = false;
  private sink: RecordVisitor | undefined;

  // sender
  /** Total cost sent, and total credit received (free-running, exact up to 2^53). */
  private sent = 0;
  private credited = 0;
  /** Cost of the write refused last for want of credit. */
  private wanted = 0;
  private askedForCredit = false;
  /** Handle-carrying messages not yet covered by credit: if the peer dies, their lends are taken back. */
  private readonly unacked: Unacked[] = [];

  // receiver
  /** Cost received and not yet returned as credit, of which `consumed` the app has taken. */
  private outstanding = 0;
  private consumed = 0;
  private peerWaiting = false;

  constructor(readonly maxInline: number, private readonly link: SocketLink) {}

  // ---- receiver ----

  /** @internal A DATA frame for this channel arrived. Throws EPROTO when the peer ignores flow control. */
  push(tag: number, requestId: number, body: Uint8Array): void {
    if (this.sink !== undefined) {
      this.sink(tag, requestId, body);
      return;
    }
    const cost = costOf(tag, body);
    if (this.outstanding > 0 && this.outstanding + cost > SOCKET_WINDOW) {
      throw new ShmxError('EPROTO', 'socket channel data beyond the flow-control window');
    }
    this.outstanding += cost;
    this.queued.push({ tag, requestId, body, cost });
  }

  /** @internal The peer waits for credit. */
  onWantCredit(): void {
    if (this.stopped) return; // closed: the peer learns it from our CLOSE
    this.peerWaiting = true;
    if (this.consumed > 0) this.returnCredit();
  }

  read(limit: number, deliver: RecordVisitor): number {
    let n = 0;
    for (; n < limit && !this.stopped && this.queued.length > 0; n++) {
      const m = this.queued.shift()!;
      this.consumed += m.cost;
      // Credit goes out before the message is delivered, so it precedes what the app sends in answer: a sender
      // whose next message needs this room (a large request) has it when the reply arrives, not a frame later.
      if (this.peerWaiting || this.consumed >= SOCKET_WINDOW / 2) this.returnCredit();
      deliver(m.tag, m.requestId, m.body, ownable(m.body));
    }
    return n;
  }

  private returnCredit(): void {
    const bytes = this.consumed;
    this.consumed = 0;
    this.outstanding -= bytes;
    this.peerWaiting = false;
    this.link.sendCredit(bytes);
  }

  get readable(): boolean {
    return this.queued.length > 0;
  }

  resume(): void {
    // the session socket is always read
  }

  // ---- sender ----

  private get inFlight(): number {
    return this.sent - this.credited;
  }

  private hasRoomFor(cost: number): boolean {
    const inFlight = this.inFlight;
    return inFlight === 0 || inFlight + cost <= SOCKET_WINDOW;
  }

  write(tag: number, requestId: number, body: Uint8Array): boolean {
    if (!this.link.socketWritable()) return false;
    const cost = costOf(tag, body);
    if (!this.hasRoomFor(cost)) {
      this.wanted = cost;
      if (!this.askedForCredit) {
        this.askedForCredit = true;
        this.link.sendWantCredit();
      }
      return false;
    }
    this.wanted = 0;
    this.sent += cost;
    if (carriesHandle(tag)) this.unacked.push({ end: this.sent, tag, body });
    this.link.send(tag, requestId, body);
    return true;
  }

  /** @internal The peer consumed `bytes` more. Throws EPROTO for credit never sent. */
  onCredit(bytes: number): void {
    if (bytes <= 0 || bytes > this.inFlight) throw new ShmxError('EPROTO', `socket channel credit of ${bytes} bytes not owed`);
    this.credited += bytes;
    this.askedForCredit = false;
    const unacked = this.unacked;
    let i = 0;
    while (i < unacked.length && unacked[i]!.end <= this.credited) i++;
    if (i > 0) unacked.splice(0, i);
    // Still short of room for the refused message: ask again (the peer returns what it consumed since).
    if (this.wanted > 0 && !this.stopped && !this.hasRoomFor(this.wanted)) {
      this.askedForCredit = true;
      this.link.sendWantCredit();
    }
  }

  get writable(): boolean {
    return this.link.socketWritable() && this.hasRoomFor(this.wanted);
  }

  // ---- end ----

  stop(): void {
    this.stopped = true;
  }

  discardInbound(visit: RecordVisitor): void {
    this.sink = visit;
    for (let m = this.queued.shift(); m !== undefined; m = this.queued.shift()) visit(m.tag, m.requestId, m.body);
  }

  discardOutbound(visit: RecordVisitor): void {
    for (const u of this.unacked.splice(0)) visit(u.tag, 0, u.body);
  }

  close(): void {
    this.stopped = true;
    this.queued.takeAll();
    this.unacked.length = 0;
  }
}
