/**
 * The channel multiplexer of one session side: opens and accepts channels over the master socket's channel
 * frames, wakes and is woken by the peer, and delivers messages — spinning briefly when idle, then parking.
 *
 * Channel frame: [u8 op][3 zero bytes][u32 channel id LE] then the op's body.
 */
import type { Block, Handle } from '../arena/index.js';
import { parseResourceName } from '../cleanup/names.js';
import type { CloseReason } from '../close-reason.js';
import { ShmxError } from '../errors.js';
import { Channel, DELIVERY_BATCH, type ChannelLink } from './channel.js';
import type { ChannelHost } from './host.js';
import { MqTransport, queueNames, type MqChannelOptions } from './mq-transport.js';
import { checkRingCapacity } from './ring.js';
import { formatRingPair, ringPairBytes, ShmTransport } from './shm-transport.js';
import { SocketTransport } from './socket-transport.js';
import type { Transport, TransportKind } from './transport.js';
import { nowMicros, Wakeup } from './wakeup.js';

const Op = { Hello: 1, Open: 2, Accept: 3, Reject: 4, Close: 5, Data: 6 } as const;
const FRAME_HEAD = 8;
/** Longest stretch of microtask-driven polling (spin mode) before the event loop gets a turn. */
const SPIN_TURN_MS = 1;

/** Options of {@link ChannelMux.open} (and `session.openChannel`). */
export interface OpenChannelOptions {
  /** Anything JSON-serialisable: tells the peer what the channel is for. */
  metadata?: unknown;
  /** Default `shm`. */
  transport?: TransportKind;
  /** shm: bytes per direction, a power of two (default 64 KiB). */
  ringCapacity?: number;
  /** shm: never park while this channel is open — poll on every event-loop turn for lowest latency. */
  spin?: boolean;
  /** mq: queue attributes. */
  mq?: MqChannelOptions;
  /** Reject if the peer has not accepted in time. Default 5000 ms. */
  timeoutMs?: number;
}

/** Session-wide channel settings. */
export interface ChannelSettings {
  /** Longest an idle receiver polls before it parks, in µs (it polls only while messages usually come
   *  sooner than that). Default 50. */
  spinMicros: number;
  /** Largest message on the `socket` transport. */
  maxSocketMessage: number;
}

/** Fills in and checks channel settings. */
export function resolveChannelSettings(partial: Partial<ChannelSettings> = {}): ChannelSettings {
  const spinMicros = partial.spinMicros ?? 50;
  const maxSocketMessage = partial.maxSocketMessage ?? 2 ** 30 + 4096;
  if (!Number.isFinite(spinMicros) || spinMicros < 0 || spinMicros > 1_000_000) {
    throw new RangeError('spinMicros must be between 0 and 1e6');
  }
  if (!Number.isInteger(maxSocketMessage) || maxSocketMessage < 4096 || maxSocketMessage > 2 ** 31) {
    throw new RangeError('maxSocketMessage must be an integer between 4096 and 2^31');
  }
  return { spinMicros, maxSocketMessage };
}

/** What a channel-accepting session offers the multiplexer on top of ChannelHost. */
export interface MuxHost extends ChannelHost {
  /** A channel the peer opened: hand it to the app; false when nobody takes channels (the open is refused). */
  acceptChannel(channel: Channel): boolean;
}

interface PendingOpen {
  resolve: (c: Channel) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  transport: Transport;
  options: OpenChannelOptions;
  lent?: Handle;
}

export class ChannelMux implements ChannelLink {
  readonly host: MuxHost;
  private readonly settings: ChannelSettings;
  private readonly wakeup: Wakeup;
  private readonly channels = new Map<number, Channel>();
  private list: Channel[] = [];
  private readonly pending = new Map<number, PendingOpen>();
  private readonly spinners = new Set<Channel>();
  private readonly socketTransports = new Map<number, SocketTransport>();
  private peerReady: Promise<void>;
  private markPeerReady!: () => void;
  private nextId = 1;
  private draining = false;
  private scheduled = false;
  /** When the current spin-mode turn began (ms, performance.now()). */
  private turnStarted = 0;
  private microHops = 0;
  /** When we last ran out of work (µs, nowMicros()), and the smoothed gap until the next message. */
  private idleSince = 0;
  private gapEwma: number;
  private isClosed = false;

