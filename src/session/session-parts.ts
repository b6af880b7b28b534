/**
 * What both sides of a handshake make the same way: this side's wake-up (before WELCOME or READY, which carry
 * its facts) and the {@link SessionParts} a Session is built from — one place for the server and the client.
 */
import { randomBytes } from 'node:crypto';
import type { Arena } from '../arena/index.js';
import { Wakeup } from '../channel/index.js';
import type { Logger } from '../log.js';
import type { Welcome } from './protocol.js';
import { scopeOfArena } from './scope-names.js';
import type { SessionParts } from './session.js';

/**
 * Name of one side's doorbell: `shmx.bell.<serverApp>.<serverPid>.<session>.<side>.<random>`, or without the
 * random part the prefix the peer's bell name must start with. The random part keeps another local user from
 * squatting a predictable name.
 */
function bellName(serverApp: string, serverPid: number, session: number, side: 'server' | 'client', token: boolean): string {
  const prefix = `shmx.bell.${serverApp}.${serverPid}.${session}.${side}.`;
  return token ? prefix + randomBytes(6).toString('hex') : prefix;
}

/** This side's wake-up for a session: a control block in the session arena and a doorbell. Close it if the
 *  handshake fails; once a Session is built, its mux owns it. */
export function createWakeup(
  side: 'server' | 'client', sessionArena: Arena, serverApp: string, serverPid: number, session: number, logger: Logger,
): Wakeup {
  const peerSide = side === 'server' ? 'client' : 'server';
  return new Wakeup(sessionArena, bellName(serverApp, serverPid, session, side, true),
    bellName(serverApp, serverPid, session, peerSide, false), logger);
}

/** What a side knows when the handshake is done: most parts as they are, plus what the rest derive from. */
export type HandshakeOutcome = Pick<SessionParts,
  'side' | 'serverApp' | 'peer' | 'socket' | 'reader' | 'early' | 'sessionArena' | 'appArena' | 'wakeup' |
  'peerWakeup' | 'objectMode' | 'maxConsecutiveErrors' | 'channels' | 'peerMaxSocketMessage' | 'logger' | 'quotas' |
  'handshakeMs'> & {
  clientApp: string;
  /** The WELCOME the server sent (the client received): session number, server, arenas, keep-alive. */
  welcome: Welcome;
};

/** The parts of a Session, the same way on both sides. */
export function sessionParts(o: HandshakeOutcome): SessionParts {
  return {
    side: o.side,
    number: o.welcome.session,
    serverApp: o.serverApp,
    localApp: o.side === 'server' ? o.serverApp : o.clientApp,
    serverPid: o.welcome.serverPid,
    peer: o.peer,
    socket: o.socket,
    reader: o.reader,
    early: o.early,
    sessionArena: o.sessionArena,
    appArena: o.appArena,
    // The client holds its use of the process-wide app-arena instance; the server keeps its own until close().
    ownsAppArena: o.side === 'client',
    scopePrefix: scopeOfArena(o.welcome.sessionArena),
    objectMode: o.objectMode,
    keepAlive: { intervalMs: o.welcome.keepAliveIntervalMs, timeoutMs: o.welcome.keepAliveTimeoutMs },
    maxConsecutiveErrors: o.maxConsecutiveErrors,
    channels: o.channels,
    peerMaxSocketMessage: o.peerMaxSocketMessage,
    logger: o.logger,
    wakeup: o.wakeup,
    peerWakeup: o.peerWakeup,
    quotas: o.quotas,
    handshakeMs: o.handshakeMs,
  };
}
