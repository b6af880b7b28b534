/**
 * ClientSession.connect: opens a session with a server app. It fails fast — ENOSERVER at once when nobody
 * listens — and keeps a timeout (TimeoutError) distinct from the caller's abort (AbortError). It also checks
 * the server: the socket peer must be the process that claims to be the server, and the names it hands out
 * must be objects of this very session.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { Arena } from '../arena/index.js';
import { resolveChannelSettings, type ChannelSettings, type OpenChannelOptions } from '../channel/index.js';
import { selfIdentity } from '../cleanup/liveness.js';
import { sweepPeriodically } from '../cleanup/periodic-sweep.js';
import { AbortError, ShmxError, TimeoutError } from '../errors.js';
import { defaultLogger, type Logger } from '../log.js';
import { native, type PeerCredentials } from '../native.js';
import { peerCredentialsOf } from './peer-socket.js';
import {
  encodeJsonFrame,
  FrameReader,
  FrameType,
  HANDSHAKE_MAX_PAYLOAD,
  parseRefusal,
  parseWelcome,
  PROTOCOL_VERSION,
  type Hello,
  type Welcome,
} from './protocol.js';
import { checkClientQuotaOptions, clientQuotaPolicy, ceilingGuard, type ClientQuotaOptions } from './quotas.js';
import { resolveRetryOptions, withRetry, type RetryOptions } from './reconnect.js';
import { belongsTo } from './scope-names.js';
import { Session } from './session.js';
import { createWakeup, sessionParts } from './session-parts.js';
import { acquireAppArena, releaseAppArena } from './shared-arena.js';
import { permissionMode, type Universe } from './universe.js';

/** Options of {@link ClientSession.connect}. With a universe made from a literal, the app names are checked
 *  against it by the compiler (see {@link Universe}). */
export interface ConnectOptions<A extends string = string, S extends string = string> {
  universe: Universe<A, S>;
  /** The app this process runs as. */
  clientApp: NoInfer<A | S>;
  /** The server app to open a session with. */
  serverApp: NoInfer<S>;
  /** Handshake deadline; past it the connect rejects with TimeoutError. Default 5000 ms. */
  timeoutMs?: number;
  /** Aborting rejects the connect with AbortError. */
  signal?: AbortSignal;
  /** Consecutive errors after which the session is closed with `limit-exceeded`. Default 16. */
  maxConsecutiveErrors?: number;
  /** Channels to open as part of the session: connect resolves once the server accepted all of them
   *  (they are `session.channels`, with `init === true`; the server receives them through `'channel'`). */
  initChannels?: OpenChannelOptions[];
  /** Channel settings (spin time before parking, socket message limit). */
  channels?: Partial<ChannelSettings>;
  /** Period of this process's sweep of the server app's stale objects, started by its first session. Default 30 s. */
  sweepIntervalMs?: number;
  /** Limits against a greedy or hostile server (channels it may open here); see {@link ClientQuotaOptions}. */
  quotas?: ClientQuotaOptions;
  logger?: Logger;
  /** Wait for the server instead of failing fast: attempts again, with back-off, while the connect fails with
   *  `ENOSERVER` (and the other codes of {@link RetryOptions.retryOn}), within bounds (default 30 s in all);
   *  `signal` aborts the wait. See reconnect.ts. `timeoutMs` is per attempt. */
  retry?: RetryOptions;
}

/** What the client made at WELCOME (READY sent), waiting for the server's answer to READY. */
interface Readied {
  welcome: Welcome;
  cred: { pid: number; uid: number; gid: number };
  server: { pid: number; startTime: number };
  sessionArena: Arena;
  appArena: Arena;
  wakeup: ReturnType<typeof createWakeup>;
}

/** The client side of sessions. */
export class ClientSession {
  private constructor() {}