  constructor(host: MuxHost, settings: ChannelSettings) {
    this.host = host;
    this.settings = settings;
    this.wakeup = new Wakeup(host.sessionArenaForChannels, host.bellName, host.peerBellPrefix, () => this.onRing());
    this.gapEwma = settings.spinMicros / 2;
    this.peerReady = new Promise((resolve) => (this.markPeerReady = resolve));
    this.sendOp(Op.Hello, 0, Buffer.from(JSON.stringify(this.wakeup.hello())));
  }

  /** Open channels. */
  get openChannels(): readonly Channel[] {
    return this.list;
  }

  /** Opens a channel; resolves once the peer accepted it. */
  async open(options: OpenChannelOptions = {}, init = false): Promise<Channel> {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const kind = options.transport ?? 'shm';
    if (kind !== 'shm' && kind !== 'mq' && kind !== 'socket') throw new RangeError(`unknown transport '${kind}'`);
    const capacity = checkRingCapacity(options.ringCapacity ?? 64 * 1024);
    const timeoutMs = options.timeoutMs ?? 5000;
    const metadata = JSON.stringify(options.metadata ?? null);
    if (metadata.length > 16 * 1024) throw new RangeError('metadata must serialise to at most 16 KiB');
    await this.peerReady;
    this.assertOpen();
    // Ids are odd on the client, even on the server: both sides open without coordination.
    const id = this.nextId++ * 2 + (this.host.side === 'client' ? 1 : 0);
    const open: Record<string, unknown> = { transport: kind, metadata: JSON.parse(metadata), init, spin: options.spin === true };
    let transport: Transport;
    let lent: Handle | undefined;
    if (kind === 'shm') {
      const arena = this.host.sessionArenaForChannels;
      const block = arena.alloc(ringPairBytes(capacity), { align: 64 });
      formatRingPair(block, capacity);
      transport = new ShmTransport(block, true, () => this.wakeup.ringPeer());
      lent = arena.lend(block);
      open.ring = lent;
    } else if (kind === 'mq') {
      const names = queueNames(this.host.localScopePrefix, id);
      transport = MqTransport.create(this.host.serverApp, names, options.mq ?? {}, this.host.objectMode, () => this.drainAll(),
        () => this.drainAll());
      open.queues = names;
    } else {
      transport = this.socketTransport(id);
    }
    return new Promise<Channel>((resolve, reject) => {
      const timer = setTimeout(() => this.abandon(id, new ShmxError('ETIMEDOUT', `channel ${id}: not accepted in ${timeoutMs} ms`)), timeoutMs);
      this.pending.set(id, { resolve, reject, timer, transport, options, lent });
      this.sendOp(Op.Open, id, Buffer.from(JSON.stringify(open)));
    });
  }

  /** A channel frame from the peer. Throws EPROTO on anything malformed (the session then faults). */
  onFrame(frame: Buffer): void {
    if (frame.length < FRAME_HEAD || frame[1] !== 0 || frame[2] !== 0 || frame[3] !== 0) {
      throw new ShmxError('EPROTO', 'malformed channel frame');
    }
    const op = frame[0];
    const id = frame.readUInt32LE(4);
    const body = frame.subarray(FRAME_HEAD);
    switch (op) {
      case Op.Hello:
        if (this.wakeup.peerKnown) throw new ShmxError('EPROTO', 'second channel hello');
        this.wakeup.meetPeer(json(body));
        this.markPeerReady();
        return;
      case Op.Open:
        this.onOpen(id, json(body));
        return;
      case Op.Accept:
        this.onAccept(id);
        return;
      case Op.Reject: {
        const r = json(body);
        this.abandon(id, new ShmxError('EREFUSED', `channel ${id} refused by the peer: ${String(r.reason)}`));
        return;
      }
      case Op.Close:
        this.channels.get(id)?.closeFromPeer();
        return;
      case Op.Data: {
        const t = this.socketTransports.get(id);
        if (t === undefined || body.length < 8) {
          if (this.channels.has(id) || body.length < 8) throw new ShmxError('EPROTO', `bad data frame for channel ${id}`);
          return; // data racing a close: drop
        }
        t.push(body.readUInt32LE(0), body.readUInt32LE(4), body.subarray(8));
        this.schedule();
        return;
      }
      default:
        throw new ShmxError('EPROTO', `unknown channel op ${op}`);
    }
  }

