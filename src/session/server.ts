/**
 * SessionServer: accepts sessions for one server app. One live server per app (see instance-lock.ts); it
 * sweeps its app's stale objects at start and periodically, verifies every client against the universe and the
 * kernel's view of the socket peer, creates each session's arena and the app arenas, and on close shuts every
 * session down (forcing those that hang past a deadline) and removes everything it made.
 */
import { EventEmitter } from 'node:events';
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { Arena } from '../arena/index.js';
import { resolveChannelSettings, type ChannelSettings } from '../channel/index.js';
import { selfIdentity } from '../cleanup/liveness.js';
import { removeFileAtExit } from '../cleanup/exit-cleanup.js';
import { createWithFreshNonce } from '../cleanup/names.js';
import { sweepPeriodically } from '../cleanup/periodic-sweep.js';
import { removeSegmentsWithPrefix, sweepStale } from '../cleanup/sweep.js';
import { checkOperationsOptions, startOperations, type Operations, type OperationsOptions } from '../control/operations.js';
import type { ServerInspection } from '../control/target.js';
import { emitCounted, REJECTION } from '../listener-errors.js';
import '../dispose.js';
import { abortError, checkAbortOptions, waitInQueue } from '../abort.js';
import { defaultLogger, type Logger } from '../log.js';
import { Handshakes } from './handshake.js';
import { CLOSE_REASONS, type CloseReason } from './lifecycle.js';
import { acquireInstanceLock, instanceLockPath } from './instance-lock.js';
import { encodeJsonFrame, FrameType, type Refusal } from './protocol.js';
import { prepareRunDirectory, runDirectoryMode } from './run-directory.js';
import { appScopePrefix, arenaName, scopeOfArena } from './scope-names.js';
import { ServerQuotas, type ServerQuotaOptions, type ServerQuotaUsage } from './quotas.js';
import type { Session, KeepAliveOptions } from './session.js';
import { permissionMode, type Universe } from './universe.js';

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
export interface SessionServerOptions<A extends string = string, S extends string = string> extends OperationsOptions {
  universe: Universe<A, S>;
  /** The server app this process runs as (must be a server in the universe; checked by the compiler when the
   *  universe was made from a literal). */
  serverApp: NoInfer<S>;
  /** Sessions open at once; a connect over it is refused at once with ESESSIONLIMIT. Handshakes in progress do
   *  not count (they have limits of their own, below). Default 128. */
  maxSessions?: number;
  /** Handshakes in progress at once. When full, a new connection displaces the oldest one that has not said
   *  HELLO yet (EHANDSHAKELIMIT to that one), else it is refused with EHANDSHAKELIMIT. Default 128. */
  maxHandshakes?: number;
  /** Handshakes in progress at once per connecting uid, with the same displacement. Default 64. */
  maxHandshakesPerUid?: number;
  /** Default 256 MiB max (reserved only as used: 256 KiB at open, then ≥ 1 MiB steps sized so the max stays
   *  reachable — about 4 MiB here). Room for 1000 channels with default 64 KiB rings. */
  sessionArena?: ArenaSizing;
  /** Default 256 MiB max, 1 MiB initial. */
  appArena?: ArenaSizing;
  /** Default ping every 1000 ms, hosed after 3000 ms of silence. Sent to clients in the handshake. */
  keepAlive?: Partial<KeepAliveOptions>;
  /** A client must finish its handshake within this (connect to READY). Default 2000 ms. */
  handshakeTimeoutMs?: number;
  /** close() force-closes sessions still open after this. Default 2000 ms. */
  shutdownTimeoutMs?: number;
  /** Period of the stale-object sweep. Default 30 s. */
  sweepIntervalMs?: number;
  /** Consecutive errors after which a session is closed with `limit-exceeded`. Default 16. */
  maxConsecutiveErrors?: number;
  /** Channel settings of accepted sessions (spin time before parking, socket message limit). */
  channels?: Partial<ChannelSettings>;
  /** Channels per session, and the server-wide budget of bytes and channels (see {@link ServerQuotaOptions}).
   *  The per-session byte quotas are the arenas' ceilings: `sessionArena.maxBytes`, `appArena.maxBytes`. */
  quotas?: ServerQuotaOptions;
  logger?: Logger;
  /** Called when a session has opened, before the `session` event: attach per-session state here. */
  onSessionOpen?: (session: Session) => void;
  /** Called exactly once per opened session, after its `close` event. */
  onSessionClose?: (session: Session, reason: CloseReason) => void;
  /** Aborting rejects `start` with AbortError; whatever it had done (lock, socket, sweeps) is undone. */
  signal?: AbortSignal;
}

