/**
 * The fixed vocabulary of reasons a session or a channel closes. Shared by every layer.
 */

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
  /** A limit was exceeded (too many consecutive errors; a peer past a quota it knew — src/session/quotas.ts). */
  | 'limit-exceeded';

/** Every close reason, in a fixed order (metrics label them). */
export const CLOSE_REASONS: readonly CloseReason[] = [
  'local-close',
  'peer-closed',
  'peer-crashed',
  'keepalive-timeout',
  'server-shutdown',
  'protocol-error',
  'limit-exceeded',
];

export function isCloseReason(value: unknown): value is CloseReason {
  return typeof value === 'string' && (CLOSE_REASONS as readonly string[]).includes(value);
}
