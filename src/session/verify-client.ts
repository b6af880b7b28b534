/**
 * The server's identity checks on a client: at HELLO, the claim must match what the kernel says about the
 * connecting process (SO_PEERCRED) and the universe must accept that app as that user and executable; at
 * READY, just before the session opens, the same process must still be there as the same user and executable
 * (a process may exec another binary, or change its user, after HELLO while keeping the socket).
 */
import { readFileSync } from 'node:fs';
import { native, type PeerCredentials } from '../native.js';
import { PROTOCOL_VERSION, type Hello, type Refusal } from './protocol.js';
import type { AppDefinition, Universe } from './universe.js';

/** What the server saw of the client process at HELLO, compared again at READY. */
export interface ClientSnapshot {
  /** readlink(/proc/<pid>/exe), null when unreadable or gone. */
  exe: string | null;
}

/** Returns why the client is refused, or null when it may open a session (and what was seen of it). */
export function verifyClient(
  universe: Universe, serverApp: string, hello: Hello, cred: PeerCredentials,
): { refusal: Refusal } | { snapshot: ClientSnapshot } {
  const refuse = (code: string, reason: string) => ({ refusal: { code, reason } });
  if (hello.protocol !== PROTOCOL_VERSION) {
    return refuse('EPROTOVERSION', `protocol ${hello.protocol} is not ${PROTOCOL_VERSION}`);
  }
  if (hello.serverApp !== serverApp) return refuse('EWRONGSERVER', `this is server app '${serverApp}', not '${hello.serverApp}'`);
  const server = universe.server(serverApp);
  if (!server.acceptedClients.includes(hello.clientApp)) {
    return refuse('EAPPNOTACCEPTED', `app '${hello.clientApp}' is not accepted by '${serverApp}'`);
  }
  if (cred.pid !== hello.pid) return refuse('ECREDENTIALS', `claimed pid ${hello.pid} but the socket peer is pid ${cred.pid}`);
  const app = universe.app(hello.clientApp);
  const exe = executableOf(cred.pid);
  const refusal = checkProcess(app, hello, cred, { uid: cred.uid, gid: cred.gid }, exe);
  return refusal === null ? { snapshot: { exe } } : { refusal };
}

/**
 * Checks again, when READY arrives, that the process behind the socket is the one verified at HELLO: same
 * start time (not dead and replaced), still running as the uid and gid the kernel recorded at connect, and the
 * same executable as at HELLO (an exec in between is refused even when the universe names no executable).
 */
export function verifyClientAgain(
  universe: Universe, hello: Hello, cred: PeerCredentials, before: ClientSnapshot,
): Refusal | null {
  const app = universe.app(hello.clientApp);
  const ids = effectiveIds(cred.pid);
  if (ids === null) return { code: 'ECREDENTIALS', reason: `pid ${cred.pid} is gone` };
  if (ids.uid !== cred.uid) {
    return { code: 'EUIDMISMATCH', reason: `pid ${cred.pid} now runs as uid ${ids.uid}, it connected as ${cred.uid}` };
  }
  if (ids.gid !== cred.gid) {
    return { code: 'EGIDMISMATCH', reason: `pid ${cred.pid} now runs as gid ${ids.gid}, it connected as ${cred.gid}` };
  }
  const exe = executableOf(cred.pid);
  if (exe !== before.exe) {
    return { code: 'EEXECUTABLE', reason: `pid ${cred.pid} ran ${before.exe} at HELLO and runs ${exe} at READY` };
  }
  return checkProcess(app, hello, cred, ids, exe);
}

/** The checks made at HELLO and repeated at READY. */
function checkProcess(
  app: AppDefinition, hello: Hello, cred: PeerCredentials, ids: { uid: number; gid: number }, exe: string | null,
): Refusal | null {
  if (native.processStartTime(cred.pid) !== hello.startTime) {
    return { code: 'ECREDENTIALS', reason: `start time of pid ${cred.pid} does not match the claim` };
  }
  if (app.uid !== undefined && app.uid !== ids.uid) {
    return { code: 'EUIDMISMATCH', reason: `app '${app.name}' must run as uid ${app.uid}, peer runs as ${ids.uid}` };
  }
  if (app.gid !== undefined && app.gid !== ids.gid) {
    return { code: 'EGIDMISMATCH', reason: `app '${app.name}' must run as gid ${app.gid}, peer runs as ${ids.gid}` };
  }
  if (app.executablePath !== undefined && exe !== app.executablePath) {
    return { code: 'EEXECUTABLE', reason: `app '${app.name}' must run ${app.executablePath}, peer runs ${exe}` };
  }
  return null;
}

function executableOf(pid: number): string | null {
  try {
    return native.executablePath(pid);
  } catch {
    return null; // another user's process: not readable, so not verifiable
  }
}

/** Effective uid and gid of a process now (/proc/<pid>/status), null when it is gone. */
function effectiveIds(pid: number): { uid: number; gid: number } | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const id = (key: string) => Number(new RegExp(`^${key}:\\s+\\d+\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  const uid = id('Uid');
  const gid = id('Gid');
  return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
}
