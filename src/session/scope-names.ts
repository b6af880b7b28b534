/**
 * Names of a session's and an app's shared objects, derived from one place so that the server creating them,
 * the client checking them and the sweeps agree.
 */
import { type ProcessIdentity } from '../cleanup/liveness.js';
import { parseResourceName, scopePrefix } from '../cleanup/names.js';

/** Prefix (ending in '.') of every object of session `session` between these apps. */
export function sessionScopePrefix(server: ProcessIdentity, serverApp: string, clientApp: string, session: number) {
  return scopePrefix({ kind: 'sa', serverApp, creator: server, clientApp, session });
}

/** Base name of a session's arena (its segments append `.h`, `.d0`, ...). */
export function sessionArenaName(server: ProcessIdentity, serverApp: string, clientApp: string, session: number) {
  return sessionScopePrefix(server, serverApp, clientApp, session) + 'arena';
}

/** Prefix of every object of the app scope (server app × client app). */
export function appScopePrefix(server: ProcessIdentity, serverApp: string, clientApp: string) {
  return scopePrefix({ kind: 'aa', serverApp, creator: server, clientApp, session: null });
}

/** Base name of the app arena shared by all sessions of `clientApp` with this server. */
export function appArenaName(server: ProcessIdentity, serverApp: string, clientApp: string) {
  return appScopePrefix(server, serverApp, clientApp) + 'arena';
}

/** True when `name` is an object of the given scope, made by the given server process (client-side check of
 *  names a server hands out, so a server cannot point a client at unrelated objects). */
export function belongsTo(
  name: string,
  expected: { kind: 'sa' | 'aa'; serverApp: string; server: ProcessIdentity; clientApp: string; session: number | null },
): boolean {
  const parsed = parseResourceName(`${name}.h`);
  return (
    parsed !== null &&
    parsed.kind === expected.kind &&
    parsed.serverApp === expected.serverApp &&
    parsed.creator.pid === expected.server.pid &&
    parsed.creator.startTime === expected.server.startTime &&
    parsed.clientApp === expected.clientApp &&
    parsed.session === expected.session
  );
}
