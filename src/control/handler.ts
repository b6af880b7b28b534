/**
 * The control commands, server side: what `status`, `sessions`, `session`, `arenas`, `resources`, `close`,
 * `sweep` and `metrics` answer, computed from the server's read-only view (target.ts). Results are plain JSON;
 * docs/operations.md shows each one. Commands that change something (`close`, `sweep` without dryRun) are
 * only for the server's own user and root, whatever the socket's mode lets connect.
 */
import { readFileSync } from 'node:fs';
import type { Arena } from '../arena/index.js';
import { selfIdentity } from '../cleanup/liveness.js';
import { listResources, sweepStale } from '../cleanup/sweep.js';
import { isCloseReason } from '../close-reason.js';
import { ShmxError } from '../errors.js';
import type { Logger } from '../log.js';
import { native } from '../native.js';
import type { Session } from '../session/session.js';
import type { ControlHandler, ControlServer } from './control-server.js';
import type { ServerMetrics } from './metrics.js';
import type { ControlRequest } from './protocol.js';
import type { ControlTarget } from './target.js';

/** The package version, read once (src/control and dist/control are both two levels below the package). */
let version: string | undefined;
function packageVersion(): string {
  try {
    version ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    version = 'unknown';
  }
  return version;
}

function arenaUsage(arena: Arena): { reservedBytes: number; inUseBytes: number; freeBytes: number; liveBlocks: number } | null {
  try {
    const s = arena.stats();
    return { reservedBytes: s.reservedBytes, inUseBytes: s.inUseBytes, freeBytes: s.freeBytes, liveBlocks: s.liveBlocks };
  } catch {
    return null; // closed under our feet
  }
}

function peerExecutable(pid: number): string | null {
  try {
    return native.executablePath(pid);
  } catch {
    return null; // another user's process, or gone
  }
}

function sessionSummary(s: Session) {
  const { sessionArena, appArena } = s.inspect();
  return {
    id: s.id,
    clientApp: s.peer.app,
    peer: { pid: s.peer.pid, uid: s.peer.uid, gid: s.peer.gid, exe: peerExecutable(s.peer.pid) },
    state: s.state,
    openedAt: new Date(s.openedAt).toISOString(),
    counters: { ...s.counters },
    arenas: { session: arenaUsage(sessionArena), app: arenaUsage(appArena) },
    channels: s.channels.length,
  };
}

function sessionDetails(s: Session) {
  return {
    ...sessionSummary(s),
    arenaNames: { session: s.inspect().sessionArena.name, app: s.inspect().appArena.name },
    channels: s.channels.map((c) => ({
      id: c.id,
      transport: c.transport,
      init: c.init,
      spin: c.spin,
      messageViews: c.messageViews,
      metadata: c.metadata ?? null,
      counters: { ...c.counters },
      ...c.inspect(),
    })),
  };
}

/** Builds the handler of one server's control socket. */
export function controlHandler(target: ControlTarget, metrics: ServerMetrics | undefined, control: () => ControlServer | undefined, logger: Logger): ControlHandler {
  const find = (args: Record<string, unknown>): Session => {
    const id = args['session'];
    if (typeof id !== 'string') throw new ShmxError('EBADREQUEST', 'args.session must be a session id string');
    const s = target.openSessions.find((x) => x.id === id);
    if (s === undefined) throw new ShmxError('ENOSESSION', `no open session '${id.slice(0, 128)}' on ${target.serverApp}`);
    return s;
  };
  const mayChange = (caller: { uid: number }, what: string) => {
    const me = process.getuid?.() ?? 0;
    if (caller.uid !== me && caller.uid !== 0) throw new ShmxError('EPERM', `only uid ${me} or root may ${what}`);
  };

  const commands: Record<ControlRequest['command'], (args: Record<string, unknown>, caller: { uid: number; pid: number }) => unknown> = {
    status: () => {
      const info = target.inspect();
      const c = control();
      return {
        app: target.serverApp,
        pid: process.pid,
        startedAt: new Date(info.startedAt).toISOString(),
        uptimeMs: Date.now() - info.startedAt,
        version: packageVersion(),
        node: process.version,
        socket: target.socketPath,
        controlSocket: c?.path ?? null,
        runDirectory: info.runDirectory,
        permissions: info.permissions,
        limits: info.limits,
        quotas: info.quotas ?? null,
        counters: { ...target.metrics, pendingHandshakes: info.pendingHandshakes },
        control: c === undefined ? null : { connections: c.stat('connections'), ...c.limits, cutOffs: c.stat('cutOffs'), timeouts: c.stat('timeouts'), throttles: c.stat('throttles') },
      };
    },
    sessions: () => target.openSessions.map(sessionSummary),
    session: (args) => sessionDetails(find(args)),
    arenas: () => {
      const out: unknown[] = [];
      for (const [clientApp, arena] of target.inspect().appArenas) {
        out.push({ name: arena.name, scope: 'app', clientApp, session: null, ...(arenaUsage(arena) ?? {}) });
      }
      for (const s of target.openSessions) {
        const arena = s.inspect().sessionArena;
        out.push({ name: arena.name, scope: 'session', clientApp: s.peer.app, session: s.id, ...(arenaUsage(arena) ?? {}) });
      }
      return out;
    },
    resources: () => {
      const me = selfIdentity();
      const objects = listResources(target.serverApp)
        .filter((r) => r.parsed.creator.pid === me.pid && r.parsed.creator.startTime === me.startTime)
        .map((r) => ({ type: r.type, kind: r.parsed.kind, name: r.name, bytes: r.bytes ?? null }));
      return { sockets: [target.socketPath, control()?.path].filter((p) => p !== undefined), objects };
    },
    close: async (args, caller) => {
      const s = find(args);
      const reason = args['reason'] ?? 'local-close';
      if (!isCloseReason(reason)) throw new ShmxError('EBADREQUEST', `args.reason must be a close reason, got ${JSON.stringify(reason).slice(0, 64)}`);
      mayChange(caller, 'close a session');
      logger.info({ session: s.id, reason, by: caller }, 'closing a session on request of the control socket');
      await s.close(reason);
      return { session: s.id, reason, state: s.state };
    },
    sweep: (args, caller) => {
      const dryRun = args['dryRun'] ?? false;
      if (typeof dryRun !== 'boolean') throw new ShmxError('EBADREQUEST', 'args.dryRun must be a boolean');
      if (!dryRun) mayChange(caller, 'sweep');
      const report = sweepStale({ serverApp: target.serverApp, dryRun, logger });
      return {
        dryRun,
        removed: report.removed.map((r) => ({ type: r.type, name: r.name })),
        kept: report.kept,
        failed: report.failed.map((r) => ({ type: r.type, name: r.name, code: r.code, message: r.message })),
      };
    },
    metrics: async () => {
      if (metrics === undefined) throw new ShmxError('ENOMETRICS', 'this server was started with metrics: false');
      return metrics.text();
    },
  };
  return (request, caller) => commands[request.command](request.args, caller);
}
