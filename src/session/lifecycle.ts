/**
 * Session states, their guarded transitions, and the fixed vocabulary of close reasons.
 *
 *   connecting → handshaking → open → closing → closed
 *          ╰──────────╰──────────╰────────╰────→ faulted → closed
 *
 * `closed` is terminal; `faulted` may only go to `closed`; `closing` only to `closed` or `faulted`. A late
 * callback asking for any other move is refused, so nothing can revive a session.
 */

export type SessionState = 'connecting' | 'handshaking' | 'open' | 'closing' | 'closed' | 'faulted';

const ALLOWED: Record<SessionState, readonly SessionState[]> = {
  connecting: ['handshaking', 'closing', 'faulted', 'closed'],
  handshaking: ['open', 'closing', 'faulted', 'closed'],
  open: ['closing', 'faulted'],
  closing: ['closed', 'faulted'],
  faulted: ['closed'],
  closed: [],
};

/** True when the state machine allows `from → to`. */
export function canTransition(from: SessionState, to: SessionState): boolean {
  return ALLOWED[from].includes(to);
}

/** Why a session (or channel) closed. */
export type CloseReason =
  /** This side called close(). */
  | 'local-close'
  /** The peer closed gracefully. */
  | 'peer-closed'
  /** The peer's end of the master channel vanished without a goodbye (EOF, ECONNRESET, EPIPE). */
  | 'peer-crashed'
  /** Nothing heard from the peer for longer than the idle timeout (stopped or hung). */
  | 'keepalive-timeout'
  /** The server is shutting down. */
  | 'server-shutdown'
  /** The peer sent something malformed, or shared memory was found corrupt. */
  | 'protocol-error'
  /** A limit was exceeded (too many consecutive errors, resources). */
  | 'limit-exceeded';

export const CLOSE_REASONS: readonly CloseReason[] = [
  'local-close',
  'peer-closed',
  'peer-crashed',
  'keepalive-timeout',
  'server-shutdown',
  'protocol-error',
  'limit-exceeded',
];

/** Reasons that mean the peer is gone or broken: the session is hosed, not closed by agreement. */
export function isFault(reason: CloseReason): boolean {
  return reason === 'peer-crashed' || reason === 'keepalive-timeout' || reason === 'protocol-error';
}

export function isCloseReason(value: unknown): value is CloseReason {
  return typeof value === 'string' && (CLOSE_REASONS as readonly string[]).includes(value);
}
