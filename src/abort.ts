/**
 * The one way shmx takes cancellation: every async call accepts `{ signal?: AbortSignal, timeoutMs?: number }`.
 * An abort rejects with {@link AbortError} (`ABORT_ERR`, the signal's reason as `cause`); a time limit that
 * passes rejects with {@link TimeoutError} (`ETIMEDOUT`) — two different errors, so a caller can tell "I gave
 * up" from "it took too long".
 */
import { AbortError, TimeoutError } from './errors.js';

/** Cancellation options of every async call of shmx. */
export interface AbortOptions {
  /** Aborting rejects the call with AbortError (and undoes what it had started). */
  signal?: AbortSignal;
  /** Rejects the call with TimeoutError past this many milliseconds (a positive number). */
  timeoutMs?: number;
}

/** Checks cancellation options before anything starts: TypeError / RangeError on bad input. */
export function checkAbortOptions(options: AbortOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const { signal, timeoutMs } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0)) {
    throw new RangeError('timeoutMs must be a positive number of milliseconds');
  }
}

/** The AbortError of `what` for an aborted `signal`. */
export function abortError(what: string, signal: AbortSignal | undefined): AbortError {
  return new AbortError(`${what} aborted`, { cause: signal?.reason });
}

/**
 * Watches `options` for one operation: `onCancel` runs once, with an AbortError or a TimeoutError, when the
 * signal aborts or the time limit passes first. Returns `stop`, to call when the operation ended on its own.
 * An already aborted signal calls `onCancel` at once (synchronously).
 */
export function watchCancel(what: string, options: AbortOptions | undefined, onCancel: (err: AbortError | TimeoutError) => void): () => void {
  const signal = options?.signal;
  const timeoutMs = options?.timeoutMs;
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (done) return;
    done = true;
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  };
  const cancel = (err: AbortError | TimeoutError) => {
    if (done) return;
    stop();
    onCancel(err);
  };
  const onAbort = () => cancel(abortError(what, signal));
  if (signal?.aborted) {
    cancel(abortError(what, signal));
    return stop;
  }
  signal?.addEventListener('abort', onAbort, { once: true });
  if (timeoutMs !== undefined) {
    timer = setTimeout(() => cancel(new TimeoutError(`${what}: not done within ${timeoutMs} ms`)), timeoutMs);
  }
  return stop;
}

/**
 * Races `work` against `options`: resolves or rejects as `work` does, unless the signal aborts or the time limit
 * passes first — then it rejects with AbortError / TimeoutError, and `onLate` receives `work`'s value if it
 * still comes (to close or release what nobody will use).
 */
export function raceCancel<T>(what: string, options: AbortOptions | undefined, work: Promise<T>, onLate?: (value: T) => void): Promise<T> {
  if (options?.signal === undefined && options?.timeoutMs === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    let cancelled = false;
    const stop = watchCancel(what, options, (err) => {
      cancelled = true;
      reject(err);
    });
    work.then(
      (value) => {
        stop();
        if (cancelled) onLate?.(value);
        else resolve(value);
      },
      (err: unknown) => {
        stop();
        if (!cancelled) reject(err);
      },
    );
  });
}

/**
 * Queues a waiter on `waiters` (a consumer's wait for the next item, resolved by the producer) and waits for
 * it — or rejects with AbortError when `signal` aborts first, taking the waiter off the queue.
 */
export function waitInQueue<T>(waiters: Array<(value: T) => void>, signal: AbortSignal | undefined, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal === undefined) {
      waiters.push(resolve);
      return;
    }
    const waiter = (value: T) => {
      signal.removeEventListener('abort', onAbort);
      resolve(value);
    };
    const onAbort = () => {
      const i = waiters.indexOf(waiter);
      if (i >= 0) waiters.splice(i, 1);
      reject(abortError(what, signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    waiters.push(waiter);
  });
}
