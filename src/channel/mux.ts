/**
 * The channel multiplexer of one session side: the open/accept/reject/close protocol of channels over the
 * master socket's channel frames. Making transports is transports.ts's job, the socket transport's frames
 * socket-wire.ts's, delivering messages the delivery loop's.
 *
 * Channel frame: [u8 op][3 zero bytes][u32 channel id LE] then the op's body.
 */
import type { Handle } from '../arena/index.js';
import type { CloseReason } from '../close-reason.js';
import { QuotaError, ShmxError, TimeoutError } from '../errors.js';
import { Channel, type ChannelLink, type CloseHow } from './channel.js';
import { DeliveryLoop } from './delivery-loop.js';
import { discardUnread } from './discard.js';
import type { ChannelHost, SessionChild } from './host.js';
import { checkMqOptions, type MqChannelOptions } from './mq-transport.js';
import { checkRingCapacity } from './ring.js';
import type { ChannelSettings, OpenChannelOptions } from './settings.js';
import { isSocketOp, SocketChannels } from './socket-wire.js';
import type { Transport, TransportKind } from './transport.js';
import { acceptTransport, openTransport, type TransportDeps } from './transports.js';
import { Wakeup } from './wakeup.js';

/**
 * Op 1 was the per-side wake-up HELLO; those facts now travel in the session's WELCOME and READY. Ops 6..8 are
 * the socket transport's (socket-wire.ts).
 */
const Op = { Open: 2, Accept: 3, Reject: 4, Close: 5 } as const;
const FRAME_HEAD = 8;
/**
 * CLOSE body flag: the sender never read or wrote its end (it had abandoned the open when the late ACCEPT
 * came), so the receiver is the last to see both directions and takes back what either carries.
 */
const CLOSE_UNREAD = 1;
/** Close reasons after which the peer will never read again: what we sent and it did not read is ours to undo. */
const PEER_GONE: ReadonlySet<CloseReason> = new Set<CloseReason>(['peer-crashed', 'keepalive-timeout', 'protocol-error']);

/** What a channel-accepting session offers the multiplexer on top of ChannelHost. */
export interface MuxHost extends ChannelHost {
  /** A channel the peer opened: hand it to the app; false when nobody takes channels (the open is refused). */
  acceptChannel(channel: Channel): boolean;
  /**
   * Optional: true when someone takes channels the peer opens. When the host has it, the open is accepted
   * (ACCEPT sent) before `acceptChannel` hands the channel to the app; without it, ACCEPT follows the hand-over
   * and anything the app's handler does to the channel reaches the peer after the ACCEPT.
   */
  hasChannelListener?(): boolean;
  // ---- quota hooks (src/session/quotas.ts) ----
  /** Before this side opens a channel: throws (EQUOTA) when the open would pass a quota. */
  checkChannelQuota?(counts: ChannelCounts): void;
  /**
   * The peer opens a channel: throws (the session faults) when the peer passed a limit it knew; returns an error
   * to refuse just this channel with (its code, quota and limit go to the opener in the REJECT).
   */
  admitPeerChannel?(counts: ChannelCounts): QuotaError | undefined;
  // ---- end quota hooks ----
}

/** Channels counted against quotas on one side (see {@link ChannelMux.channelCounts}). */
export interface ChannelCounts {
  local: number;
  peer: number;
}

/** An open under way: waiting for the peer's channel layer (id 0), then for its answer. */
interface PendingOpen {
  id: number;
  kind: TransportKind;
  capacity: number;
  metadata: unknown;
  init: boolean;
  spin: boolean;
  messageViews: boolean;
  timeoutMs: number;
  mq: MqChannelOptions;
  resolve: (c: Channel) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
  transport?: Transport;
  lent?: Handle;
}

export class ChannelMux implements ChannelLink {
  readonly host: MuxHost;
  private readonly settings: ChannelSettings;
  private readonly wakeup: Wakeup;
  private readonly delivery: DeliveryLoop;
  private readonly channels = new Map<number, Channel>();
  private list: Channel[] = [];
  /** Opens sent, waiting for ACCEPT or REJECT. */
  private readonly pending = new Map<number, PendingOpen>();
  /** Opens that timed out before the peer answered: a late ACCEPT is answered with CLOSE. */
  private readonly abandoned = new Map<number, PendingOpen>();
  /**
   * Channels this side closed, waiting for the peer's CLOSE (its own or its answer to ours): until then the
   * peer may still write to us, and we keep the transport to take back what it sends.
   */
  private readonly lingering = new Map<number, Transport>();
  private readonly lingerChild: SessionChild = { closeFromSession: (reason) => this.endLingering(PEER_GONE.has(reason)) };
  private lingerAdopted = false;
  private readonly spinners = new Set<Channel>();
  private readonly sockets: SocketChannels;
  private readonly transportDeps: TransportDeps;
  /** The peer opened a channel and the app's handler runs (hosts without hasChannelListener). */
  private accepting: { id: number; closed?: Transport } | undefined;
  private nextId = 1;
  private isClosed = false;
  /** Socket-channel data came in the chunk being read (see {@link deliverArrivals}). */
  private arrivals = false;

