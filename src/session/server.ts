/**
 * SessionServer: accepts sessions for one server app. One live server per app (see instance-lock.ts); it
 * sweeps its app's stale objects at start and periodically, verifies every client against the universe and the
 * kernel's view of the socket peer, creates each session's arena and the app arenas, and on close shuts every
 * session down (forcing those that hang past a deadline) and removes everything it made.
 */
import { EventEmitter } from 'node:events';
import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { Arena } from '../arena/index.js';
import { resolveChannelSettings, type ChannelSettings } from '../channel/index.js';
import { selfIdentity } from '../cleanup/liveness.js';
import { sweepPeriodically } from '../cleanup/periodic-sweep.js';
import { removeSegmentsWithPrefix, sweepStale } from '../cleanup/sweep.js';
import { checkOperationsOptions, startOperations, type Operations, type OperationsOptions } from '../control/operations.js';
import type { ServerInspection } from '../control/target.js';
import { ShmxError } from '../errors.js';
import { defaultLogger, type Logger } from '../log.js';
import { CLOSE_REASONS, type CloseReason } from './lifecycle.js';
import { acquireInstanceLock } from './instance-lock.js';
import { peerCredentialsOf } from './peer-socket.js';
import {
  encodeJsonFrame,
  FrameReader,
  FrameType,
  HANDSHAKE_MAX_PAYLOAD,
  parseHello,
  type Hello,
  type Refusal,
  type Welcome,
} from './protocol.js';
import { appArenaName, appScopePrefix, sessionArenaName, sessionScopePrefix } from './scope-names.js';
import { Session, type KeepAliveOptions } from './session.js';
import { permissionMode, type Universe } from './universe.js';
import { verifyClient } from './verify-client.js';

/** Sizes of an arena the server creates. */
export interface ArenaSizing {
  /** Upper bound; allocation past it fails with EARENAFULL. */
  maxBytes: number;
  /** Reserved at creation (physical memory, at once). */
  initialBytes?: number;
  /** Reserved at each growth past what is reserved (default min(maxBytes, 8 MiB)). */
  growChunk?: number;
}

/** Options of {@link SessionServer}. `control` (the control socket) and `metrics` are on by default. */
export interface SessionServerOptions extends OperationsOptions {
  universe: Universe;
  /** The server app this process runs as (must be a server in the universe). */
  serverApp: string;
  /** Sessions open or opening at once; a connect over it is refused at once with ESESSIONLIMIT. Default 128. */
  maxSessions?: number;
  /** Default 256 MiB max (reserved only as used: 256 KiB at open, then ≥ 1 MiB steps sized so the max stays
   *  reachable — about 4 MiB here). Room for 1000 channels with default 64 KiB rings. */
  sessionArena?: ArenaSizing;
  /** Default 256 MiB max, 1 MiB initial. */
  appArena?: ArenaSizing;
  /** Default ping every 1000 ms, hosed after 3000 ms of silence. Sent to clients in the handshake. */
  keepAlive?: Partial<KeepAliveOptions>;
  /** A client must finish its handshake within this. Default 2000 ms. */
  handshakeTimeoutMs?: number;
  /** close() force-closes sessions still open after this. Default 2000 ms. */
  shutdownTimeoutMs?: number;
  /** Period of the stale-object sweep. Default 30 s. */
  sweepIntervalMs?: number;
  /** Consecutive errors after which a session is closed with `limit-exceeded`. Default 16. */
  maxConsecutiveErrors?: number;
  /** Channel settings of accepted sessions (spin time before parking, socket message limit). */
  channels?: Partial<ChannelSettings>;
  logger?: Logger;
  /** Called when a session has opened, before the `session` event: attach per-session state here. */
  onSessionOpen?: (session: Session) => void;
  /** Called exactly once per opened session, after its `close` event. */
  onSessionClose?: (session: Session, reason: CloseReason) => void;
}

/** Counters of a server's life. */
export interface SessionServerMetrics {
  opened: number;
  active: number;
  faulted: number;
  closedByReason: Record<CloseReason, number>;
  refusedByReason: Record<string, number>;
}

interface Pending {
  socket: Socket;
  reader: FrameReader;
  timer: NodeJS.Timeout;
  /** Undo steps of a half-made session, run in reverse on failure. */
  rollback: Array<() => void>;
  /** The handshake's own socket listeners, removed when the session takes the socket over. */
  onData?: (chunk: Buffer) => void;
  onClose?: () => void;
  hello?: Hello;
  welcome?: Welcome;
  startedAt: number;
  sessionArena?: Arena;
  appArena?: Arena;
  done: boolean;
}

