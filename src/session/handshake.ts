/**
 * The server's side of the handshake: HELLO → checks → the session's objects → WELCOME → READY → checks
 * again → a Session. Each step registers its undo first, so a handshake that fails at any point removes
 * exactly what it made.
 *
 * Handshakes in progress have limits of their own, apart from the sessions: at most `maxHandshakes` at once
 * and `maxHandshakesPerUid` per connecting user, each bounded by `timeoutMs`. When a limit is reached, a new
 * connection displaces the oldest one that has not even said HELLO (of the same user, or of the user with
 * the most) instead of being refused: a flood of idle connections only churns itself and never locks out a
 * client that speaks at once. Open sessions count against `maxSessions` only once open.
 */
import type { Socket } from 'node:net';
import { Arena } from '../arena/index.js';
import type { ChannelSettings } from '../channel/index.js';
import { selfIdentity } from '../cleanup/liveness.js';
import { createWithFreshNonce } from '../cleanup/names.js';
import { removeSegmentsWithPrefix } from '../cleanup/sweep.js';
import { ShmxError } from '../errors.js';
import type { Logger } from '../log.js';
import { peerCredentialsOf } from './peer-socket.js';
import {
  encodeFrame,
  encodeJsonFrame,
  FrameReader,
  FrameType,
  HANDSHAKE_MAX_PAYLOAD,
  parseHello,
  parseReady,
  type Hello,
  type Refusal,
  type Welcome,
} from './protocol.js';
import type { ServerQuotas } from './quotas.js';
import { arenaName, sessionScopePrefix } from './scope-names.js';
import { Session, type KeepAliveOptions } from './session.js';
import { createWakeup, sessionParts } from './session-parts.js';
import { permissionMode, type Universe } from './universe.js';
import { verifyClient, verifyClientAgain, type ClientSnapshot } from './verify-client.js';
import type { ArenaSizing } from './server.js';

/** Limits of handshakes in progress. */
export interface HandshakeLimits {
  /** Handshakes in progress at once (all users). */
  maxHandshakes: number;
  /** Handshakes in progress at once per connecting uid. */
  maxHandshakesPerUid: number;
  /** A handshake must be done within this. */
  timeoutMs: number;
}

/** What a handshake needs from its server. */
export interface HandshakeHost {
  readonly serverApp: string;
  readonly universe: Universe;
  readonly logger: Logger;
  readonly keepAlive: KeepAliveOptions;
  readonly channels: ChannelSettings;
  readonly maxConsecutiveErrors: number;
  readonly sessionArena: ArenaSizing | undefined;
  /** Byte budgets and channel quotas (quotas.ts). */
  readonly quota: ServerQuotas;
  /** Whether one more session may open now (open sessions below maxSessions). */
  roomForSession(): boolean;
  readonly maxSessions: number;
  nextSessionNumber(): number;
  /** The app arena of a client app (created with its first session, kept until the server closes). */
  appArenaFor(clientApp: string, mode: number): Arena;
  /** A session opened: the server takes it from here. */
  opened(session: Session): void;
  /** Sends a refusal and ends the connection. */
  refuse(socket: Socket, refusal: Refusal, clientApp?: string): void;
}

interface Pending {
  socket: Socket;
  uid: number;
  /** performance.now() at accept: how long the handshake took goes to metrics and diagnostics. */
  startedAt: number;
  reader: FrameReader;
  timer: NodeJS.Timeout;
  /** Undo steps of a half-made session, run in reverse on failure. */
  rollback: Array<() => void>;
  onData: (chunk: Buffer) => void;
  onClose: () => void;
  hello?: Hello;
  snapshot?: ClientSnapshot;
  welcome?: Welcome;
  sessionArena?: Arena;
  appArena?: Arena;
  wakeup?: ReturnType<typeof createWakeup>;
  done: boolean;
}

/** The handshakes in progress of one server. */
export class Handshakes {
  /** In arrival order: the first idle one is the oldest. */
  private readonly pending = new Set<Pending>();
  private readonly perUid = new Map<number, number>();

  constructor(private readonly host: HandshakeHost, private readonly limits: HandshakeLimits) {}

  /** Handshakes in progress. */
  get size(): number {
    return this.pending.size;
  }

