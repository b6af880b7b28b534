/**
 * Session states, their guarded transitions, and the fixed vocabulary of close reasons.
 *
 *   open → closing → closed
 *     ╰───────╰────→ faulted → closed
 *
 * A Session object exists only once open: connecting and handshaking are the life of the connect promise
 * (client) and of a handshake (server, handshake.ts), never states of a Session. `closed` is terminal;
 * `faulted` may only go to `closed`; `closing` only to `closed` or `faulted`. A late callback asking for any
 * other move is refused, so nothing can revive a session.
 */

import type { CloseReason } from '../close-reason.js';

export { CLOSE_REASONS, isCloseReason, type CloseReason } from '../close-reason.js';

/** Where a session is in its life (`connecting` and `handshaking` are never seen by the app). */
export type SessionState = 'open' | 'closing' | 'closed' | 'faulted';

const ALLOWED: Record<SessionState, readonly SessionState[]> = {
  open: ['closing', 'faulted'],
  closing: ['closed', 'faulted'],
  faulted: ['closed'],
  closed: [],
};

/** True when the state machine allows `from → to`. */
export function canTransition(from: SessionState, to: SessionState): boolean {
  return ALLOWED[from].includes(to);
}

/** Reasons that mean the peer is gone or broken: the session is hosed, not closed by agreement. */
export function isFault(reason: CloseReason): boolean {
  return reason === 'peer-crashed' || reason === 'keepalive-timeout' || reason === 'protocol-error';
}