  /**
   * Opens a session. Resolves with an `open` session — never with one that closed meanwhile: the caller's
   * continuation runs before any event of the session, so a listener attached at once sees its `'hosed'` and
   * `'close'`. Rejects with `ENOSERVER` at once when no server of `serverApp` listens (retrying is the
   * caller's choice: a back-off between 250 and 5000 ms suits most services), with the server's refusal code
   * (`ESESSIONLIMIT`, `EAPPNOTACCEPTED`, `EUIDMISMATCH`, ...) when refused, with `ECONNRESET` when the server
   * went away during the handshake (even right after WELCOME), with TimeoutError past `timeoutMs` and with
   * AbortError when `signal` aborts.
   */
  static connect<A extends string = string, S extends string = string>(options: ConnectOptions<A, S>): Promise<Session> {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    // reconnect.ts: `retry` runs this very connect (without `retry`) until it succeeds or a bound is reached.
    if (options.retry !== undefined) {
      const { retry, ...once } = options;
      const resolved = resolveRetryOptions(retry);
      return withRetry(resolved, options.signal, () => ClientSession.connect(once));
    }
    const { universe, clientApp, serverApp } = options;
    universe.app(clientApp);
    const socketPath = universe.socketPath(serverApp);
    const timeoutMs = options.timeoutMs ?? 5000;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new RangeError('timeoutMs must be a positive integer');
    const sweepMs = options.sweepIntervalMs;
    if (sweepMs !== undefined && (!Number.isFinite(sweepMs) || sweepMs < 100)) {
      throw new RangeError('sweepIntervalMs must be at least 100 ms');
    }
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new TypeError('signal must be an AbortSignal');
    }
    if (options.signal?.aborted) return Promise.reject(new AbortError('connect aborted before it started'));
    const channelSettings = resolveChannelSettings(options.channels);
    checkClientQuotaOptions(options.quotas); // quotas.ts
    const initChannels = options.initChannels ?? [];
    if (!Array.isArray(initChannels)) throw new TypeError('initChannels must be an array');
    const logger = (options.logger ?? defaultLogger()).child({ clientApp, serverApp });
    return new Promise<Session>((resolve, reject) => {
      const socket = netConnect(socketPath);
      const reader = new FrameReader(HANDSHAKE_MAX_PAYLOAD);
      /** What the handshake made so far, undone in reverse if the connect fails before a Session owns it. */
      const undo: Array<() => void> = [];
      let settled = false;
      const finish = (err: Error | null, session?: Session) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        handOver();
        if (err !== null) {
          for (const step of undo.reverse()) {
            try {
              step();
            } catch (e) {
              logger.warn({ err: e }, 'undoing a connect step failed');
            }
          }
          socket.destroy();
          logger.info({ code: (err as ShmxError).code, reason: err.message }, 'connect failed');
          reject(err);
        } else {
          resolve(session!);
        }
      };
      /**
       * Resolves with `session` only if it is still open. Called from a microtask: socket events of the same
       * read (an EOF right after WELCOME is delivered by process.nextTick) have run by then, and the caller's
       * continuation runs in this same microtask pass, before any later event — so it gets an open session
       * and can listen, or a rejection, never a session that closed before it could listen.
       */
      const resolveIfOpen = (session: Session) => {
        if (session.state === 'open') {
          finish(null, session);
          return;
        }
        const err = new ShmxError('ECONNRESET', `server '${serverApp}' went away as the session opened ` +
          `(${session.closeReason ?? session.state})`, { resource: socketPath });
        settled = true; // the session's own teardown already released everything
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        logger.info({ code: err.code, reason: err.message }, 'connect failed');
        reject(err);
      };
      // The connect's own listeners leave the socket as soon as a Session owns it (or the connect failed).
      const handOver = () => {
        socket.removeListener('data', onData);
        socket.removeListener('close', onClose);
        socket.removeListener('error', onError);
      };
      const timer = setTimeout(
        () => finish(new TimeoutError(`no session with '${serverApp}' within ${timeoutMs} ms`, { resource: socketPath })),
        timeoutMs,
      );
      const onAbort = () => finish(new AbortError('connect aborted', { resource: socketPath, cause: options.signal?.reason }));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const onClose = () =>
        finish(new ShmxError('ECONNRESET', `server '${serverApp}' closed the connection during the handshake`));

      const onError = (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          finish(new ShmxError('ENOSERVER', `no server of app '${serverApp}' is listening at ${socketPath}`, {
            resource: socketPath, cause: err,
          }));
        } else if (err.code === 'EPIPE' || err.code === 'ECONNRESET') {
          // E.g. READY written to a server that died after WELCOME: the same as its closing the connection.
          finish(new ShmxError('ECONNRESET', `server '${serverApp}' closed the connection during the handshake`, { cause: err }));
        } else {
          finish(err);
        }
      };
      socket.on('error', onError);
      socket.on('close', onClose);

