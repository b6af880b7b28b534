/**
 * Names of a session's and an app's shared objects, derived from one place so that the server creating them,
 * the client checking them and the sweeps agree. Every scope carries a nonce chosen when it is created
 * (see names.ts), so its names cannot be predicted.
 */
import { type ProcessIdentity } from '../cleanup/liveness.js';
import { creatorPrefix, parseResourceName, scopePrefix } from '../cleanup/names.js';

/** The part every arena base name ends in: `<scope prefix>arena`, segments `….arena.h`, `….arena.d0`, … */
const ARENA = 'arena';

/** Prefix (ending in '.') of every object of session `session` between these apps, under `nonce`. */
export function sessionScopePrefix(
  server: ProcessIdentity, serverApp: string, clientApp: string, session: number, nonce: string,
): string {
  return scopePrefix({ kind: 'sa', serverApp, creator: server, clientApp, session, nonce });
}

/** Prefix of every object of the app scope (server app × client app), under `nonce`. */
export function appScopePrefix(server: ProcessIdentity, serverApp: string, clientApp: string, nonce: string): string {
  return scopePrefix({ kind: 'aa', serverApp, creator: server, clientApp, session: null, nonce });
}

/** Base name of the arena of a scope (its segments append `.h`, `.d0`, ...). */
export function arenaName(scope: string): string {
  return scope + ARENA;
}

/** The scope prefix of an arena base name made by {@link arenaName}. */
export function scopeOfArena(name: string): string {
  return name.slice(0, -ARENA.length);
}

/**
 * Prefix, up to the nonce, of the message queues `creator` makes for a session: every one of them starts with
 * it (the check on names the peer hands over, with the parser); each channel's queues add a nonce of their own.
 */
export function queuePrefix(creator: ProcessIdentity, serverApp: string, clientApp: string, session: number): string {
  return creatorPrefix({ kind: 'mq', serverApp, creator, clientApp, session });
}

/** True when `name` is the arena of the given scope, made by the given server process (client-side check of
 *  names a server hands out, so a server cannot point a client at unrelated objects). Any nonce. */
export function belongsTo(
  name: string,
  expected: { kind: 'sa' | 'aa'; serverApp: string; server: ProcessIdentity; clientApp: string; session: number | null },
): boolean {
  const parsed = parseResourceName(`${name}.h`);
  return (
    parsed !== null &&
    parsed.part === `${ARENA}.h` &&
    parsed.kind === expected.kind &&
    parsed.serverApp === expected.serverApp &&
    parsed.creator.pid === expected.server.pid &&
    parsed.creator.startTime === expected.server.startTime &&
    parsed.clientApp === expected.clientApp &&
    parsed.session === expected.session
  );
}
