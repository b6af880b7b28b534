/**
 * Commands that ask a running server through its control socket: status, sessions, session, arenas,
 * resources, close, metrics. Each prints a readable view (or the server's JSON with --json).
 */
import { ControlClient, controlSocketPath, hasCode, type ControlCommand } from '../index.js';
import { bytes, duration, table } from './format.js';
import { EXIT, serverDefaults, type Invocation } from './usage.js';

/** A command's failure with its exit code and the line to print. */
export class CommandFailed extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/** Connects to `serverApp`'s control socket; a clear CommandFailed (exit 3) when no server of that app runs. */
export async function connectTo(inv: Invocation): Promise<ControlClient> {
  const serverApp = inv.args['server-app']!;
  const runDir = (inv.flags['run-dir'] as string | undefined) ?? serverDefaults(serverApp).runDirectory;
  const path = controlSocketPath(runDir, serverApp);
  try {
    return await ControlClient.connect(path);
  } catch (err) {
    if (hasCode(err, 'ENOSERVER')) {
      throw new CommandFailed(`no server of app '${serverApp}' is running (nothing listens on ${path}; started with control: false, or another --run-dir?)`, EXIT.noServer);
    }
    if (hasCode(err, 'EACCES')) throw new CommandFailed(`not allowed to connect to ${path} (the server's permission level)`, EXIT.failed);
    throw new CommandFailed(`cannot reach the server of '${serverApp}': ${(err as Error).message}`, EXIT.failed);
  }
}

/** Sends one command; a server error becomes CommandFailed (exit 1) with its code. */
export async function ask(client: ControlClient, command: ControlCommand, args?: Record<string, unknown>): Promise<any> {
  try {
    return await client.request(command, args);
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new CommandFailed(`${command} failed: ${e.code ?? 'error'}: ${e.message}`, EXIT.failed);
  }
}

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

function printStatus(s: any): void {
  const closed = Object.entries(s.counters.closedByReason as Record<string, number>).filter(([, n]) => n > 0);
  const refused = Object.entries(s.counters.refusedByReason as Record<string, number>);
  const l = s.limits;
  out([
    `server    ${s.app} (pid ${s.pid}), up ${duration(s.uptimeMs)}, shmx ${s.version}, node ${s.node}`,
    `sockets   ${s.socket}  control ${s.controlSocket}  (permissions ${s.permissions})`,
    `sessions  ${s.counters.active} open, ${s.counters.opened} opened, ${s.counters.faulted} faulted, ${s.counters.pendingHandshakes} in handshake`,
    `closed    ${closed.length === 0 ? '-' : closed.map(([r, n]) => `${r} ${n}`).join(', ')}`,
    `refused   ${refused.length === 0 ? '-' : refused.map(([c, n]) => `${c} ${n}`).join(', ')}`,
    `limits    maxSessions ${l.maxSessions}, handshake ${l.handshakeTimeoutMs} ms, shutdown ${l.shutdownTimeoutMs} ms, ` +
      `keep-alive ${l.keepAlive.intervalMs}/${l.keepAlive.timeoutMs} ms, sweep every ${l.sweepIntervalMs} ms`,
    `quotas    ${s.quotas === null ? '-' : JSON.stringify(s.quotas)}`,
    `control   ${s.control.connections} of ${s.control.maxConnections} connections, idle timeout ${s.control.idleTimeoutMs} ms, ` +
      `cut off after ${s.control.maxConsecutiveErrors} consecutive / ${s.control.maxErrors} errors`,
  ].join('\n'));
}

function arenaCell(a: { inUseBytes: number; reservedBytes: number } | null): string {
  return a === null ? '-' : `${bytes(a.inUseBytes)} / ${bytes(a.reservedBytes)}`;
}

function printSessions(list: any[]): void {
  if (list.length === 0) return out('no open sessions');
  out(table(
    ['SESSION', 'CLIENT', 'PID', 'UID', 'STATE', 'OPEN FOR', 'CH', 'MSG IN', 'MSG OUT', 'BYTES IN', 'BYTES OUT', 'SESSION ARENA USED/RESERVED'],
    list.map((s) => [s.id, s.clientApp, s.peer.pid, s.peer.uid, s.state, duration(Date.now() - Date.parse(s.openedAt)), s.channels,
      s.counters.messagesIn, s.counters.messagesOut, bytes(s.counters.bytesIn), bytes(s.counters.bytesOut), arenaCell(s.arenas.session)]),
    [2, 3, 6, 7, 8, 9, 10],
  ));
}