      let serverCred: { pid: number; uid: number; gid: number } | undefined;
      socket.once('connect', () => {
        serverCred = peerCredentialsOf(socket);
        const mismatch = checkServerIdentity(universe, serverApp, serverCred);
        if (mismatch !== null) {
          finish(new ShmxError('ESERVERIDENTITY', mismatch, { resource: socketPath }));
          return;
        }
        const me = selfIdentity();
        const hello: Hello = {
          protocol: PROTOCOL_VERSION, serverApp, clientApp, pid: me.pid, startTime: me.startTime,
          maxSocketMessage: channelSettings.maxSocketMessage,
        };
        socket.write(encodeJsonFrame(FrameType.Hello, hello));
      });

      /** WELCOME checked and READY sent: what the session will be built from once the server answers. */
      let ready: Readied | undefined;
      /** The frames after the server's answer belong to the session (it was handed them). */
      let settledFrames = false;
      const onData = (chunk: Buffer) => {
        let frames;
        try {
          frames = reader.push(chunk);
        } catch (err) {
          finish(err as Error);
          return;
        }
        for (let i = 0; i < frames.length && !settled && !settledFrames; i++) {
          const { type, payload } = frames[i]!;
          try {
            if (type === FrameType.Refuse) {
              const refusal = parseRefusal(payload);
              finish(new ShmxError(refusal.code, `refused by '${serverApp}': ${refusal.reason}`, { resource: serverApp }));
            } else if (type === FrameType.Welcome && ready === undefined) {
              ready = sendReady(parseWelcome(payload));
            } else if (ready !== undefined) {
              // The server's answer to READY: a REFUSE (above: identity re-checked, limits, deadline, resources)
              // rejects; anything else (its first PING, then maybe channel frames) means it opened the session.
              // Waiting for it is what keeps connect from resolving with a session the server then refuses.
              const session = open(ready, frames.slice(i));
              // The session owns the socket and the arenas from here on: a later failure closes it, nothing else.
              handOver();
              undo.length = 0;
              settledFrames = true;
              if (initChannels.length === 0) {
                queueMicrotask(() => resolveIfOpen(session));
              } else {
                // The session is open; the connect completes with its init channels, or not at all.
                Promise.all(initChannels.map((o) => session.openInitChannel(o))).then(
                  () => resolveIfOpen(session),
                  (err: Error) => {
                    void session.close('protocol-error');
                    settled = true; // the session's own close tears everything down
                    clearTimeout(timer);
                    options.signal?.removeEventListener('abort', onAbort);
                    logger.info({ err }, 'an init channel could not be opened');
                    reject(err);
                  },
                );
              }
            } else {
              throw new ShmxError('EPROTO', `unexpected frame type ${type} from the server during the handshake`);
            }
          } catch (err) {
            finish(err as Error);
          }
        }
      };
      socket.on('data', onData);

