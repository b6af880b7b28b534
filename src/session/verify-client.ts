/**
 * The server's identity checks on a HELLO: the claim must match what the kernel says about the connecting
 * process (SO_PEERCRED), and the universe must accept that app as that user and executable.
 */
import { native, type PeerCredentials } from '../native.js';
import { PROTOCOL_VERSION, type Hello, type Refusal } from './protocol.js';
import type { Universe } from './universe.js';

/** Returns why the client is refused, or null when it may open a session. */
export function verifyClient(universe: Universe, serverApp: string, hello: Hello, cred: PeerCredentials): Refusal | null {
  if (hello.protocol !== PROTOCOL_VERSION) {
    return { code: 'EPROTOVERSION', reason: `protocol ${hello.protocol} is not ${PROTOCOL_VERSION}` };
  }
  if (hello.serverApp !== serverApp) {
    return { code: 'EWRONGSERVER', reason: `this is server app '${serverApp}', not '${hello.serverApp}'` };
  }
  const server = universe.server(serverApp);
  if (!server.acceptedClients.includes(hello.clientApp)) {
    return { code: 'EAPPNOTACCEPTED', reason: `app '${hello.clientApp}' is not accepted by '${serverApp}'` };
  }
  if (cred.pid !== hello.pid) {
    return { code: 'ECREDENTIALS', reason: `claimed pid ${hello.pid} but the socket peer is pid ${cred.pid}` };
  }
  const startTime = native.processStartTime(cred.pid);
  if (startTime !== hello.startTime) {
    return { code: 'ECREDENTIALS', reason: `start time of pid ${cred.pid} does not match the claim` };
  }
  const app = universe.app(hello.clientApp);
  if (app.uid !== undefined && app.uid !== cred.uid) {
    return { code: 'EUIDMISMATCH', reason: `app '${app.name}' must run as uid ${app.uid}, peer runs as ${cred.uid}` };
  }
  if (app.gid !== undefined && app.gid !== cred.gid) {
    return { code: 'EGIDMISMATCH', reason: `app '${app.name}' must run as gid ${app.gid}, peer runs as ${cred.gid}` };
  }
  if (app.executablePath !== undefined) {
    let exe: string | null = null;
    try {
      exe = native.executablePath(cred.pid);
    } catch {
      exe = null;
    }
    if (exe !== app.executablePath) {
      return { code: 'EEXECUTABLE', reason: `app '${app.name}' must run ${app.executablePath}, peer runs ${exe}` };
    }
  }
  return null;
}
