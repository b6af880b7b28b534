/**
 * Waiting for a server, and staying connected to one that restarts: the back-off every client used to copy,
 * done once. Both are bounded — a number of attempts and a total time, defaults finite — and abortable; neither
 * is a loop without a limit. `ClientSession.connect({ retry })` waits for one session; {@link reconnecting}
 * keeps a long-lived client connected across server restarts and says what it does through events.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, hasCode, type ShmxErrorCode } from '../errors.js';
import { ClientSession, type ConnectOptions } from './client.js';
import type { CloseReason } from './lifecycle.js';
import type { Session } from './session.js';

/** How {@link ClientSession.connect} waits for a server (`connect({ retry: {} })` takes every default). */
export interface RetryOptions {
  /** Attempts in all, the first included. Default `Infinity` (then `totalTimeoutMs` bounds the wait). */
  maxAttempts?: number;
  /** No attempt starts after this many ms from the first one. Default 30 000. `Infinity` must be said
   *  explicitly, and then `maxAttempts` or the `signal` is the bound. */
  totalTimeoutMs?: number;
  /** Pause after the first failed attempt. Default 250 ms. */
  initialDelayMs?: number;
  /** Longest pause. Default 5000 ms. */
  maxDelayMs?: number;
  /** Each pause is the previous one times this. Default 2. */
  factor?: number;
  /** Codes worth another attempt. Default `ENOSERVER` (nobody listens yet), `ECONNRESET` (the server went away
   *  during the handshake) and `ESHUTDOWN` (it was shutting down). Any other error rejects at once. */
  retryOn?: readonly ShmxErrorCode[];
  /** Called before each pause (after a failed attempt): for logs and metrics. */
  onRetry?: (info: RetryInfo) => void;
}

/** One failed attempt and the pause before the next. */
export interface RetryInfo {
  /** The attempt that failed, from 1. */
  attempt: number;
  /** Why it failed. */
  error: Error;
  /** Pause before the next attempt (ms): the back-off step, with up to 50 % of it taken off at random so that
   *  clients of one restarting server do not all come back in the same instant. */
  delayMs: number;
}

const DEFAULT_RETRY_ON: readonly ShmxErrorCode[] = ['ENOSERVER', 'ECONNRESET', 'ESHUTDOWN'];

interface ResolvedRetry {
  maxAttempts: number;
  totalTimeoutMs: number;
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  retryOn: readonly ShmxErrorCode[];
  onRetry: ((info: RetryInfo) => void) | undefined;
}

/** Checks retry options (TypeError/RangeError before anything is tried) and fills in the defaults. */
export function resolveRetryOptions(retry: RetryOptions): ResolvedRetry {
  if (typeof retry !== 'object' || retry === null) throw new TypeError('retry must be an object');
  const num = (v: number | undefined, name: string, fallback: number, min: number, infinite: boolean): number => {
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || Number.isNaN(v) || v < min || (!infinite && !Number.isFinite(v))) {
      throw new RangeError(`retry.${name} must be a number ≥ ${min}${infinite ? ' (or Infinity)' : ''}`);
    }
    return v;
  };
  const maxAttempts = num(retry.maxAttempts, 'maxAttempts', Infinity, 1, true);
  if (Number.isFinite(maxAttempts) && !Number.isInteger(maxAttempts)) throw new RangeError('retry.maxAttempts must be an integer');
  const initialDelayMs = num(retry.initialDelayMs, 'initialDelayMs', 250, 1, false);
  const resolved: ResolvedRetry = {
    maxAttempts,
    totalTimeoutMs: num(retry.totalTimeoutMs, 'totalTimeoutMs', 30_000, 0, true),
    initialDelayMs,
    maxDelayMs: num(retry.maxDelayMs, 'maxDelayMs', Math.max(5000, initialDelayMs), initialDelayMs, false),
    factor: num(retry.factor, 'factor', 2, 1, false),
    retryOn: retry.retryOn ?? DEFAULT_RETRY_ON,
    onRetry: retry.onRetry,
  };
  if (!Array.isArray(resolved.retryOn) || !resolved.retryOn.every((c) => typeof c === 'string')) {
    throw new TypeError('retry.retryOn must be an array of codes');
  }
  if (resolved.onRetry !== undefined && typeof resolved.onRetry !== 'function') throw new TypeError('retry.onRetry must be a function');
  return resolved;
}

/**
 * Runs `attempt` until it succeeds, fails with a code not in `retryOn`, or a bound is reached (then the last
 * attempt's error is thrown as it was: `ENOSERVER` still means "nobody listens"). A pause is cut short by the
 * signal (AbortError); an attempt in flight has the signal too.
 */