interface ServerEvents {
  session: [session: Session];
  /** A connection was refused (code and reason are also logged and sent to the client). */
  refused: [refusal: Refusal];
  close: [];
}

/** Accepts sessions for one server app. Use `await SessionServer.start(options)`. */
export class SessionServer extends EventEmitter<ServerEvents> {
  readonly serverApp: string;
  /** Path of the listening socket. */
  readonly socketPath: string;
  readonly logger: Logger;
  readonly metrics: SessionServerMetrics;

  private readonly options: Required<
    Pick<SessionServerOptions, 'maxSessions' | 'handshakeTimeoutMs' | 'shutdownTimeoutMs' | 'maxConsecutiveErrors'>
  > & SessionServerOptions;
  private readonly keepAlive: KeepAliveOptions;
  private readonly channelSettings: ChannelSettings;
  private readonly sessions = new Set<Session>();
  private readonly pending = new Set<Pending>();
  private readonly appArenas = new Map<string, Arena>();
  private readonly waiting: Array<(r: IteratorResult<Session>) => void> = [];
  /** Sessions accepted while no iterator waited (only once someone iterates). */
  private readonly queued: Session[] = [];
  private iterated = false;
  private listener: Server | undefined;
  private lock: { release(): Promise<void> } | undefined;
  private nextSession = 1;
  private closing: Promise<void> | undefined;
  private operations: Operations | undefined;
  private readonly startedAt = Date.now();