  /**
   * `wakeup` is this side's (made during the handshake), `peerWakeup` the peer's opaque hello from the handshake
   * (WELCOME or READY). Throws EPROTO (or ESTALEHANDLE) when the peer's hello is malformed.
   * `peerMaxSocketMessage`: the largest socket-channel message the peer accepts (its handshake said): this side
   * sends inline up to the smaller of its own setting and that, and spills the rest.
   */
  constructor(host: MuxHost, settings: ChannelSettings, wakeup: Wakeup, peerWakeup: unknown, peerMaxSocketMessage: number) {
    this.host = host;
    this.settings = settings;
    this.wakeup = wakeup;
    wakeup.meetPeer(peerWakeup);
    this.delivery = new DeliveryLoop({
      channels: () => this.list,
      spinning: () => this.spinners.size > 0,
      wakeup: this.wakeup,
      settings,
      fault: (err) => host.fault(err),
    });
    wakeup.setRingHandler(() => this.delivery.onRing());
    this.sockets = new SocketChannels(Math.min(settings.maxSocketMessage, peerMaxSocketMessage), {
      sendOp: (op, id, parts, bulk) => host.sendChannelFrame([opHead(op, id), ...parts], bulk),
      masterWritable: () => host.masterWritable,
      arrived: () => {
        this.arrivals = true;
      },
      credited: (id) => this.channels.get(id)?.checkDrain(),
      isOpen: (id) => this.channels.has(id),
      discardLate: (id, tag, requestId, body) =>
        discardUnread(host, `late data of channel ${id}`, (visit) => visit(tag, requestId, body)),
    });
    this.transportDeps = { host, wakeup, sockets: this.sockets, onQueueEvent: () => this.delivery.onEvent() };
  }

  /** Open channels. */
  get openChannels(): readonly Channel[] {
    return this.list;
  }

  /**
   * Channels counted against quotas: opened by this side (open, opening, or abandoned and waiting for the
   * peer's late answer — the peer may still hold it) and opened by the peer (open here). Whenever the opener's
   * count drops, the accepter's has dropped already or will on a frame sent before any later OPEN (the CLOSE), so
   * an opener within its limit is never over it at the accepter.
   */
  channelCounts(): ChannelCounts {
    const mine = this.host.side === 'client' ? 1 : 0;
    let local = this.pending.size + this.abandoned.size;
    let peer = 0;
    for (const id of this.channels.keys()) {
      if (id % 2 === mine) local++;
      else peer++;
    }
    return { local, peer };
  }

  /**
   * Opens a channel; resolves once the peer accepted it. Rejects with TimeoutError when the peer did not
   * accept within `timeoutMs` (its channel layer not ready counts), EREFUSED when it refused, ECLOSED when the
   * session closed first.
   */
  open(options: OpenChannelOptions = {}, init = false): Promise<Channel> {
    let p: Omit<PendingOpen, 'resolve' | 'reject' | 'timer'>;
    try {
      if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
      const kind = options.transport ?? 'shm';
      if (kind !== 'shm' && kind !== 'mq' && kind !== 'socket') throw new RangeError(`unknown transport '${String(kind)}'`);
      const capacity = checkRingCapacity(options.ringCapacity ?? 64 * 1024);
      const timeoutMs = options.timeoutMs ?? 5000;
      if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > 2 ** 31 - 1) {
        throw new RangeError('timeoutMs must be a positive number of milliseconds');
      }
      const metadata = JSON.stringify(options.metadata ?? null);
      if (metadata.length > 16 * 1024) throw new RangeError('metadata must serialise to at most 16 KiB');
      this.assertOpen();
      this.host.checkChannelQuota?.(this.channelCounts()); // quota: the opener checks first
      p = { id: 0, kind, capacity, metadata: JSON.parse(metadata), init, spin: options.spin === true, messageViews: options.messageViews === true, timeoutMs,
        mq: checkMqOptions(options.mq) };
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Channel>((resolve, reject) => {
      const open: PendingOpen = { ...p, resolve, reject, timer: undefined };
      open.timer = setTimeout(() => this.openTimedOut(open), p.timeoutMs);
      this.sendOpen(open);
    });
  }