  private onOpen(id: number, open: Record<string, unknown>): void {
    const expectedParity = this.host.side === 'client' ? 0 : 1;
    if (id % 2 !== expectedParity || this.channels.has(id)) throw new ShmxError('EPROTO', `bad channel id ${id}`);
    const kind = open.transport;
    let transport: Transport;
    if (kind === 'shm') {
      const arena = this.host.sessionArenaForChannels;
      // borrow() validates the handle's shape and every field against the arena.
      const block: Block = arena.borrow(open.ring as Handle);
      try {
        transport = new ShmTransport(block, false, () => this.wakeup.ringPeer());
      } catch (err) {
        block.release();
        throw err;
      }
    } else if (kind === 'mq') {
      const names = open.queues;
      if (!Array.isArray(names) || names.length !== 2 || !names.every((n) => this.isPeerQueue(n))) {
        throw new ShmxError('EPROTO', `channel ${id}: queue names outside this session`);
      }
      transport = MqTransport.open(names as [string, string], () => this.drainAll(), () => this.drainAll());
    } else if (kind === 'socket') {
      transport = this.socketTransport(id);
    } else {
      throw new ShmxError('EPROTO', `channel ${id}: unknown transport`);
    }
    const channel = this.adoptChannel(id, transport, open.metadata, open.init === true, open.spin === true);
    if (!this.host.acceptChannel(channel)) {
      this.sendOp(Op.Reject, id, Buffer.from(JSON.stringify({ reason: 'no passive-open handler' })));
      channel.closeFromSession('local-close');
      return;
    }
    this.sendOp(Op.Accept, id);
    this.schedule();
  }

  private onAccept(id: number): void {
    const p = this.pending.get(id);
    if (p === undefined) throw new ShmxError('EPROTO', `accept for unknown channel ${id}`);
    this.pending.delete(id);
    clearTimeout(p.timer);
    const channel = this.adoptChannel(id, p.transport, p.options.metadata ?? null, false, p.options.spin === true);
    p.resolve(channel);
    this.schedule();
  }

