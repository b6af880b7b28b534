/**
 * A session: the conversation between two processes and the scope of everything they share. Once open it is
 * the same object on both sides. It watches its peer (EOF/ECONNRESET/EPIPE on the master socket at once,
 * silence past the keep-alive timeout), closes exactly once, children first, and removes the session's shared
 * objects as soon as it knows the peer is gone.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import type { Arena } from '../arena/index.js';
import { checkCodec, typed, type Codec, type TypedChannel } from '../codec/index.js'; // extras: typed channels
import { bridgeToWorker, ChannelMux, type Channel, type ChannelSettings, type MuxHost, type OpenChannelOptions, type SessionChild, type Wakeup } from '../channel/index.js';
import { selfIdentity } from '../cleanup/liveness.js';
import { whenDead } from '../cleanup/liveness.js';
import type { ShmxError as ShmxErrorType } from '../errors.js';
import { removeSegmentsWithPrefix, sweepStale } from '../cleanup/sweep.js';
import { hasCode, ShmxError } from '../errors.js';
import { diag } from '../diagnostics.js';
import '../dispose.js';
import { emitCounted, REJECTION } from '../listener-errors.js';
import { abortError, checkAbortOptions, raceCancel } from '../abort.js';
import type { Logger } from '../log.js';
import { FrameWriter } from './frame-writer.js';
import { onKeepAliveTick } from './keep-alive-clock.js';
import { queuePrefix } from './scope-names.js';
import type { SessionQuotaPolicy, SessionQuotaUsage } from './quotas.js';
import { releaseAppArena } from './shared-arena.js';
import { canTransition, isCloseReason, isFault, type CloseReason, type SessionState } from './lifecycle.js';
import {
  CONTROL_MAX_PAYLOAD,
  encodeFrame,
  encodeJsonFrame,
  FrameType,
  parseJsonPayload,
  type FrameReader,
} from './protocol.js';

/** Who is at the other end. pid/uid/gid come from the kernel (SO_PEERCRED), not from the peer's claims. */
export interface PeerFacts {
  app: string;
  pid: number;
  uid: number;
  gid: number;
  startTime: number;
}

/** Traffic and error counters of a session. */
export interface SessionCounters {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  errors: number;
  consecutiveErrors: number;
}

/** Keep-alive timings: a ping every `intervalMs`; silence longer than `timeoutMs` hoses the session. */
export interface KeepAliveOptions {
  intervalMs: number;
  timeoutMs: number;
}

export type { SessionChild } from '../channel/index.js';

/** @internal Everything a Session is made of; built by {@link sessionParts} (session-parts.ts) for both sides. */
export interface SessionParts {
  side: 'server' | 'client';
  number: number;
  serverApp: string;
  localApp: string;
  serverPid: number;
  peer: PeerFacts;
  socket: Socket;
  reader: FrameReader;
  /** Frames that arrived in the same read as the last handshake frame. */
  early: Array<{ type: FrameType; payload: Buffer }>;
  sessionArena: Arena;
  appArena: Arena;
  /** Whether close() releases this session's use of the app arena (client side; the server keeps its own). */
  ownsAppArena: boolean;
  /** Prefix of every segment of this session scope, removed on close. */
  scopePrefix: string;
  /** Permission bits for the session's kernel objects (the server app's permission level). */
  objectMode: number;
  keepAlive: KeepAliveOptions;
  maxConsecutiveErrors: number;
  channels: ChannelSettings;
  /** The peer's channels.maxSocketMessage, from its HELLO or WELCOME: the largest socket-channel message it accepts. */
  peerMaxSocketMessage: number;
  logger: Logger;
  /** This side's wake-up, made during the handshake; the session's mux owns it from construction on. */
  wakeup: Wakeup;
  /** The peer's wake-up facts from the handshake (WELCOME or READY), opaque here; the mux checks them. */
  peerWakeup: unknown;
  /** Channel quotas of this side (src/session/quotas.ts). */
  quotas: SessionQuotaPolicy;
  /** Server side: how long the handshake took (for metrics and diagnostics). */
  handshakeMs?: number;
}