  private constructor(options: SessionServerOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const server = options.universe.server(options.serverApp);
    this.serverApp = server.name;
    this.socketPath = options.universe.socketPath(server.name);
    const positive = (v: number | undefined, name: string, fallback: number) => {
      if (v === undefined) return fallback;
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer`);
      return v;
    };
    this.options = {
      ...options,
      maxSessions: positive(options.maxSessions, 'maxSessions', 128),
      handshakeTimeoutMs: positive(options.handshakeTimeoutMs, 'handshakeTimeoutMs', 2000),
      shutdownTimeoutMs: positive(options.shutdownTimeoutMs, 'shutdownTimeoutMs', 2000),
      maxConsecutiveErrors: positive(options.maxConsecutiveErrors, 'maxConsecutiveErrors', 16),
    };
    if (options.sweepIntervalMs !== undefined && (!Number.isFinite(options.sweepIntervalMs) || options.sweepIntervalMs < 100)) {
      throw new RangeError('sweepIntervalMs must be at least 100 ms');
    }
    this.keepAlive = {
      intervalMs: positive(options.keepAlive?.intervalMs, 'keepAlive.intervalMs', 1000),
      timeoutMs: positive(options.keepAlive?.timeoutMs, 'keepAlive.timeoutMs', 3000),
    };
    this.channelSettings = resolveChannelSettings(options.channels);
    checkOperationsOptions(options);
    this.logger = (options.logger ?? defaultLogger()).child({ serverApp: this.serverApp });
    this.metrics = {
      opened: 0,
      active: 0,
      faulted: 0,
      closedByReason: Object.fromEntries(CLOSE_REASONS.map((r) => [r, 0])) as Record<CloseReason, number>,
      refusedByReason: {},
    };
  }

  /**
   * Starts a server: takes the app's instance lock (ESERVERRUNNING if another live server holds it), sweeps
   * the app's stale objects, and listens. Everything done is undone if a step fails.
   */
  static async start(options: SessionServerOptions): Promise<SessionServer> {
    const server = new SessionServer(options);
    try {
      await server.listen();
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  private async listen(): Promise<void> {
    this.lock = await acquireInstanceLock(this.serverApp);
    const report = sweepStale({ serverApp: this.serverApp, logger: this.logger });
    if (report.removed.length > 0) {
      this.logger.info({ removed: report.removed.map((r) => r.name) }, 'removed a crashed predecessor\'s objects');
    }
    const def = this.options.universe.server(this.serverApp);
    mkdirSync(def.runDirectory, { recursive: true, mode: 0o755 });
    checkRunDirectory(def.runDirectory);
    rmSync(this.socketPath, { force: true }); // left by a crashed predecessor: we hold the lock, it is stale
    const listener = createServer((socket) => this.onConnection(socket));
    this.listener = listener;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(this.socketPath, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (err) => this.logger.error({ err }, 'listening socket error'));
    chmodSync(this.socketPath, permissionMode(def.permissions));
    this.operations = await startOperations(this, { ...this.options, runDirectory: def.runDirectory, mode: permissionMode(def.permissions) }, this.logger);
    sweepPeriodically(this.serverApp, this.logger, this.options.sweepIntervalMs);
    this.logger.info({ socket: this.socketPath }, 'session server listening');
  }

  /** This server's Prometheus registry (prom-client; its own, not the global one); undefined with `metrics: false`. */
  get metricsRegistry() {
    return this.operations?.metricsRegistry;
  }

  /** Path of the control socket (docs/operations.md); undefined with `control: false`. */
  get controlSocketPath(): string | undefined {
    return this.operations?.controlSocketPath;
  }

  /** @internal Read-only facts for the control socket and the metrics. */
  inspect(): ServerInspection {
    const { maxSessions, handshakeTimeoutMs, shutdownTimeoutMs, maxConsecutiveErrors, sweepIntervalMs, sessionArena, appArena } = this.options;
    const def = this.options.universe.server(this.serverApp);
    return {
      startedAt: this.startedAt, pendingHandshakes: this.pending.size, appArenas: this.appArenas,
      runDirectory: def.runDirectory, permissions: def.permissions, quotas: (this.options as { quotas?: unknown }).quotas,
      limits: { maxSessions, handshakeTimeoutMs, shutdownTimeoutMs, maxConsecutiveErrors, sweepIntervalMs: sweepIntervalMs ?? 30_000,
        keepAlive: this.keepAlive, sessionArena: sessionArena ?? null, appArena: appArena ?? null },
    };
  }

  /** Sessions currently open. */
  get openSessions(): readonly Session[] {
    return [...this.sessions];
  }

  /** Iterates over accepted sessions until the server closes. */
  [Symbol.asyncIterator](): AsyncIterator<Session> {
    this.iterated = true;
    return {
      next: () => {
        const s = this.queued.shift();
        if (s !== undefined) return Promise.resolve({ value: s, done: false });
        if (this.closing !== undefined) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.waiting.push(resolve));
      },
      return: () => Promise.resolve({ value: undefined, done: true }),
    };
  }

  private onConnection(socket: Socket): void {
    socket.on('error', () => {}); // errors of a connection in handshake end it below; never the process
    if (this.closing !== undefined) {
      this.refuse(socket, { code: 'ESHUTDOWN', reason: 'server is shutting down' });
      return;
    }
    if (this.sessions.size + this.pending.size >= this.options.maxSessions) {
      this.refuse(socket, { code: 'ESESSIONLIMIT', reason: `server has ${this.options.maxSessions} sessions` });
      return;
    }
    const p: Pending = {
      socket,
      reader: new FrameReader(HANDSHAKE_MAX_PAYLOAD),
      rollback: [],
      done: false,
      startedAt: performance.now(),
      timer: setTimeout(
        () => this.fail(p, { code: 'ETIMEDOUT', reason: `handshake took over ${this.options.handshakeTimeoutMs} ms` }),
        this.options.handshakeTimeoutMs,
      ),
    };
    this.pending.add(p);
    p.onData = (chunk: Buffer) => this.onHandshakeData(p, chunk);
    p.onClose = () => this.fail(p, null);
    socket.on('data', p.onData);
    socket.on('close', p.onClose);
  }

  private onHandshakeData(p: Pending, chunk: Buffer): void {
    if (p.done) return;
    let frames;
    try {
      frames = p.reader.push(chunk);
    } catch (err) {
      this.fail(p, { code: 'EPROTO', reason: (err as Error).message });
      return;
    }
    for (let i = 0; i < frames.length && !p.done; i++) {
      const { type, payload } = frames[i]!;
      try {
        if (type === FrameType.Hello && p.hello === undefined) this.onHello(p, parseHello(payload));
        else if (type === FrameType.Ready && p.welcome !== undefined) this.onReady(p, frames.slice(i + 1));
        else throw new ShmxError('EPROTO', `unexpected frame type ${type} during handshake`);
      } catch (err) {
        const code = (err as ShmxError).code === 'EPROTO' ? 'EPROTO' : 'ERESOURCES';
        if (code === 'ERESOURCES') this.logger.error({ err }, 'could not create session resources');
        this.fail(p, { code, reason: (err as Error).message });
      }
    }
  }

  private onHello(p: Pending, hello: Hello): void {
    p.hello = hello;
    const refusal = verifyClient(this.options.universe, this.serverApp, hello, peerCredentialsOf(p.socket));
    if (refusal !== null) {
      this.fail(p, refusal);
      return;
    }
    const me = selfIdentity();
    const number = this.nextSession++;
    const mode = permissionMode(this.options.universe.server(this.serverApp).permissions);
    // Each step registers its undo first, so a failure at any point removes exactly what was made.
    const scope = sessionScopePrefix(me, this.serverApp, hello.clientApp, number);
    p.rollback.push(() => removeSegmentsWithPrefix(scope));
    // Reserving pages costs time at open and RAM for the session's life: start small, grow on demand.
    const sizing = this.options.sessionArena ?? { maxBytes: 256 << 20, initialBytes: 256 << 10, growChunk: 1 << 20 };
    const sessionArena = Arena.create(sessionArenaName(me, this.serverApp, hello.clientApp, number), {
      ...sizing,
      mode,
      ...arenaSafety(this.logger),
    });
    p.sessionArena = sessionArena;
    p.rollback.push(() => sessionArena.close());
    // Not undone on failure: other sessions of this client app may be using it already; it goes at close().
    p.appArena = this.appArenaFor(hello.clientApp, mode);
    p.welcome = {
      session: number,
      serverPid: me.pid,
      serverStartTime: me.startTime,
      sessionArena: sessionArenaName(me, this.serverApp, hello.clientApp, number),
      appArena: appArenaName(me, this.serverApp, hello.clientApp),
      keepAliveIntervalMs: this.keepAlive.intervalMs,
      keepAliveTimeoutMs: this.keepAlive.timeoutMs,
    };
    p.socket.write(encodeJsonFrame(FrameType.Welcome, p.welcome));
  }

  /** The app arena of `clientApp`, created with its first session; it lives until the server closes. */
  private appArenaFor(clientApp: string, mode: number): Arena {
    let arena = this.appArenas.get(clientApp);
    if (arena === undefined) {
      const sizing = this.options.appArena ?? { maxBytes: 256 << 20, initialBytes: 1 << 20 };
      arena = Arena.create(appArenaName(selfIdentity(), this.serverApp, clientApp), {
        ...sizing,
        mode,
        ...arenaSafety(this.logger),
      });
      this.appArenas.set(clientApp, arena);
      this.logger.info({ clientApp }, 'created app arena');
    }
    return arena;
  }

  private dropAppArena(clientApp: string): void {
    const arena = this.appArenas.get(clientApp);
    this.appArenas.delete(clientApp);
    try {
      arena?.close();
    } finally {
      removeSegmentsWithPrefix(appScopePrefix(selfIdentity(), this.serverApp, clientApp), this.logger);
    }
  }

  private onReady(p: Pending, early: Array<{ type: FrameType; payload: Buffer }>): void {
    const { hello, welcome, socket } = p;
    if (hello === undefined || welcome === undefined || p.sessionArena === undefined || p.appArena === undefined) {
      throw new ShmxError('EPROTO', 'READY before WELCOME');
    }
    const cred = peerCredentialsOf(socket);
    // If this throws, the handshake fails and its rollback removes the session arena.
    const session = new Session({
      side: 'server',
      number: welcome.session,
      serverApp: this.serverApp,
      localApp: this.serverApp,
      serverPid: welcome.serverPid,
      peer: { app: hello.clientApp, pid: cred.pid, uid: cred.uid, gid: cred.gid, startTime: hello.startTime },
      socket,
      reader: p.reader,
      early,
      sessionArena: p.sessionArena,
      appArena: p.appArena,
      ownsAppArena: false,
      scopePrefix: sessionScopePrefix(selfIdentity(), this.serverApp, hello.clientApp, welcome.session),
      objectMode: permissionMode(this.options.universe.server(this.serverApp).permissions),
      keepAlive: this.keepAlive,
      maxConsecutiveErrors: this.options.maxConsecutiveErrors,
      channels: this.channelSettings,
      logger: this.logger,
      handshakeMs: performance.now() - p.startedAt,
    });
    p.done = true;
    clearTimeout(p.timer);
    this.pending.delete(p);
    socket.removeListener('data', p.onData!);
    socket.removeListener('close', p.onClose!);
    this.sessions.add(session);
    this.metrics.opened++;
    this.metrics.active = this.sessions.size;
    session.on('hosed', () => this.metrics.faulted++);
    session.once('close', (reason) => {
      this.sessions.delete(session);
      const q = this.queued.indexOf(session);
      if (q >= 0) this.queued.splice(q, 1);
      this.metrics.active = this.sessions.size;
      this.metrics.closedByReason[reason]++;
      // After every other 'close' listener: the app's per-session state is dropped last.
      queueMicrotask(() => this.callHook(() => this.options.onSessionClose?.(session, reason)));
    });
    session.logger.info({ peer: session.peer }, 'session opened');
    this.callHook(() => this.options.onSessionOpen?.(session));
    const waiter = this.waiting.shift();
    if (waiter !== undefined) waiter({ value: session, done: false });
    else if (this.iterated) this.queued.push(session); // for the iterator's next turn
    this.emit('session', session);
  }

  private callHook(hook: () => void): void {
    try {
      hook();
    } catch (err) {
      this.logger.error({ err }, 'session hook threw');
    }
  }

  /** Ends a handshake that did not make it: undo its steps, tell the client why (if it is still there). */
  private fail(p: Pending, refusal: Refusal | null): void {
    if (p.done) return;
    p.done = true;
    clearTimeout(p.timer);
    this.pending.delete(p);
    for (const undo of p.rollback.reverse()) {
      try {
        undo();
      } catch (err) {
        this.logger.warn({ err }, 'rollback step failed');
      }
    }
    if (refusal === null) {
      p.socket.destroy();
      return;
    }
    this.refuse(p.socket, refusal, p.hello?.clientApp);
  }

  private refuse(socket: Socket, refusal: Refusal, clientApp?: string): void {
    this.metrics.refusedByReason[refusal.code] = (this.metrics.refusedByReason[refusal.code] ?? 0) + 1;
    this.logger.warn({ ...refusal, clientApp }, 'session refused');
    this.emit('refused', refusal);
    socket.removeAllListeners('data');
    socket.end(encodeJsonFrame(FrameType.Refuse, refusal));
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /**
   * Shuts down: stops accepting, closes every session gracefully with `server-shutdown`, force-closes those
   * still open after `shutdownTimeoutMs`, removes the app arenas and the socket, releases the instance lock.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const listener = this.listener;
    const stopped = listener ? new Promise<void>((r) => listener.close(() => r())) : Promise.resolve();
    for (const p of [...this.pending]) this.fail(p, { code: 'ESHUTDOWN', reason: 'server is shutting down' });
    const graceful = Promise.allSettled([...this.sessions].map((s) => s.close('server-shutdown')));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((r) => (timer = setTimeout(r, this.options.shutdownTimeoutMs)));
    await Promise.race([graceful, deadline]);
    clearTimeout(timer);
    for (const s of [...this.sessions]) {
      this.logger.warn({ session: s.id }, 'force-closing a session that did not close in time');
      s.destroy('server-shutdown');
    }
    for (const clientApp of [...this.appArenas.keys()]) {
      try {
        this.dropAppArena(clientApp);
      } catch (err) {
        this.logger.warn({ err, clientApp }, 'closing an app arena failed');
      }
    }
    if (this.listener !== undefined) rmSync(this.socketPath, { force: true });
    await this.operations?.close();
    await stopped;
    await this.lock?.release();
    for (const w of this.waiting.splice(0)) w({ value: undefined, done: true });
    this.logger.info('session server closed');
    this.emit('close');
  }
}

/**
 * Page-lock waits on shared arenas are bounded: a peer that stops (or misbehaves) while holding an arena's
 * lock costs us EARENABUSY after a short wait, never a frozen event loop.
 */
function arenaSafety(logger: Logger): { lockTimeoutMs: number; logger: Logger } {
  return { lockTimeoutMs: 100, logger };
}

/**
 * The run directory holds the socket clients trust. Refuse one that another user owns or may write to (a
 * local user who made /tmp/shmx first could otherwise swap the socket for their own).
 */
function checkRunDirectory(path: string): void {
  const st = lstatSync(path);
  const uid = process.getuid?.() ?? 0;
  const othersMayWrite = (st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0;
  if (!st.isDirectory() || (st.uid !== uid && st.uid !== 0) || othersMayWrite) {
    throw new ShmxError('EUNSAFEDIR', `run directory ${path} must be a directory owned by this user (or root) and not ` +
      'writable by others', { resource: path });
  }
}