  /** Makes the transport and sends OPEN. */
  private sendOpen(p: PendingOpen): void {
    // Ids are odd on the client, even on the server: both sides open without coordination.
    const id = this.nextId++ * 2 + (this.host.side === 'client' ? 1 : 0);
    let open: Record<string, unknown>;
    try {
      const made = openTransport(this.transportDeps, id, p);
      p.transport = made.transport;
      p.lent = made.lent;
      open = { transport: p.kind, metadata: p.metadata, init: p.init, ...made.fields };
    } catch (err) {
      clearTimeout(p.timer);
      p.reject(err as Error);
      return;
    }
    p.id = id;
    this.pending.set(id, p);
    this.sendOp(Op.Open, id, Buffer.from(JSON.stringify(open)));
  }

  private openTimedOut(p: PendingOpen): void {
    const err = new TimeoutError(`channel ${p.id}: not accepted within ${p.timeoutMs} ms`);
    this.settle(p.id, err, true);
  }

  /** A channel frame from the peer. Throws EPROTO on anything malformed (the session then faults). */
  onFrame(frame: Buffer): void {
    if (frame.length < FRAME_HEAD || frame[1] !== 0 || frame[2] !== 0 || frame[3] !== 0) {
      throw new ShmxError('EPROTO', 'malformed channel frame');
    }
    const op = frame[0];
    const id = frame.readUInt32LE(4);
    const body = frame.subarray(FRAME_HEAD);
    if (isSocketOp(op)) {
      this.sockets.onFrame(op, id, body);
      return;
    }
    switch (op) {
      case Op.Open:
        this.onOpen(id, json(body));
        return;
      case Op.Accept:
        this.onAccept(id);
        return;
      case Op.Reject:
        this.onReject(id, json(body));
        return;
      case Op.Close:
        this.onClose(id, body.length > 0 && (body[0]! & CLOSE_UNREAD) !== 0);
        return;
      default:
        throw new ShmxError('EPROTO', `unknown channel op ${op}`);
    }
  }

  private onOpen(id: number, open: Record<string, unknown>): void {
    const expectedParity = this.host.side === 'client' ? 0 : 1;
    if (id % 2 !== expectedParity || this.channels.has(id) || this.lingering.has(id)) {
      throw new ShmxError('EPROTO', `bad channel id ${id}`);
    }
    // ---- quota: past a limit the peer knew the host throws (its session faults); past a local one, refuse ----
    const overQuota = this.host.admitPeerChannel?.(this.channelCounts());
    if (overQuota !== undefined) {
      this.sendOp(Op.Reject, id, Buffer.from(JSON.stringify({
        reason: overQuota.message, code: overQuota.code, quota: overQuota.quota, limit: overQuota.limit,
      })));
      return;
    }
    // ---- end quota ----
    const made = acceptTransport(this.transportDeps, id, open);
    if ('refused' in made) {
      // Our resources (descriptors, permissions), not the peer's fault: refuse this channel only.
      const e = made.refused;
      this.host.logger.warn({ err: e, channel: id }, 'could not open the transport of a channel the peer opened');
      this.reject(id, `${e.code ?? 'error'}: ${e.message}`, e.code);
      return;
    }
    const transport = made.transport;
    const channel = this.adoptChannel(id, transport, open.metadata, open.init === true);
    const host = this.host;
    if (host.hasChannelListener !== undefined) {
      if (!host.hasChannelListener()) {
        this.refuse(channel);
        return;
      }
      // Accepted before the app sees it: whatever the app does with it reaches the peer after the ACCEPT.
      this.sendOp(Op.Accept, id);
      if (!this.handOver(channel)) channel.close();
      if (this.isClosed) return;
    } else {
      // The host can only check and hand over at once: hold back a CLOSE from the app's handler until the
      // ACCEPT is out.
      const accepting: { id: number; closed?: Transport } = { id };
      this.accepting = accepting;
      let taken: boolean;
      try {
        taken = this.handOver(channel);
      } finally {
        this.accepting = undefined;
      }
      if (this.isClosed) {
        // the handler closed the session: the channel went with it
        if (accepting.closed !== undefined) this.release(id, accepting.closed);
        return;
      }
      if (!taken) {
        this.refuse(channel);
        if (accepting.closed !== undefined) this.release(id, accepting.closed);
        return;
      }
      this.sendOp(Op.Accept, id);
      if (accepting.closed !== undefined) this.closeAndLinger(id, accepting.closed);
    }
    this.delivery.schedule();
  }

