/**
 * One error family for the whole library. Every error shmx raises on purpose is a {@link ShmxError} with a
 * stable `code`; errors from system calls keep the kernel's errno name as their code.
 */

/**
 * Codes shmx raises itself (system-call failures use errno names such as `ENOENT`; timeouts `ETIMEDOUT`,
 * aborts `ABORT_ERR`).
 */
export type ShmxCode =
  // connecting
  | 'ENOSERVER'
  | 'ESERVERRUNNING'
  | 'ESERVERIDENTITY'
  | 'EUNSAFEDIR'
  // refusals a server sends (also counted in its metrics.refusedByReason)
  | 'ESESSIONLIMIT'
  | 'EHANDSHAKELIMIT'
  | 'EAPPNOTACCEPTED'
  | 'EWRONGSERVER'
  | 'EPROTOVERSION'
  | 'ECREDENTIALS'
  | 'EUIDMISMATCH'
  | 'EGIDMISMATCH'
  | 'EEXECUTABLE'
  | 'ERESOURCES'
  | 'ESHUTDOWN'
  // sessions and channels
  | 'EHOSED'
  | 'EREFUSED'
  | 'EPROTO'
  | 'ECLOSED'
  | 'ECHANNELCORRUPT'
  /** A listener in a Worker (WorkerChannel) threw or rejected; counted as an error of the channel's session. */
  | 'ELISTENER'
  /** A channel's send queue is at `channels.sendQueueLimit`: the producer ignored `send() === false`. */
  | 'ESENDQUEUEFULL'
  // arenas
  | 'EARENAFULL'
  | 'EARENACORRUPT'
  | 'EARENABUSY'
  | 'EARENASLOTS'
  | 'ESTALEHANDLE'
  // quotas (QuotaError: which quota, its limit)
  | 'EQUOTA'
  /** A segment (arena header or data, ledger) was shrunk by another process under our mapping. */
  | 'ESEGMENTTRUNCATED'
  // native
  | 'ENOMQUEUEFS'
  | 'ENOADDON';

/** Base class of every error shmx raises on purpose. */
export class ShmxError extends Error {
  /** Stable machine-readable code (`EHOSED`, `EARENAFULL`, an errno name, ...). */
  readonly code: string;
  /** The kernel object or shmx object the error is about, when there is one. */
  readonly resource: string | undefined;

  constructor(code: ShmxCode | string, message: string, options: { resource?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ShmxError';
    this.code = code;
    this.resource = options.resource;
  }
}

/** A deadline passed (handshake, request, shutdown). Distinct from {@link AbortError}. */
export class TimeoutError extends ShmxError {
  constructor(message: string, options: { resource?: string } = {}) {
    super('ETIMEDOUT', message, options);
    this.name = 'TimeoutError';
  }
}

/** The caller's AbortSignal fired. Distinct from {@link TimeoutError}. */
export class AbortError extends ShmxError {
  constructor(message = 'The operation was aborted', options: { resource?: string; cause?: unknown } = {}) {
    super('ABORT_ERR', message, options);
    this.name = 'AbortError';
  }
}

/**
 * A quota was reached (code `EQUOTA`): the call that would have passed it is refused, nothing else is affected.
 * `quota` names the option that sets the limit (`quotas.channelsPerSession`, `sessionArena.maxBytes`, …) and
 * `limit` is its value (bytes or a count). See docs/cleanup-and-safety.md, "Quotas".
 */
export class QuotaError extends ShmxError {
  /** The option that sets the limit, e.g. `quotas.totalBytes`. */
  readonly quota: string;
  /** The limit's value. */
  readonly limit: number;

  constructor(quota: string, limit: number, message: string, options: { resource?: string; cause?: unknown } = {}) {
    super('EQUOTA', `${message} (quota ${quota} = ${limit})`, options);
    this.name = 'QuotaError';
    this.quota = quota;
    this.limit = limit;
  }
}

/** True when `err` carries the given code (works for ShmxError and native errors alike). */
export function hasCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