      /** Checks WELCOME, opens the arenas and this side's wake-up, and sends READY. */
      const sendReady = (welcome: Welcome): Readied => {
        const cred = serverCred!;
        const server = { pid: welcome.serverPid, startTime: welcome.serverStartTime };
        if (cred.pid !== server.pid || native.processStartTime(cred.pid) !== server.startTime) {
          throw new ShmxError('ESERVERIDENTITY', `WELCOME claims pid ${server.pid}, the socket peer is ${cred.pid}`);
        }
        const scope = { serverApp, server, clientApp };
        if (
          !belongsTo(welcome.sessionArena, { ...scope, kind: 'sa', session: welcome.session }) ||
          !belongsTo(welcome.appArena, { ...scope, kind: 'aa', session: null })
        ) {
          throw new ShmxError('EPROTO', 'the server named arenas outside this session\'s scope');
        }
        const sessionArena = Arena.open(welcome.sessionArena, {
          lockTimeoutMs: 100, logger, beforeGrow: ceilingGuard('sessionArena.maxBytes'), // quotas.ts
        });
        undo.push(() => sessionArena.close());
        const appArena = acquireAppArena(welcome.appArena, logger);
        undo.push(() => releaseAppArena(appArena));
        const wakeup = createWakeup('client', sessionArena, serverApp, server.pid, welcome.session, logger);
        undo.push(() => wakeup.close());
        socket.write(encodeJsonFrame(FrameType.Ready, { wakeup: wakeup.hello() }));
        return { welcome, cred, server, sessionArena, appArena, wakeup };
      };

      /** The server opened its side: this side's Session, handed the frames that came with the answer. */
      const open = (r: Readied, early: Array<{ type: FrameType; payload: Buffer }>): Session => {
        const { welcome, cred, server, sessionArena, appArena, wakeup } = r;
        const session = new Session(sessionParts({
          side: 'client',
          serverApp,
          clientApp,
          welcome,
          peer: { app: serverApp, pid: cred.pid, uid: cred.uid, gid: cred.gid, startTime: server.startTime },
          socket: socket as Socket,
          reader,
          early,
          sessionArena,
          appArena,
          wakeup,
          peerWakeup: welcome.wakeup,
          objectMode: permissionMode(universe.server(serverApp).permissions),
          maxConsecutiveErrors: options.maxConsecutiveErrors ?? 16,
          channels: channelSettings,
          peerMaxSocketMessage: welcome.maxSocketMessage,
          logger,
          quotas: clientQuotaPolicy(welcome.maxChannels, options.quotas), // quotas.ts
        }));
        session.logger.info({ peer: session.peer }, 'session opened');
        // From now on this process also sweeps the server app's stale objects now and then.
        sweepPeriodically(serverApp, logger, options.sweepIntervalMs);
        return session;
      };
    });
  }
}

/**
 * Whether the process answering at the server's socket may be that server: the universe's uid, gid and
 * executable when it names them; without a uid, the same user as this client (or root) — so that a socket
 * planted by another user is never trusted by default. Returns why not, or null.
 */
function checkServerIdentity(universe: Universe, serverApp: string, cred: PeerCredentials): string | null {
  const expected = universe.server(serverApp);
  const me = process.getuid?.() ?? 0;
  if (expected.uid !== undefined ? cred.uid !== expected.uid : cred.uid !== me && cred.uid !== 0) {
    return `server '${serverApp}' must run as uid ${expected.uid ?? me}, but the socket's peer runs as ${cred.uid}`;
  }
  if (expected.gid !== undefined && cred.gid !== expected.gid) {
    return `server '${serverApp}' must run as gid ${expected.gid}, but the socket's peer runs as ${cred.gid}`;
  }
  if (expected.executablePath !== undefined) {
    let exe: string | null = null;
    try {
      exe = native.executablePath(cred.pid);
    } catch {
      exe = null; // another user's process: not readable, so not verifiable
    }
    if (exe !== expected.executablePath) {
      return `server '${serverApp}' must run ${expected.executablePath}, the socket's peer runs ${exe ?? 'something unreadable'}`;
    }
  }
  return null;
}