  /** Hands a channel to the app; an exception from its handler is the app's, not the peer's. */
  private handOver(channel: Channel): boolean {
    try {
      return this.host.acceptChannel(channel);
    } catch (err) {
      this.host.countError(err);
      return true;
    }
  }

  /** Nobody takes the channel: REJECT it and drop our end quietly. */
  private refuse(channel: Channel): void {
    this.reject(channel.id, 'no passive-open handler');
    channel.closeFromSession('local-close');
  }

  private reject(id: number, reason: string, code?: string): void {
    this.sendOp(Op.Reject, id, Buffer.from(JSON.stringify(code === undefined ? { reason } : { reason, code })));
  }

  private onAccept(id: number): void {
    const p = this.pending.get(id);
    if (p === undefined) {
      const late = this.abandoned.get(id);
      if (late === undefined) throw new ShmxError('EPROTO', `accept for unknown channel ${id}`);
      // Accepted after we gave up: close it. We never touched our end, so the peer takes back both directions.
      this.abandoned.delete(id);
      this.sendOp(Op.Close, id, Uint8Array.of(CLOSE_UNREAD));
      const t = late.transport!;
      t.stop();
      discardUnread(this.host, `channel ${id} (abandoned) inbound`, (visit) => t.discardInbound(visit));
      this.release(id, t);
      return;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    const channel = this.adoptChannel(id, p.transport!, p.metadata, p.init);
    if (p.spin) channel.setSpin(true);
    if (p.messageViews) channel.setMessageViews(true);
    p.resolve(channel);
    this.delivery.schedule();
  }

  private onReject(id: number, r: Record<string, unknown>): void {
    const late = this.abandoned.get(id);
    if (late !== undefined) {
      this.abandoned.delete(id);
      this.undoOpen(late);
      return;
    }
    const code = typeof r.code === 'string' ? r.code : undefined;
    const reason = String(r.reason);
    if (code === 'EQUOTA' && typeof r.quota === 'string' && typeof r.limit === 'number') {
      // quota: the peer refused it over one of its limits — the same error as the opener's own check
      this.settle(id, new QuotaError(r.quota.slice(0, 64), r.limit, `channel ${id} refused by the peer`), false);
      return;
    }
    this.settle(id, new ShmxError('EREFUSED', `channel ${id} refused by the peer: ${reason}`,
      { cause: code === undefined ? undefined : new ShmxError(code, reason) }), false);
  }

  private onClose(id: number, unread: boolean): void {
    const channel = this.channels.get(id);
    if (channel !== undefined) {
      channel.closeFromPeer(unread);
      return;
    }
    const t = this.lingering.get(id);
    if (t !== undefined) {
      // The peer has stopped too: whatever it wrote before that is here now, and nobody will read it.
      this.lingering.delete(id);
      discardUnread(this.host, `channel ${id} inbound`, (visit) => t.discardInbound(visit));
      this.release(id, t);
      if (this.lingering.size === 0 && this.lingerAdopted) {
        this.lingerAdopted = false;
        this.host.disown(this.lingerChild);
      }
    }
    // Otherwise: a close racing ours, or answering a CLOSE for an open we abandoned.
  }

  /**
   * An open that will not complete: undo it. `remember`: it timed out — the peer may still answer, so keep
   * what it may be using (the ring it may have borrowed, the queues it may have opened) until it does.
   */
  private settle(id: number, err: Error, remember: boolean): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (remember && !this.isClosed) {
      p.transport!.stop();
      this.abandoned.set(id, p);
    } else {
      this.undoOpen(p);
    }
    p.reject(err);
  }

  /** Takes back the ring lend the peer never borrowed (if it did, its release frees the block) and releases. */
  private undoOpen(p: PendingOpen): void {
    if (p.lent !== undefined) {
      try {
        this.host.sessionArenaForChannels.borrow(p.lent).release();
      } catch {
        // the peer did borrow it; its release frees the block
      }
    }
    this.release(p.id, p.transport!);
  }

  private adoptChannel(id: number, transport: Transport, metadata: unknown, init: boolean): Channel {
    const channel = new Channel(this, id, transport, metadata, init);
    this.channels.set(id, channel);
    this.list = [...this.channels.values()];
    this.host.adopt(channel);
    return channel;
  }