function printSession(s: any): void {
  out([
    `session   ${s.id} (${s.state}), open for ${duration(Date.now() - Date.parse(s.openedAt))}`,
    `peer      ${s.clientApp}: pid ${s.peer.pid}, uid ${s.peer.uid}, gid ${s.peer.gid}, ${s.peer.exe ?? '(executable not readable)'}`,
    `traffic   ${s.counters.messagesIn} in / ${s.counters.messagesOut} out messages, ${bytes(s.counters.bytesIn)} in / ${bytes(s.counters.bytesOut)} out, ` +
      `${s.counters.errors} errors`,
    `arenas    session ${arenaCell(s.arenas.session)} (${s.arenaNames.session})`,
    `          app     ${arenaCell(s.arenas.app)} (${s.arenaNames.app})`,
    '',
  ].join('\n'));
  if (s.channels.length === 0) return out('no open channels');
  out(table(
    ['CHANNEL', 'TRANSPORT', 'SPIN', 'MSG IN', 'MSG OUT', 'BYTES IN', 'BYTES OUT', 'RING OUT/IN', 'PENDING', 'QUEUED'],
    s.channels.map((c: any) => [c.id, c.transport, c.spin ? 'yes' : 'no', c.counters.messagesIn, c.counters.messagesOut,
      bytes(c.counters.bytesIn), bytes(c.counters.bytesOut),
      c.ringFill === undefined ? '-' : `${Math.round(c.ringFill.out * 100)}% / ${Math.round(c.ringFill.in * 100)}%`,
      c.pendingRequests, c.queuedSends]),
    [0, 3, 4, 5, 6, 8, 9],
  ));
}

function printArenas(list: any[]): void {
  out(table(['ARENA', 'SCOPE', 'CLIENT', 'SESSION', 'RESERVED', 'USED', 'FREE', 'BLOCKS'],
    list.map((a) => [a.name, a.scope, a.clientApp, a.session ?? '-', bytes(a.reservedBytes), bytes(a.inUseBytes), bytes(a.freeBytes), a.liveBlocks ?? '-']),
    [4, 5, 6, 7]));
}

function printResources(r: any): void {
  for (const s of r.sockets) out(`socket  ${s}`);
  out(table(['TYPE', 'KIND', 'BYTES', 'NAME'], r.objects.map((o: any) => [o.type, o.kind, o.bytes ?? '-', o.name]), [2]));
  out(`${r.objects.length} object(s)`);
}

/** Runs one of the commands that ask a server. */
export async function remote(inv: Invocation): Promise<number> {
  const client = await connectTo(inv);
  try {
    const json = inv.flags.json === true;
    const show = (value: unknown, print: (v: any) => void) => (json ? out(JSON.stringify(value, null, 2)) : print(value));
    switch (inv.command) {
      case 'status':
        show(await ask(client, 'status'), printStatus);
        break;
      case 'sessions':
        show(await ask(client, 'sessions'), printSessions);
        break;
      case 'session':
        show(await ask(client, 'session', { session: inv.args['session-id'] }), printSession);
        break;
      case 'arenas':
        show(await ask(client, 'arenas'), printArenas);
        break;
      case 'resources':
        show(await ask(client, 'resources'), printResources);
        break;
      case 'close': {
        const args: Record<string, unknown> = { session: inv.args['session-id'] };
        if (inv.flags.reason !== undefined) args['reason'] = inv.flags.reason;
        show(await ask(client, 'close', args), (r) => out(`closed ${r.session} (${r.reason})`));
        break;
      }
      case 'metrics':
        process.stdout.write((await ask(client, 'metrics')).text);
        break;
      default:
        throw new Error(`not a remote command: ${inv.command}`);
    }
    return EXIT.ok;
  } finally {
    client.close();
  }
}
