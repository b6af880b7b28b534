/**
 * Session states, their guarded transitions, and the fixed vocabulary of close reasons.
 *
 *   connecting → handshaking → open → closing → closed
 *          ╰──────────╰──────────╰────────╰────→ faulted → closed
 *
 * `closed` is terminal; `faulted` may only go to `closed`; `closing` only to `closed` or `faulted`. A late
 * callback asking for any other move is refused, so nothing can revive a session.
 */

import type { CloseReason } from '../close-reason.js';

export { CLOSE_REASONS, isCloseReason, type CloseReason } from '../close-reason.js';

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

/** Reasons that mean the peer is gone or broken: the session is hosed, not closed by agreement. */
export function isFault(reason: CloseReason): boolean {
  return reason === 'peer-crashed' || reason === 'keepalive-timeout' || reason === 'protocol-error';
}