/** Events of a Session. */
export interface SessionEvents {
  /** The peer is gone or broke the protocol (the error handler): `err.code === 'EHOSED'`, `err.reason`. Emitted
   *  before `close`. */
  hosed: [err: ShmxError & { reason: CloseReason }];
  /** The peer opened a channel (passive open). Without a listener, the peer's open is refused. */
  channel: [channel: Channel];
  /** Emitted exactly once, after every child closed. */
  close: [reason: CloseReason];
}

/** An open session, the same on both sides: arenas, channels, peer facts, close. */
export class Session extends EventEmitter<SessionEvents> {
  /** Stable id: `<serverApp>.<serverPid>.<session number>`. */
  readonly id: string;
  /** Which side of the session this object is. */
  readonly side: 'server' | 'client';
  /** The peer's identity (kernel-verified). */
  readonly peer: Readonly<PeerFacts>;
  /** Traffic and error counters. */
  readonly counters: SessionCounters = {
    messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, errors: 0, consecutiveErrors: 0,
  };
  /** The logger, with session id and app names bound. */
  readonly logger: Logger;
  /** When it opened (ms since the epoch). */
  readonly openedAt = Date.now();

  private current: SessionState = 'open';
  private reason: CloseReason | undefined;
  private hosedError: (ShmxError & { reason: CloseReason }) | undefined;
  private readonly parts: SessionParts;
  private readonly children = new Set<SessionChild>();
  private stopKeepAlive: (() => void) | undefined;
  private stopTruncationWatch: Array<() => void>;
  private lastHeard = Date.now();
  /** Writes the frames of channels on the master socket. */
  private readonly writer: FrameWriter;
  /** When the keep-alive last ticked: a tick far later than the interval means this process was stalled. */
  private lastTick = Date.now();
  private closed: Promise<void> | undefined;
  private readonly mux: ChannelMux;

