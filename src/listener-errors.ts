/**
 * Listener errors belong to the session, never to the process (issue 11 item 2). An app's listener that throws
 * or returns a rejected promise is an application error of the session (or channel) it listens to: counted
 * against `maxConsecutiveErrors`, logged, and never an `uncaughtException` or `unhandledRejection` that would end
 * the process and leave its shared objects to the sweeps.
 *
 * Two tools: {@link emitCounted} for the events whose outcome counts ('message', 'channel', 'session': success
 * resets the consecutive-error count only once an async listener has settled), and `captureRejections` with a
 * {@link REJECTION} handler on every shmx emitter for all other events.
 */
import { EventEmitter } from 'node:events';

/** The method Node's EventEmitter calls (with `captureRejections: true`) when a listener's promise rejects. */
export const REJECTION: typeof EventEmitter.captureRejectionSymbol = EventEmitter.captureRejectionSymbol;

/** Where the outcome of one emission goes. */
export interface ListenerOutcome {
  /** A listener threw, or its promise rejected (once per failing listener). */
  error(err: unknown): void;
  /** Every listener returned, and every promise among their results resolved. */
  success(): void;
}

/**
 * Calls `event`'s listeners with `args` as `emit` does (in order, `once` listeners removed), catching what each
 * throws and following what each returns: a rejection is reported to `outcome.error`, never left unhandled.
 * Returns false when there was no listener.
 */
export function emitCounted(emitter: EventEmitter, event: string, args: unknown[], outcome: ListenerOutcome): boolean {
  const listeners = emitter.rawListeners(event) as Array<(...a: unknown[]) => unknown>;
  if (listeners.length === 0) return false;
  let pending = 0;
  let failed = false;
  const settledOk = () => {
    if (--pending === 0 && !failed) outcome.success();
  };
  const settledBad = (err: unknown) => {
    failed = true;
    outcome.error(err);
  };
  for (const listener of listeners) {
    let result: unknown;
    try {
      result = listener.apply(emitter, args);
    } catch (err) {
      settledBad(err);
      continue;
    }
    if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
      pending++;
      (result as PromiseLike<unknown>).then(settledOk, settledBad);
    }
  }
  if (pending === 0 && !failed) outcome.success();
  return true;
}