/** Counters of a server's life. */
export interface SessionServerMetrics {
  opened: number;
  active: number;
  faulted: number;
  closedByReason: Record<CloseReason, number>;
  refusedByReason: Record<string, number>;
}

/** Events of a {@link SessionServer}. */
export interface ServerEvents {
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
    Pick<SessionServerOptions, 'maxSessions' | 'handshakeTimeoutMs' | 'shutdownTimeoutMs' | 'maxConsecutiveErrors' |
      'maxHandshakes' | 'maxHandshakesPerUid'>
  > & SessionServerOptions;
  private readonly keepAlive: KeepAliveOptions;
  private readonly channelSettings: ChannelSettings;
  private readonly liveSessions = new Set<Session>();
  private readonly handshakes: Handshakes;
  private readonly appArenas = new Map<string, Arena>();
  private readonly waiting: Array<(r: IteratorResult<Session>) => void> = [];
  /** Sessions accepted while no iterator waited (only once someone iterates). */
  private readonly queued: Session[] = [];
  private iterated = false;
  private listener: Server | undefined;
  private lock: { release(): void } | undefined;
  private nextSession = 1;
  private closing: Promise<void> | undefined;
  private readonly quota: ServerQuotas; // quotas.ts
  private operations: Operations | undefined;
  /** exit-cleanup.ts: forgets the files registered for removal at exit (this server removes them itself). */
  private readonly forgetAtExit: Array<() => void> = [];
  private readonly startedAt = Date.now();

  private constructor(options: SessionServerOptions) {
    super({ captureRejections: true }); // listener errors never reach the process (listener-errors.ts)
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
      maxHandshakes: positive(options.maxHandshakes, 'maxHandshakes', 128),
      maxHandshakesPerUid: positive(options.maxHandshakesPerUid, 'maxHandshakesPerUid', 64),
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
    this.quota = new ServerQuotas(options.quotas, this.serverApp, selfIdentity(), this.logger); // quotas.ts
    this.metrics = {
      opened: 0,
      active: 0,
      faulted: 0,
      closedByReason: Object.fromEntries(CLOSE_REASONS.map((r) => [r, 0])) as Record<CloseReason, number>,
      refusedByReason: {},
    };
    this.handshakes = new Handshakes({
      serverApp: this.serverApp,
      universe: options.universe,
      logger: this.logger,
      keepAlive: this.keepAlive,
      channels: this.channelSettings,
      maxConsecutiveErrors: this.options.maxConsecutiveErrors,
      sessionArena: options.sessionArena,
      maxSessions: this.options.maxSessions,
      quota: this.quota,
      roomForSession: () => this.liveSessions.size < this.options.maxSessions,
      nextSessionNumber: () => this.nextSession++,
      appArenaFor: (clientApp, mode) => this.appArenaFor(clientApp, mode),
      opened: (session) => this.opened(session),
      refuse: (socket, refusal, clientApp) => this.refuse(socket, refusal, clientApp),
    }, {
      maxHandshakes: this.options.maxHandshakes,
      maxHandshakesPerUid: this.options.maxHandshakesPerUid,
      timeoutMs: this.options.handshakeTimeoutMs,
    });
  }