export async function withRetry<T>(retry: ResolvedRetry, signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
  const started = Date.now();
  let delay = retry.initialDelayMs;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const error = err as Error;
      if (!retry.retryOn.some((code) => hasCode(error, code))) throw error;
      if (n >= retry.maxAttempts) throw error;
      const left = retry.totalTimeoutMs - (Date.now() - started);
      const delayMs = Math.round(delay * (0.5 + Math.random() / 2));
      if (delayMs >= left) throw error; // the next attempt would start past the total time
      retry.onRetry?.({ attempt: n, error, delayMs });
      try {
        await sleep(delayMs, undefined, { signal });
      } catch {
        throw new AbortError('connect aborted while waiting for the server', { cause: signal?.reason });
      }
      delay = Math.min(delay * retry.factor, retry.maxDelayMs);
    }
  }
}

/** Options of {@link reconnecting}: those of `connect` (its `retry` bounds each outage). */
export interface ReconnectingOptions extends ConnectOptions {
  /** How each wait for the server goes (first connect and after each disconnection). Default `{}`: the
   *  defaults of {@link RetryOptions}, so an outage longer than 30 s ends the helper with `'gave-up'`. */
  retry?: RetryOptions;
}

/** Events of a {@link Reconnecting}. */
export interface ReconnectingEvents {
  /** A session opened: the first one, or a new one after a disconnection. Set up its channels here. */
  session: [session: Session];
  /** The session closed for a reason other than a local close; a new one is being sought. */
  disconnected: [reason: CloseReason, session: Session];
  /** An attempt failed; the next one comes after `info.delayMs`. */
  retry: [info: RetryInfo];
  /** A wait ended without a session (a bound was reached, or an error not worth retrying): the helper closed. */
  'gave-up': [error: Error];
  /** The helper closed (after `close()`, `'gave-up'`, the signal, or a local close of its session). */
  close: [];
}

/**
 * Keeps a client connected to a server that may restart. Create it with {@link reconnecting}; listen to
 * `'session'` to set up each new session. It ends — `'close'` — when you call {@link Reconnecting.close}, when
 * `signal` aborts, when you close its current session yourself, or when a wait exhausts the retry bounds
 * (`'gave-up'` first). It never loops without a limit: every wait for the server is bounded by `retry`.
 */
export class Reconnecting extends EventEmitter<ReconnectingEvents> {
  private current: Session | undefined;
  private closed = false;
  private readonly stop = new AbortController();
  private readonly retry: ResolvedRetry;
  private readonly connectOptions: ConnectOptions;

  /** @internal Use {@link reconnecting}. */
  constructor(options: ReconnectingOptions, private readonly connectOnce: (options: ConnectOptions) => Promise<Session>) {
    super();
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const { retry = {}, signal, ...rest } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
    this.retry = resolveRetryOptions({
      ...retry,
      onRetry: (info) => {
        retry.onRetry?.(info);
        this.emit('retry', info);
      },
    });
    const stop = signal === undefined ? this.stop.signal : AbortSignal.any([signal, this.stop.signal]);
    this.connectOptions = { ...rest, signal: stop };
    if (stop.aborted) queueMicrotask(() => void this.close());
    else stop.addEventListener('abort', () => void this.close(), { once: true });
    queueMicrotask(() => void this.seek());
  }

  /** The open session, or undefined while (re)connecting and after close. */
  get session(): Session | undefined {
    return this.current;
  }

  /** True once the helper ended. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Stops reconnecting, aborts a wait in progress and closes the current session. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort(new AbortError('reconnecting closed'));
    const session = this.current;
    this.current = undefined;
    if (session !== undefined) await session.close().catch(() => {});
    this.emit('close');
  }

  private async seek(): Promise<void> {
    if (this.closed) return;
    let session: Session;
    try {
      session = await withRetry(this.retry, this.connectOptions.signal, () => this.connectOnce(this.connectOptions));
    } catch (err) {
      if (this.closed) return; // aborted by close(): not a failure
      this.emit('gave-up', err as Error);
      await this.close();
      return;
    }
    if (this.closed) {
      await session.close().catch(() => {});
      return;
    }
    this.current = session;
    session.once('close', (reason) => {
      if (this.current !== session) return;
      this.current = undefined;
      if (this.closed) return;
      if (reason === 'local-close') {
        void this.close(); // the app closed it: it wants no session
        return;
      }
      this.emit('disconnected', reason, session);
      void this.seek();
    });
    this.emit('session', session);
  }
}

/**
 * Starts a {@link Reconnecting}: connects (waiting for the server within `retry`'s bounds), and after each
 * disconnection other than your own close, waits for the server again. Every new session comes as `'session'`.
 *
 * ```ts
 * const link = reconnecting({ universe, clientApp: 'trader', serverApp: 'pricing', retry: { totalTimeoutMs: 60_000 } });
 * link.on('session', (session) => { void session.openChannel({ metadata: { kind: 'prices' } }).then(subscribe); });
 * link.on('gave-up', (err) => console.error('pricing is gone', err));
 * // … later
 * await link.close();
 * ```
 */
export function reconnecting(options: ReconnectingOptions): Reconnecting {
  return new Reconnecting(options, (o) => ClientSession.connect(o));
}