  /** @internal Use SessionServer or ClientSession.connect. */
  constructor(parts: SessionParts) {
    super({ captureRejections: true }); // listener errors are this session's (listener-errors.ts)
    this.parts = parts;
    this.side = parts.side;
    this.peer = Object.freeze({ ...parts.peer });
    this.id = `${parts.serverApp}.${parts.serverPid}.${parts.number}`;
    this.logger = parts.logger.child({
      session: this.id, side: this.side, localApp: parts.localApp, peerApp: parts.peer.app,
    });
    this.writer = new FrameWriter(parts.socket);
    parts.reader.maxPayload = CONTROL_MAX_PAYLOAD;
    parts.reader.maxBulkPayload = parts.channels.maxSocketMessage + 64;
    // Everything that can throw comes first: a constructor that fails leaves no listener behind, and the
    // caller (server or client) rolls the handshake back.
    this.mux = new ChannelMux(this.channelHost(), parts.channels, parts.wakeup, parts.peerWakeup, parts.peerMaxSocketMessage);
    // A segment of either arena truncated by anyone faults this session (not the process): docs/cleanup-and-safety.md.
    const truncated = (err: ShmxErrorType) => this.fault('protocol-error', err);
    this.stopTruncationWatch = [parts.sessionArena.onTruncated(truncated), parts.appArena.onTruncated(truncated)];
    const { socket } = parts;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.fault('peer-crashed', new ShmxError('EOF', 'master channel reached EOF')));
    socket.on('error', (err) => this.fault('peer-crashed', err));
    socket.on('close', () => this.fault('peer-crashed', new ShmxError('ECONNRESET', 'master channel closed')));
    socket.on('drain', () => this.mux.onSocketDrain());
    this.stopKeepAlive = onKeepAliveTick(parts.keepAlive.intervalMs, () => this.tick());
    // Frames that arrived with the last handshake frame belong to the open session.
    if (parts.early.length > 0) queueMicrotask(() => this.onFrames(parts.early));
    if (diag.sessionOpen.hasSubscribers) {
      const { app, pid, uid, gid } = parts.peer;
      diag.sessionOpen.publish({ ...this.diagnosticsRef(), peer: { app, pid, uid, gid }, handshakeMs: parts.handshakeMs });
    }
  }

  /** @internal Read-only facts for the control socket (arenas even while closing, for their stats). */
  inspect(): { sessionArena: Arena; appArena: Arena; localApp: string } {
    return { sessionArena: this.parts.sessionArena, appArena: this.parts.appArena, localApp: this.parts.localApp };
  }

  private diagnosticsRef() {
    return { sessionId: this.id, serverApp: this.parts.serverApp, side: this.side };
  }

  /** Session number on its server. */
  get number(): number {
    return this.parts.number;
  }

  /** Current state: `open`, `closing`, `closed` or `faulted` once constructed. */
  get state(): SessionState {
    return this.current;
  }

  /** Why it closed, once closing. */
  get closeReason(): CloseReason | undefined {
    return this.reason;
  }

  /** Arena of this session: created at open, gone at close. */
  get sessionArena(): Arena {
    this.assertUsable();
    return this.parts.sessionArena;
  }

  /** Arena shared by every session of this client app with this server; survives sessions, gone with the server. */
  get appArena(): Arena {
    this.assertUsable();
    return this.parts.appArena;
  }

  /**
   * Opens a channel to the peer; resolves when the peer accepted it (its `'channel'` listener received it).
   * Transports: `shm` (default, shared-memory rings), `mq` (POSIX queues), `socket` (this session's socket).
   */
  openChannel(options?: OpenChannelOptions): Promise<Channel>;
  // ── extras (issue 11 item 6): typed channels ──
  /** With a `codec`: a {@link TypedChannel} whose `send`/`request` take values (the peer wraps its side with
   *  `typed(channel, codec)`, same codec). */
  openChannel<Out = unknown, In = Out>(options: OpenChannelOptions & { codec: Codec<unknown> | Codec<Out | In> }): Promise<TypedChannel<Out, In>>;
  openChannel(options: OpenChannelOptions & { codec?: Codec<unknown> } = {}): Promise<Channel | TypedChannel> {
    if (options.codec !== undefined) {
      const { codec, ...rest } = options;
      checkCodec(codec); // before anything is opened
      return this.openChannel(rest).then((channel) => typed(channel, codec));
    }
    // ── end extras ──
    this.assertUsable();
    const signal = (options as OpenChannelOptions | null)?.signal;
    try {
      checkAbortOptions({ signal });
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal?.aborted) return Promise.reject(abortError('openChannel', signal));
    // An open the caller gave up on may still be accepted: that channel is closed at once.
    return raceCancel('openChannel', { signal }, this.mux.open(options), (channel) => channel.close());
  }

  /** @internal Opens a channel requested at session start. */
  openInitChannel(options: OpenChannelOptions): Promise<Channel> {
    this.assertUsable();
    return this.mux.open(options, true);
  }

  /**
   * Hands a channel's traffic to a worker_threads Worker: post the returned port to the Worker (in the
   * transfer list) and wrap it there with `new WorkerChannel(port)`. Payloads are not copied: blocks reach
   * the Worker as views of the same shared memory. The session stays on this thread.
   */
  channelToWorker(channel: Channel): MessagePort {
    this.assertUsable();
    const { sessionArena, appArena } = this.parts;
    return bridgeToWorker(channel, { session: sessionArena.name, app: appArena.name }, sessionArena, appArena);
  }

  /** Channels open now. */
  get channels(): readonly Channel[] {
    return this.mux.openChannels;
  }

  // ---- quotas (src/session/quotas.ts) ----
  /** This side's quota usage (read-only snapshot): channels opened by each side and their limits, and the
   *  session arena's bytes in /dev/shm against its ceiling. */
  get quotas(): SessionQuotaUsage {
    return this.parts.quotas.usage(this.mux.channelCounts(), this.parts.sessionArena);
  }

  /** @internal The peer passed a quota it knew (found by the server's check): fault with `limit-exceeded`. */
  faultLimit(err: ShmxErrorType): void {
    this.fault('limit-exceeded', err);
  }
  // ---- end quotas ----

  /** Throws EHOSED after a fault, ECLOSED after a close: every call on a dead session fails at once. */
  assertUsable(): void {
    if (this.current === 'open') return;
    if (this.hosedError !== undefined) throw this.hosedError;
    throw new ShmxError('ECLOSED', `session ${this.id} is ${this.current}`, { resource: this.id });
  }

  /** @internal Registers something that must close before the session's `close`. */
  adopt(child: SessionChild): void {
    this.assertUsable();
    this.children.add(child);
  }

  /** @internal The child closed on its own. */
  disown(child: SessionChild): void {
    this.children.delete(child);
  }

  /** What the channel layer may use of this session. */
  private channelHost(): MuxHost {
    const session = this;
    const { parts } = this;
    const clientApp = parts.side === 'server' ? parts.peer.app : parts.localApp;
    return {
      side: parts.side,
      id: this.id,
      serverApp: parts.serverApp,
      logger: this.logger,
      peerPid: parts.peer.pid,
      sessionArenaForChannels: parts.sessionArena,
      appArenaForChannels: parts.appArena,
      localScopePrefix: queuePrefix(selfIdentity(), parts.serverApp, clientApp, parts.number),
      peerScopePrefix: queuePrefix(
        { pid: parts.peer.pid, startTime: parts.peer.startTime }, parts.serverApp, clientApp, parts.number,
      ),
      objectMode: parts.objectMode,
      sendChannelFrame: (frameParts, bulk) =>
        this.sendFrameParts(bulk === true ? FrameType.ChannelData : FrameType.Channel, frameParts),
      get masterWritable() {
        return !parts.socket.writableNeedDrain;
      },
      adopt: (child) => this.adopt(child),
      disown: (child) => this.disown(child),
      fault: (err: ShmxErrorType) => this.fault('protocol-error', err),
      countIn: (bytes) => {
        session.counters.messagesIn++;
        session.counters.bytesIn += bytes;
      },
      countOut: (bytes) => {
        session.counters.messagesOut++;
        session.counters.bytesOut += bytes;
      },
      countError: (err) => this.countError(err),
      sendLimits: { highWaterMark: parts.channels.sendHighWaterMark, queueLimit: parts.channels.sendQueueLimit },
      countSuccess: () => this.countSuccess(),
      hasChannelListener: () => this.listenerCount('channel') > 0,
      checkChannelQuota: (counts) => parts.quotas.checkOpen(counts), // quotas.ts
      admitPeerChannel: (counts) => parts.quotas.admitPeer(counts), // quotas.ts
      acceptChannel: (channel) =>
        // A throwing or rejecting 'channel' listener is an error of this session (listener-errors.ts).
        emitCounted(this, 'channel', [channel], { error: (err) => this.countError(err), success: () => this.countSuccess() }),
    };
  }

  /** Sends one frame made of consecutive parts on the master socket (frame-writer.ts); the parts may be reused. */
  private sendFrameParts(type: FrameType, frameParts: Uint8Array[]): void {
    if (this.current !== 'open' && this.current !== 'closing') return;
    this.writer.send(type, frameParts);
  }

  /** @internal Counts an error; too many in a row closes the session with `limit-exceeded`. */
  countError(err: unknown): void {
    this.counters.errors++;
    this.counters.consecutiveErrors++;
    this.logger.warn({ err }, 'session error');
    if (this.counters.consecutiveErrors >= this.parts.maxConsecutiveErrors) void this.close('limit-exceeded');
  }

  /** @internal A rejected listener of any other event ('hosed', 'close'): an error of this session, logged. */
  override [REJECTION](err: Error, ..._event: unknown[]): void {
    this.countError(err);
  }

  /** @internal A success resets the consecutive error count. */
  countSuccess(): void {
    this.counters.consecutiveErrors = 0;
  }

  /**
   * Closes the session gracefully: tells the peer, closes every child, releases this side's hold on the
   * arenas and removes the session's shared objects. Resolves when done; calling it again returns the same
   * promise. Never throws.
   */
  close(reason: CloseReason = 'local-close'): Promise<void> {
    if (this.closed !== undefined) return this.closed;
    if (!isCloseReason(reason)) throw new RangeError(`unknown close reason '${String(reason)}'`);
    if (!this.move('closing')) return Promise.resolve();
    this.reason = reason;
    this.logger.info({ reason }, 'session closing');
    try {
      this.parts.socket.write(encodeJsonFrame(FrameType.Close, { reason }));
    } catch {
      // The socket may already be gone; the peer then learns by EOF.
    }
    this.closed = this.finish(reason, false);
    return this.closed;
  }

  /** `await using session = await ClientSession.connect(…)`: closed (gracefully) at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal Forced close for server shutdown deadlines: no goodbye wait. */
  destroy(reason: CloseReason): void {
    this.fault(reason, new ShmxError('EHOSED', `session ${this.id} was force-closed`));
  }

  private onData(chunk: Buffer): void {
    if (this.current === 'closed' || this.current === 'faulted') return;
    this.lastHeard = Date.now();
    let frames;
    try {
      frames = this.parts.reader.push(chunk);
    } catch (err) {
      this.fault('protocol-error', err);
      return;
    }
    this.onFrames(frames);
  }

  /** Handles the frames of one chunk, then delivers what they brought socket channels. */
  private onFrames(frames: Array<{ type: FrameType; payload: Buffer }>): void {
    for (const f of frames) this.onFrame(f.type, f.payload);
    if (this.current === 'open') this.mux.deliverArrivals();
  }

  private onFrame(type: FrameType, payload: Buffer): void {
    if (this.current === 'closed' || this.current === 'faulted') return;
    this.counters.messagesIn++;
    this.counters.bytesIn += payload.length + 8;
    switch (type) {
      case FrameType.Ping:
        return;
      case FrameType.Close: {
        let reason: CloseReason = 'peer-closed';
        try {
          const told = parseJsonPayload(payload, 'CLOSE').reason;
          if (told === 'server-shutdown') reason = 'server-shutdown';
        } catch (err) {
          this.fault('protocol-error', err);
          return;
        }
        if (this.current === 'open') {
          this.move('closing');
          this.reason = reason;
          this.logger.info({ reason }, 'peer closed the session');
          this.closed = this.finish(reason, false);
        }
        return;
      }
      case FrameType.Channel:
      case FrameType.ChannelData:
        if (this.current !== 'open') return; // closing: the channels are gone or going
        try {
          this.mux.onFrame(payload);
        } catch (err) {
          // A quota the peer knew and passed anyway (quotas.ts) is its own fault, not garbage on the wire.
          this.fault(hasCode(err, 'EQUOTA') ? 'limit-exceeded' : 'protocol-error', err);
        }
        return;
      default:
        this.fault('protocol-error', new ShmxError('EPROTO', `unexpected frame type ${type} in an open session`));
    }
  }

  private tick(): void {
    if (this.current !== 'open') return;
    // Finds truncations nothing has touched yet (a few loads each).
    const truncated = this.parts.sessionArena.checkTruncated() ?? this.parts.appArena.checkTruncated();
    if (truncated !== null) return this.fault('protocol-error', truncated);
    const now = Date.now();
    const { intervalMs, timeoutMs } = this.parts.keepAlive;
    // A tick far behind its schedule means this process was stopped (SIGSTOP) or blocked: the peer's frames
    // of that time may be waiting, unread, in our socket (timers run before I/O in the event loop). Judging the
    // peer now would blame it for our own stall, and tear down a session it still uses. Read first, judge at
    // the next tick.
    const stalled = now - this.lastTick > 2 * intervalMs;
    this.lastTick = now;
    if (!stalled && now - this.lastHeard > timeoutMs) {
      this.fault('keepalive-timeout', new ShmxError('ETIMEDOUT', 'no keep-alive from the peer'));
      return;
    }
    try {
      this.parts.socket.write(encodeFrame(FrameType.Ping));
    } catch {
      // a failing socket reports through its events
    }
  }

  /** The peer is gone or hostile: hose the session, remove its objects now, then close children and self. */
  private fault(reason: CloseReason, cause: unknown): void {
    if (this.current === 'closed' || this.current === 'faulted') return;
    // Zero pages left by a truncation look like a corrupt ring, a stale handle or a vanished peer: say so.
    const truncated = this.parts.sessionArena.checkTruncated() ?? this.parts.appArena.checkTruncated();
    if (truncated !== null) [reason, cause] = ['protocol-error', truncated];
    if (this.current === 'closing') {
      // A goodbye is in progress; the socket ending is part of it, not a fault.
      if (reason === 'peer-crashed') return;
    }
    if (!this.move('faulted')) return;
    this.reason = isFault(reason) || reason === 'server-shutdown' || reason === 'limit-exceeded' ? reason : 'protocol-error';
    const err = new ShmxError('EHOSED', `session ${this.id} is hosed: ${reason}`, {
      resource: this.id, cause,
    }) as ShmxError & { reason: CloseReason };
    err.reason = reason;
    this.hosedError = err;
    this.logger.warn({ reason, err: cause }, 'session hosed');
    // The peer may be dead: its holds in the app arena are reclaimed, this session's objects removed now.
    this.removeSharedObjects();
    this.sweepAfterFault();
    if (diag.sessionFault.hasSubscribers) diag.sessionFault.publish({ ...this.diagnosticsRef(), reason, error: err });
    // The error handler first, then the teardown that ends in 'close' (the order the guide promises).
    if (this.listenerCount('hosed') > 0) this.step('a hosed listener threw', () => this.emit('hosed', err));
    // A close already under way finishes the job (it moves faulted → closed); otherwise start it here.
    this.closed ??= this.finish(reason, true);
  }

  private removeSharedObjects(releasePages = false): void {
    try {
      removeSegmentsWithPrefix(this.parts.scopePrefix, this.logger, releasePages);
    } catch (err) {
      this.logger.warn({ err }, 'could not remove session objects');
    }
  }

  /** After a fault the peer may be dead: whatever it created for this server app goes too (if it was the
   *  server, that includes the app arena). Objects of live processes are never touched. */
  private sweepAfterFault(): void {
    void whenDead(this.peer, 2000).then((dead) => {
      if (!dead) return; // alive but silent (stopped, hung): its objects and holds are not ours to take
      try {
        // Its holds in the app arena (which outlives this session on the server) go back to the pool...
        if (!this.parts.ownsAppArena && !this.parts.appArena.closed) this.parts.appArena.recoverDead();
        // ...and whatever it created for this server app is removed.
        sweepStale({ serverApp: this.parts.serverApp, logger: this.logger });
      } catch (err) {
        this.logger.warn({ err }, 'cleanup after the peer died failed');
      }
    });
  }

  /**
   * Tears the session down: children first, then the channel machinery, the arenas and the socket; then
   * `closed` and the one `close` event. Every step is guarded — a failing step is logged and the rest still
   * run, so the session always ends closed and this promise never rejects.
   */
  private async finish(reason: CloseReason, faulted: boolean): Promise<void> {
    this.stopKeepAlive?.();
    this.stopKeepAlive = undefined;
    for (const stop of this.stopTruncationWatch) stop();
    for (const child of [...this.children]) this.step('a session child failed to close', () => child.closeFromSession(reason));
    this.children.clear();
    const { sessionArena, appArena, ownsAppArena, socket } = this.parts;
    this.step('closing the channel machinery failed', () => this.mux.close());
    this.step('closing the session arena failed', () => sessionArena.close());
    this.step('releasing the app arena failed', () => {
      if (ownsAppArena) releaseAppArena(appArena);
    });
    if (!faulted) {
      // Say goodbye and wait (bounded) for the peer's own end: destroying at once would make the peer's
      // next write fail with EPIPE before it read our CLOSE, and it would take us for crashed.
      const peerEnded = await new Promise<boolean>((resolve) => {
        if (socket.destroyed) return resolve(false);
        const timer = setTimeout(() => resolve(false), 1000);
        timer.unref();
        socket.once('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
        this.step('ending the master socket failed', () => socket.end());
      });
      // The peer closes its arena instances before it ends its socket: once it has, the session's memory can
      // go back to the kernel at once, not when the last mapping is garbage-collected.
      this.removeSharedObjects(peerEnded);
    }
    this.step('destroying the master socket failed', () => socket.destroy());
    this.move('closed');
    this.logger.info({ reason }, 'session closed');
    this.step('a close listener threw', () => this.emit('close', reason));
    if (diag.sessionClose.hasSubscribers) {
      diag.sessionClose.publish({ ...this.diagnosticsRef(), reason, durationMs: Date.now() - this.openedAt });
    }
  }

  private step(what: string, action: () => void): void {
    try {
      action();
    } catch (err) {
      this.logger.warn({ err }, what);
    }
  }

  private move(to: SessionState): boolean {
    if (!canTransition(this.current, to)) return false;
    this.current = to;
    return true;
  }
}