  /** An open that will not complete: undo it. */
  private abandon(id: number, err: Error): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (p.lent !== undefined) {
      // Take back the lend the peer never borrowed, or the ring would outlive the channel.
      try {
        this.host.sessionArenaForChannels.borrow(p.lent).release();
      } catch {
        // the peer did borrow it; its release frees the block
      }
    }
    p.transport.close();
    this.socketTransports.delete(id);
    p.reject(err);
  }

  private adoptChannel(id: number, transport: Transport, metadata: unknown, init: boolean, spin: boolean): Channel {
    const channel = new Channel(this, id, transport, metadata, init);
    this.channels.set(id, channel);
    this.list = [...this.channels.values()];
    if (spin) this.spinners.add(channel);
    this.host.adopt(channel);
    return channel;
  }

  private socketTransport(id: number): SocketTransport {
    const t = new SocketTransport(
      this.settings.maxSocketMessage,
      (tag, requestId, body) => {
        const head = Buffer.allocUnsafe(8);
        head.writeUInt32LE(tag, 0);
        head.writeUInt32LE(requestId, 4);
        this.sendBulk(Op.Data, id, head, body);
      },
      () => this.host.masterWritable,
    );
    this.socketTransports.set(id, t);
    return t;
  }

  private isPeerQueue(name: unknown): boolean {
    if (typeof name !== 'string') return false;
    // Exactly this session's objects made by the peer process: nothing else may be opened on its word.
    return name.startsWith(this.host.peerScopePrefix) && parseResourceName(name) !== null;
  }

  // ---- ChannelLink ----

  afterWrite(): void {
    this.wakeup.wakePeer();
  }

  consumerAppeared(): void {
    this.schedule();
  }

  closed(channel: Channel, _reason: CloseReason, tellPeer: boolean): void {
    this.channels.delete(channel.id);
    this.list = [...this.channels.values()];
    this.spinners.delete(channel);
    this.socketTransports.delete(channel.id);
    this.host.disown(channel);
    if (tellPeer && !this.isClosed) this.sendOp(Op.Close, channel.id);
  }

  /** The master socket drained: socket channels may send again. */
  onSocketDrain(): void {
    for (const c of this.list) c.checkDrain();
  }

  /** Session teardown: channels are closed by the session (children first); here the wake-up goes. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const id of [...this.pending.keys()]) this.abandon(id, new ShmxError('ECLOSED', 'session closed'));
    this.wakeup.close();
  }

  // ---- delivery ----

  private assertOpen(): void {
    if (this.isClosed) throw new ShmxError('ECLOSED', 'session is closed');
  }

  private schedule(): void {
    if (this.scheduled || this.isClosed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.turnStarted = performance.now();
      this.drainAll();
    });
  }

  private anyWaiting(): boolean {
    for (const c of this.list) if (c.readable && c.wantsMessages) return true;
    return false;
  }

  /**
   * Delivers what is waiting (a bounded batch), then returns so that the app's promise continuations — its
   * replies — run before we look again.
   */
  private drainAll(): void {
    if (this.draining || this.isClosed) return;
    this.draining = true;
    this.wakeup.unpark(); // busy: senders need not ring until we park again
    let delivered = 0;
    try {
      for (let budget = 4 * DELIVERY_BATCH; budget > 0;) {
        let pass = 0;
        for (const c of this.list) {
          if (c.readable) pass += c.pump(DELIVERY_BATCH);
          c.checkDrain();
        }
        if (pass === 0 || this.isClosed) break;
        delivered += pass;
        budget -= pass;
      }
    } catch (err) {
      this.host.fault(err instanceof ShmxError ? err : new ShmxError('ECHANNELCORRUPT', String(err), { cause: err }));
      return;
    } finally {
      this.draining = false;
    }
    if (delivered === 0) {
      this.idle();
    } else if (this.spinners.size > 0 && performance.now() - this.turnStarted < SPIN_TURN_MS) {
      // Spin mode: look again from a microtask queued behind the app's continuations (its next send), so a
      // round trip needs no event-loop turn; after SPIN_TURN_MS the loop gets its turn.
      this.microHops = 0;
      queueMicrotask(this.idleHop);
    } else {
      this.schedule();
    }
  }

  /** Lets pending microtasks (the app's `await` chains) run a few times before spinning. */
  private readonly idleHop = (): void => {
    if (this.anyWaiting()) this.drainAll();
    else if (++this.microHops < 8) queueMicrotask(this.idleHop);
    else this.idle();
  };

  /**
   * Nothing to deliver. Spin while the gap to the next message is likely short (adaptive: about twice the
   * recent idle-to-message gap, at most `spinMicros`; always 50 µs turns with a spinning channel open), then
   * publish parked=1, look once more — a sender that wrote before seeing it did not ring — and sleep until the
   * doorbell.
   */
  private idle(): void {
    if (this.isClosed) return;
    const spinning = this.spinners.size > 0;
    this.idleSince = nowMicros();
    const budget = spinning ? 50 : this.spinBudget();
    if (this.spin(budget)) {
      this.learnGap(nowMicros() - this.idleSince);
      this.drainAll();
      return;
    }
    if (spinning) {
      this.schedule();
      return;
    }
    this.wakeup.park();
    if (this.anyWaiting()) this.drainAll();
  }

  /** The doorbell rang: learn how long we were idle before the peer wrote, then deliver. */
  private onRing(): void {
    const rang = this.wakeup.lastRang;
    if (this.idleSince > 0 && rang > this.idleSince) this.learnGap(rang - this.idleSince);
    this.drainAll();
  }

  private learnGap(micros: number): void {
    this.gapEwma = 0.75 * this.gapEwma + 0.25 * Math.min(micros, 10 * this.settings.spinMicros + 1);
  }

  /** µs to spin before parking: worth it only when messages usually follow within `spinMicros`. */
  private spinBudget(): number {
    const max = this.settings.spinMicros;
    return this.gapEwma <= max ? Math.min(max, 2 * this.gapEwma + 1) : 0;
  }

  /** Busy-waits up to `micros` for a message; true when one arrived. Reads the clock every 64 polls: it costs
   *  more than a poll. */
  private spin(micros: number): boolean {
    if (micros <= 0) return false;
    const until = performance.now() + micros / 1000;
    for (;;) {
      for (let i = 0; i < 64; i++) if (this.anyWaiting()) return true;
      if (performance.now() >= until) return false;
    }
  }

  private sendOp(op: number, id: number, ...parts: Uint8Array[]): void {
    this.host.sendChannelFrame([opHead(op, id), ...parts]);
  }

  /** A frame that may be as large as `maxSocketMessage` (socket-transport data). */
  private sendBulk(op: number, id: number, ...parts: Uint8Array[]): void {
    this.host.sendChannelFrame([opHead(op, id), ...parts], true);
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
