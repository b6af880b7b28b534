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

/**
 * errno names shmx's system calls report (the common ones; the kernel may report others — `ErrnoCode` keeps
 * the type open to every `E…` name).
 */
export type ErrnoCode =
  | 'ENOENT' | 'EEXIST' | 'EACCES' | 'EPERM' | 'ENOSPC' | 'ENOMEM' | 'EMFILE' | 'ENFILE' | 'EINVAL' | 'EAGAIN'
  | 'EBADF' | 'EBUSY' | 'EINTR' | 'ESRCH' | 'EADDRINUSE' | 'ECONNREFUSED' | 'ECONNRESET' | 'EPIPE' | 'EMSGSIZE'
  | 'ENAMETOOLONG' | 'EFBIG' | 'ENOSYS' | 'EOF'
  // eslint-disable-next-line @typescript-eslint/ban-types -- keeps the literals above for completion
  | (`E${string}` & {});

/**
 * Every `code` a {@link ShmxError} can carry: shmx's own ({@link ShmxCode}), `ETIMEDOUT` (TimeoutError),
 * `ABORT_ERR` (AbortError) and errno names of failing system calls ({@link ErrnoCode}).
 */
export type ShmxErrorCode = ShmxCode | 'ETIMEDOUT' | 'ABORT_ERR' | ErrnoCode;

/** Base class of every error shmx raises — on purpose, or from a failing system call in the addon. */
export class ShmxError extends Error {
  /** Stable machine-readable code (`EHOSED`, `EARENAFULL`, an errno name, ...). */
  readonly code: ShmxErrorCode;
  /** The kernel object or shmx object the error is about, when there is one. */
  readonly resource: string | undefined;
  /** A failing system call's positive errno value (0 for a code of the addon's own, such as `ENOMQUEUEFS`). */
  declare readonly errno?: number;
  /** The failing system call (`shm_open`, `mq_open`, …), for errors of the addon. */
  declare readonly syscall?: string;

  /** `code` is typed loosely on input: codes a peer sends (refusals, control errors) arrive as strings. */
  constructor(code: ShmxErrorCode | string, message: string, options: { resource?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ShmxError';
    this.code = code as ShmxErrorCode;
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

/**
 * True when `err` is an error carrying the given code — a ShmxError, or an error of Node's own (a socket's
 * `ECONNRESET`) — and then typed as one: `if (hasCode(err, 'EQUOTA')) err.code …`.
 */
export function hasCode<C extends ShmxErrorCode>(err: unknown, code: C): err is Error & { readonly code: C } {
  return err instanceof Error && (err as { code?: unknown }).code === code;
}