  // ---- ChannelLink ----

  consumerAppeared(): void {
    this.delivery.schedule();
  }

  setSpin(channel: Channel, on: boolean): void {
    if (!on) {
      this.spinners.delete(channel);
      return;
    }
    if (!this.channels.has(channel.id)) return;
    this.spinners.add(channel);
    this.delivery.schedule();
  }

  closed(channel: Channel, reason: CloseReason, how: CloseHow, transport: Transport): void {
    const id = channel.id;
    try {
      this.channels.delete(id);
      this.list = [...this.channels.values()];
      this.spinners.delete(channel);
      this.host.disown(channel);
      // Nothing more will be delivered: take back what the unread messages carry.
      discardUnread(this.host, `channel ${id} inbound`, (visit) => transport.discardInbound(visit));
      if (how === 'local') {
        if (this.accepting?.id === id) this.accepting.closed = transport; // CLOSE after ACCEPT (onOpen)
        else if (this.isClosed) this.release(id, transport);
        else this.closeAndLinger(id, transport);
        return;
      }
      // The peer will never read again when it closed first (it stopped before its CLOSE... and it drained
      // what it had when it abandoned the open), or when it is gone: what we wrote and it did not read is ours.
      if (how === 'peer-unread' || (how === 'session' && PEER_GONE.has(reason))) {
        discardUnread(this.host, `channel ${id} outbound`, (visit) => transport.discardOutbound(visit));
      }
      this.release(id, transport);
      // Answer the peer's CLOSE: we have stopped reading and writing; it takes back what we left in its way.
      if ((how === 'peer' || how === 'peer-unread') && !this.isClosed) this.sendOp(Op.Close, id);
    } catch (err) {
      this.host.logger.warn({ err, channel: id }, 'channel close failed');
    }
  }

  /** We closed first: tell the peer, and keep the transport until it answers (see {@link lingering}). */
  private closeAndLinger(id: number, transport: Transport): void {
    this.sendOp(Op.Close, id);
    if (!this.lingerAdopted) {
      try {
        this.host.adopt(this.lingerChild);
        this.lingerAdopted = true;
      } catch {
        // the session is going: nothing will arrive
        this.release(id, transport);
        return;
      }
    }
    this.lingering.set(id, transport);
  }

  /** The session ends: nothing more will come from the peer. */
  private endLingering(peerGone: boolean): void {
    this.lingerAdopted = false;
    for (const [id, t] of this.lingering) {
      discardUnread(this.host, `channel ${id} inbound`, (visit) => t.discardInbound(visit));
      if (peerGone) discardUnread(this.host, `channel ${id} outbound`, (visit) => t.discardOutbound(visit));
      this.release(id, t);
    }
    this.lingering.clear();
  }

  private release(id: number, transport: Transport): void {
    this.sockets.forget(id, transport);
    transport.close();
  }

  /**
   * The session read a chunk of its socket and handed over its frames: deliver what socket channels got, now —
   * from the socket's own callback, as mq channels are from their queue's, not an event-loop turn later.
   */
  deliverArrivals(): void {
    if (!this.arrivals) return;
    this.arrivals = false;
    this.delivery.onEvent();
  }

  /** The master socket drained: socket channels may send again. */
  onSocketDrain(): void {
    for (const c of this.list) c.checkDrain();
  }

  /**
   * Session teardown: channels are closed by the session (children first); here pending opens fail, and the
   * wake-up goes.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.delivery.close();
    const closed = () => new ShmxError('ECLOSED', 'session closed');
    for (const id of [...this.pending.keys()]) this.settle(id, closed(), false);
    for (const p of this.abandoned.values()) this.undoOpen(p);
    this.abandoned.clear();
    this.endLingering(false);
    try {
      this.wakeup.close();
    } catch (err) {
      this.host.logger.warn({ err }, 'closing the channel wake-up failed');
    }
  }

  private assertOpen(): void {
    if (this.isClosed) throw new ShmxError('ECLOSED', 'session is closed');
  }

  private sendOp(op: number, id: number, ...parts: Uint8Array[]): void {
    this.host.sendChannelFrame([opHead(op, id), ...parts]);
  }
}

function opHead(op: number, id: number): Buffer {
  const head = Buffer.allocUnsafe(FRAME_HEAD);
  head.writeUInt32LE(op, 0);
  head.writeUInt32LE(id, 4);
  return head;
}

function json(body: Buffer): Record<string, unknown> {
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new ShmxError('EPROTO', 'malformed channel control frame');
}
