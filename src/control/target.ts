/**
 * What the control socket and the metrics may see of a server: a narrow, read-only view that SessionServer
 * implements (types only — the control layer never imports the session layer's code).
 */
import type { Arena } from '../arena/index.js';
import type { Session } from '../session/session.js';
import type { SessionServerMetrics } from '../session/server.js';

/** Facts of a server beyond its public properties, for operators. */
export interface ServerInspection {
  /** When the server started (ms since the epoch). */
  startedAt: number;
  /** Connections in their handshake now. */
  pendingHandshakes: number;
  /** App arenas by client app. */
  appArenas: ReadonlyMap<string, Arena>;
  runDirectory: string;
  permissions: string;
  /** The server's limits as configured (defaults resolved). */
  limits: Record<string, unknown>;
  /** The server's quotas, when it has any. */
  quotas: unknown;
}

export interface ControlTarget {
  readonly serverApp: string;
  readonly socketPath: string;
  readonly metrics: SessionServerMetrics;
  readonly openSessions: readonly Session[];
  inspect(): ServerInspection;
}
