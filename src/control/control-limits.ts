/**
 * The limits of a control socket and their defaults: the SessionServer checks them before any system call, the
 * control thread enforces them.
 */
import { MAX_REQUEST_BYTES } from './protocol.js';

/** Limits of the control socket. Every field is optional in {@link ControlSocketOptions}. */
export interface ControlLimits {
  /** A connection that sends no request for this long is closed (ETIMEDOUT). Default 60 000 ms. */
  idleTimeoutMs: number;
  /** Closed after this many error responses in a row (ECUTOFF). Default 8. */
  maxConsecutiveErrors: number;
  /** Closed after this many error responses in all (ECUTOFF). Default 64. */
  maxErrors: number;
  /** Connections at once; one more gets ETOOMANYCONNECTIONS and is closed. Default 16. */
  maxConnections: number;
  /** Requests of one connection being answered at once; more get EBUSY. Default 64. */
  maxInFlight: number;
  /** Longest request line in bytes. Default 64 KiB. */
  maxRequestBytes: number;
  /**
   * Time the control thread may spend working per 100 ms window. Past it, every control connection is paused
   * (and new ones dropped) until the window ends, so a flood of control traffic cannot take a core from the
   * sessions. Default 5 ms (a twentieth of a core at most).
   */
  busyBudgetMs: number;
}

/** The `control` option of a SessionServer: `false` turns the control socket off. */
export interface ControlSocketOptions extends Partial<ControlLimits> {
  /** Mode bits of the socket file (default: the server app's permission level, as its master socket). */
  mode?: number;
}

/** Fills in the defaults; RangeError for a limit that is not a positive integer. */
export function resolveControlLimits(options: ControlSocketOptions = {}): ControlLimits {
  const positive = (v: number | undefined, name: string, fallback: number) => {
    if (v === undefined) return fallback;
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`control.${name} must be a positive integer`);
    return v;
  };
  return {
    idleTimeoutMs: positive(options.idleTimeoutMs, 'idleTimeoutMs', 60_000),
    maxConsecutiveErrors: positive(options.maxConsecutiveErrors, 'maxConsecutiveErrors', 8),
    maxErrors: positive(options.maxErrors, 'maxErrors', 64),
    maxConnections: positive(options.maxConnections, 'maxConnections', 16),
    maxInFlight: positive(options.maxInFlight, 'maxInFlight', 64),
    maxRequestBytes: positive(options.maxRequestBytes, 'maxRequestBytes', MAX_REQUEST_BYTES),
    busyBudgetMs: positive(options.busyBudgetMs, 'busyBudgetMs', 5),
  };
}