  /** A new connection: make room for it if needed, then wait for its HELLO. */
  accept(socket: Socket): void {
    let uid: number;
    try {
      uid = peerCredentialsOf(socket).uid;
    } catch {
      socket.destroy(); // gone before we looked
      return;
    }
    if (!this.host.roomForSession()) {
      this.host.refuse(socket, { code: 'ESESSIONLIMIT', reason: `server has ${this.host.maxSessions} sessions` });
      return;
    }
    if ((this.perUid.get(uid) ?? 0) >= this.limits.maxHandshakesPerUid && !this.evictIdle(uid)) {
      this.host.refuse(socket, { code: 'EHANDSHAKELIMIT', reason: `uid ${uid} has ${this.limits.maxHandshakesPerUid} handshakes in progress` });
      return;
    }
    if (this.pending.size >= this.limits.maxHandshakes && !this.evictIdle(this.busiestUid())) {
      this.host.refuse(socket, { code: 'EHANDSHAKELIMIT', reason: `${this.limits.maxHandshakes} handshakes in progress` });
      return;
    }
    const p: Pending = {
      socket,
      uid,
      startedAt: performance.now(),
      reader: new FrameReader(HANDSHAKE_MAX_PAYLOAD),
      rollback: [],
      done: false,
      timer: setTimeout(
        () => this.fail(p, { code: 'ETIMEDOUT', reason: `handshake took over ${this.limits.timeoutMs} ms` }),
        this.limits.timeoutMs,
      ),
      onData: (chunk: Buffer) => this.onData(p, chunk),
      onClose: () => this.fail(p, null),
    };
    this.pending.add(p);
    this.perUid.set(uid, (this.perUid.get(uid) ?? 0) + 1);
    socket.on('data', p.onData);
    socket.on('close', p.onClose);
  }

  /** Ends every handshake in progress with `refusal` (server shutdown). */
  failAll(refusal: Refusal): void {
    for (const p of [...this.pending]) this.fail(p, refusal);
  }

  /** Ends the oldest handshake of `uid` that has not said HELLO; false when there is none. */
  private evictIdle(uid: number | undefined): boolean {
    for (const p of this.pending) {
      if (p.uid === uid && p.hello === undefined) {
        this.fail(p, { code: 'EHANDSHAKELIMIT', reason: 'displaced by newer connections before it said HELLO' });
        return true;
      }
    }
    return false;
  }

  private busiestUid(): number | undefined {
    let best: number | undefined;
    let most = 0;
    for (const [uid, n] of this.perUid) {
      if (n > most) [best, most] = [uid, n];
    }
    return best;
  }