  /**
   * Starts a server: prepares and checks the run directory (EUNSAFEDIR, naming the rule it breaks), takes the
   * app's instance lock there (ESERVERRUNNING if another live server holds it), sweeps the app's stale objects,
   * and listens. Everything done is undone if a step fails.
   */
  static async start<A extends string = string, S extends string = string>(options: SessionServerOptions<A, S>): Promise<SessionServer> {
    const signal = (options as SessionServerOptions | null)?.signal;
    checkAbortOptions({ signal });
    if (signal?.aborted) throw abortError('SessionServer.start', signal);
    const server = new SessionServer(options);
    try {
      await server.listen();
      // An abort during the start undoes it (the steps are short: checked once they are done).
      if (signal?.aborted) throw abortError('SessionServer.start', signal);
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  private async listen(): Promise<void> {
    const def = this.options.universe.server(this.serverApp);
    prepareRunDirectory(def.runDirectory, runDirectoryMode(def.permissions));
    this.lock = acquireInstanceLock(def.runDirectory, this.serverApp);
    // exit-cleanup.ts: if this process ends before close(), its files go with it (and its arenas, by name).
    this.forgetAtExit.push(removeFileAtExit(instanceLockPath(def.runDirectory, this.serverApp)), removeFileAtExit(this.socketPath));
    const report = sweepStale({ serverApp: this.serverApp, logger: this.logger });
    if (report.removed.length > 0) {
      this.logger.info({ removed: report.removed.map((r) => r.name) }, 'removed a crashed predecessor\'s objects');
    }
    // Operations first: starting the control thread takes a while, and a session must not be accepted before
    // start() resolved (the caller attaches its 'session' handlers then) — listening is the last wait.
    this.operations = await startOperations(this, { ...this.options, runDirectory: def.runDirectory, mode: permissionMode(def.permissions) }, this.logger);
    if (this.operations.controlSocketPath !== undefined) this.forgetAtExit.push(removeFileAtExit(this.operations.controlSocketPath));
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
    sweepPeriodically(this.serverApp, this.logger, this.options.sweepIntervalMs);
    this.quota.start(() => this.liveSessions); // quotas.ts: periodic check of the sessions' segments
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
    const { maxSessions, maxHandshakes, maxHandshakesPerUid, handshakeTimeoutMs, shutdownTimeoutMs, maxConsecutiveErrors, sweepIntervalMs, sessionArena, appArena } = this.options;
    const def = this.options.universe.server(this.serverApp);
    return {
      startedAt: this.startedAt, pendingHandshakes: this.handshakes.size, appArenas: this.appArenas,
      runDirectory: def.runDirectory, permissions: def.permissions, quotas: this.quota.usage(),
      limits: { maxSessions, maxHandshakes, maxHandshakesPerUid, handshakeTimeoutMs, shutdownTimeoutMs, maxConsecutiveErrors, sweepIntervalMs: sweepIntervalMs ?? 30_000,
        keepAlive: this.keepAlive, sessionArena: sessionArena ?? null, appArena: appArena ?? null },
    };
  }

  /** Sessions currently open. */
  get openSessions(): readonly Session[] {
    return [...this.liveSessions];
  }

  /** Quota usage now (read-only snapshot): bytes of all this server's arenas and channels of all its sessions
   *  against their budgets. Per-session usage: `session.quotas`. */
  get quotas(): ServerQuotaUsage {
    return this.quota.usage();
  }

  /** Iterates over accepted sessions until the server closes. */
  [Symbol.asyncIterator](): AsyncGenerator<Session> {
    return this.iterate(undefined);
  }

  /**
   * Iterates over accepted sessions until the server closes — or until `signal` aborts: the loop then throws
   * AbortError (as `events.on(emitter, name, { signal })` does).
   */
  sessions(options: { signal?: AbortSignal } = {}): AsyncGenerator<Session> {
    checkAbortOptions(options);
    return this.iterate(options.signal);
  }

  private async *iterate(signal: AbortSignal | undefined): AsyncGenerator<Session> {
    this.iterated = true;
    for (;;) {
      if (signal?.aborted) throw abortError('iterating sessions', signal);
      const s = this.queued.shift();
      if (s !== undefined) {
        yield s;
        continue;
      }
      if (this.closing !== undefined) return;
      const r = await waitInQueue(this.waiting, signal, 'iterating sessions');
      if (r.done === true) return;
      yield r.value;
    }
  }

  private onConnection(socket: Socket): void {
    socket.on('error', () => {}); // errors of a connection in handshake end it below; never the process
    if (this.closing !== undefined) {
      this.refuse(socket, { code: 'ESHUTDOWN', reason: 'server is shutting down' });
      return;
    }
    this.handshakes.accept(socket);
  }

  /** The app arena of `clientApp`, created with its first session; it lives until the server closes. */
  private appArenaFor(clientApp: string, mode: number): Arena {
    let arena = this.appArenas.get(clientApp);
    if (arena !== undefined && arena.checkTruncated() !== null) {
      this.dropAppArena(clientApp); // truncated by someone: its sessions have faulted; start a new one
      arena = undefined;
    }
    if (arena === undefined) {
      const sizing = this.options.appArena ?? { maxBytes: 256 << 20, initialBytes: 1 << 20 };
      // A fresh nonce, another on EEXIST: a name someone created first never blocks this client app.
      arena = createWithFreshNonce('app arena', (nonce) =>
        Arena.create(arenaName(appScopePrefix(selfIdentity(), this.serverApp, clientApp, nonce)), {
          ...sizing,
          mode,
          ...arenaSafety(this.logger),
          beforeGrow: this.quota.guard('appArena.maxBytes'), // quotas.ts
        }));
      this.quota.track(arena); // quotas.ts
      this.appArenas.set(clientApp, arena);
      this.logger.info({ clientApp, arena: arena.name }, 'created app arena');
    }
    return arena;
  }

  private dropAppArena(clientApp: string): void {
    const arena = this.appArenas.get(clientApp);
    this.appArenas.delete(clientApp);
    if (arena === undefined) return;
    try {
      arena.close();
    } finally {
      removeSegmentsWithPrefix(scopeOfArena(arena.name), this.logger);
    }
  }

  /** A handshake made a session: count it, watch it, hand it to the app. */
  private opened(session: Session): void {
    this.liveSessions.add(session);
    this.metrics.opened++;
    this.metrics.active = this.liveSessions.size;
    session.on('hosed', () => this.metrics.faulted++);
    session.once('close', (reason) => {
      this.liveSessions.delete(session);
      const q = this.queued.indexOf(session);
      if (q >= 0) this.queued.splice(q, 1);
      this.metrics.active = this.liveSessions.size;
      this.metrics.closedByReason[reason]++;
      // After every other 'close' listener: the app's per-session state is dropped last.
      queueMicrotask(() => this.callHook(() => this.options.onSessionClose?.(session, reason)));
    });
    session.logger.info({ peer: session.peer }, 'session opened');
    this.callHook(() => this.options.onSessionOpen?.(session));
    const waiter = this.waiting.shift();
    if (waiter !== undefined) waiter({ value: session, done: false });
    else if (this.iterated) this.queued.push(session); // for the iterator's next turn
    // A throwing or rejecting 'session' listener is an error of that session (listener-errors.ts).
    emitCounted(this, 'session', [session], { error: (err) => session.countError(err), success: () => {} });
  }

  /** @internal A rejected 'refused' or 'close' listener: logged, never the process's end. */
  override [REJECTION](err: Error, ...event: unknown[]): void {
    this.logger.error({ err, event: event[0] }, 'a listener of the session server rejected');
  }

  private callHook(hook: () => void): void {
    try {
      hook();
    } catch (err) {
      this.logger.error({ err }, 'session hook threw');
    }
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

  /** `await using server = await SessionServer.start(…)`: shut down at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutdown(): Promise<void> {
    this.quota.stop(); // quotas.ts
    const listener = this.listener;
    const stopped = listener ? new Promise<void>((r) => listener.close(() => r())) : Promise.resolve();
    this.handshakes.failAll({ code: 'ESHUTDOWN', reason: 'server is shutting down' });
    const graceful = Promise.allSettled([...this.liveSessions].map((s) => s.close('server-shutdown')));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((r) => (timer = setTimeout(r, this.options.shutdownTimeoutMs)));
    await Promise.race([graceful, deadline]);
    clearTimeout(timer);
    for (const s of [...this.liveSessions]) {
      this.logger.warn({ session: s.id }, 'force-closing a session that did not close in time');
      s.destroy('server-shutdown');
    }
    if (this.listener !== undefined) rmSync(this.socketPath, { force: true });
    await this.operations?.close();
    await stopped;
    // A connection the listener had accepted before it closed may have begun a handshake (and made an app
    // arena) meanwhile: refuse it and end its session too, then drop the app arenas — last, so none comes back.
    this.handshakes.failAll({ code: 'ESHUTDOWN', reason: 'server is shutting down' });
    for (const s of [...this.liveSessions]) s.destroy('server-shutdown');
    for (const clientApp of [...this.appArenas.keys()]) {
      try {
        this.dropAppArena(clientApp);
      } catch (err) {
        this.logger.warn({ err, clientApp }, 'closing an app arena failed');
      }
    }
    this.lock?.release();
    for (const forget of this.forgetAtExit.splice(0)) forget();
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