  private onData(p: Pending, chunk: Buffer): void {
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
        else if (type === FrameType.Ready && p.welcome !== undefined) this.onReady(p, parseReady(payload).wakeup, frames.slice(i + 1));
        else throw new ShmxError('EPROTO', `unexpected frame type ${type} during handshake`);
      } catch (err) {
        const code = (err as ShmxError).code;
        const refusal = code === 'EPROTO' || code === 'ESTALEHANDLE' ? 'EPROTO' : code === 'EQUOTA' ? 'EQUOTA' : 'ERESOURCES';
        if (refusal === 'ERESOURCES') this.host.logger.error({ err }, 'could not create session resources');
        this.fail(p, { code: refusal, reason: (err as Error).message });
      }
    }
  }

  private onHello(p: Pending, hello: Hello): void {
    p.hello = hello;
    const { host } = this;
    const verdict = verifyClient(host.universe, host.serverApp, hello, peerCredentialsOf(p.socket));
    if ('refusal' in verdict) {
      this.fail(p, verdict.refusal);
      return;
    }
    p.snapshot = verdict.snapshot;
    if (!host.roomForSession()) {
      this.fail(p, { code: 'ESESSIONLIMIT', reason: `server has ${host.maxSessions} sessions` });
      return;
    }
    const overBudget = host.quota.admit(); // quotas.ts: at its byte budget, no new session
    if (overBudget !== null) {
      this.fail(p, overBudget);
      return;
    }
    const me = selfIdentity();
    const number = host.nextSessionNumber();
    const mode = permissionMode(host.universe.server(host.serverApp).permissions);
    // Reserving pages costs time at open and RAM for the session's life: start small, grow on demand.
    const sizing = host.sessionArena ?? { maxBytes: 256 << 20, initialBytes: 256 << 10, growChunk: 1 << 20 };
    // A fresh nonce, another on EEXIST: a name someone created first never blocks the session. Arena.create
    // leaves nothing behind when it fails; once it succeeded, the scope is ours to remove on failure.
    const sessionArena = createWithFreshNonce('session arena', (nonce) => {
      const scope = sessionScopePrefix(me, host.serverApp, hello.clientApp, number, nonce);
      const arena = Arena.create(arenaName(scope), {
        ...sizing, mode, lockTimeoutMs: 100, logger: host.logger,
        beforeGrow: host.quota.guard('sessionArena.maxBytes'), // quotas.ts
      });
      p.rollback.push(() => removeSegmentsWithPrefix(scope));
      return arena;
    });
    host.quota.track(sessionArena); // quotas.ts
    p.sessionArena = sessionArena;
    p.rollback.push(() => sessionArena.close());
    // Not undone on failure: other sessions of this client app may be using it already; it goes at close().
    p.appArena = host.appArenaFor(hello.clientApp, mode);
    const wakeup = createWakeup('server', sessionArena, host.serverApp, me.pid, number, host.logger);
    p.wakeup = wakeup;
    p.rollback.push(() => wakeup.close());
    p.welcome = {
      session: number,
      serverPid: me.pid,
      serverStartTime: me.startTime,
      sessionArena: sessionArena.name,
      appArena: p.appArena.name,
      keepAliveIntervalMs: host.keepAlive.intervalMs,
      keepAliveTimeoutMs: host.keepAlive.timeoutMs,
      maxChannels: host.quota.channelsPerSession, // quotas.ts: the client checks its opens against it
      wakeup: wakeup.hello(),
      maxSocketMessage: host.channels.maxSocketMessage,
    };
    p.socket.write(encodeJsonFrame(FrameType.Welcome, p.welcome));
  }

  private onReady(p: Pending, peerWakeup: unknown, early: Array<{ type: FrameType; payload: Buffer }>): void {
    const { hello, welcome, socket, snapshot, sessionArena, appArena, wakeup } = p;
    if (hello === undefined || welcome === undefined || snapshot === undefined || sessionArena === undefined ||
      appArena === undefined || wakeup === undefined) {
      throw new ShmxError('EPROTO', 'READY before WELCOME');
    }
    const { host } = this;
    const cred = peerCredentialsOf(socket);
    // The process may have exec'd another binary (or changed user) since HELLO, keeping the socket.
    const refusal = verifyClientAgain(host.universe, hello, cred, snapshot);
    if (refusal !== null) {
      this.fail(p, refusal);
      return;
    }
    if (!host.roomForSession()) {
      this.fail(p, { code: 'ESESSIONLIMIT', reason: `server has ${host.maxSessions} sessions` });
      return;
    }
    // If this throws, the handshake fails and its rollback removes the session arena and the wake-up.
    const session = new Session(sessionParts({
      side: 'server',
      serverApp: host.serverApp,
      clientApp: hello.clientApp,
      welcome,
      peer: { app: hello.clientApp, pid: cred.pid, uid: cred.uid, gid: cred.gid, startTime: hello.startTime },
      socket,
      reader: p.reader,
      early,
      sessionArena,
      appArena,
      wakeup,
      peerWakeup,
      objectMode: permissionMode(host.universe.server(host.serverApp).permissions),
      maxConsecutiveErrors: host.maxConsecutiveErrors,
      channels: host.channels,
      peerMaxSocketMessage: hello.maxSocketMessage,
      logger: host.logger,
      quotas: host.quota.sessionPolicy(), // quotas.ts
      handshakeMs: performance.now() - p.startedAt,
    }));
    // The answer to READY: the open session's first frame, a PING, before anything the app may send. The client
    // resolves its connect on it (a REFUSE instead rejects it), so it never holds a session we did not open.
    socket.write(encodeFrame(FrameType.Ping));
    this.settle(p);
    host.opened(session);
  }

  /** The handshake is over (either way): it no longer counts against the limits. */
  private settle(p: Pending): void {
    p.done = true;
    clearTimeout(p.timer);
    this.pending.delete(p);
    const left = (this.perUid.get(p.uid) ?? 1) - 1;
    if (left > 0) this.perUid.set(p.uid, left);
    else this.perUid.delete(p.uid);
    p.socket.removeListener('data', p.onData);
    p.socket.removeListener('close', p.onClose);
  }

  /** Ends a handshake that did not make it: undo its steps, tell the client why (if it is still there). */
  private fail(p: Pending, refusal: Refusal | null): void {
    if (p.done) return;
    this.settle(p);
    for (const undo of p.rollback.reverse()) {
      try {
        undo();
      } catch (err) {
        this.host.logger.warn({ err }, 'rollback step failed');
      }
    }
    if (refusal === null) {
      p.socket.destroy();
      return;
    }
    this.host.refuse(p.socket, refusal, p.hello?.clientApp);
  }
}
