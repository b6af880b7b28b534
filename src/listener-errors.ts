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
  const listeners = emitter.rawListeners(event) as Listener[];
  if (listeners.length === 0) return false;
  callCounted(emitter, listeners, args, outcome);
  return true;
}

/** A listener as `rawListeners` returns it (`once` wrappers included). */
export type Listener = (...a: unknown[]) => unknown;

/**
 * {@link emitCounted} over a list of listeners the caller already has (a snapshot it keeps while the listeners do
 * not change: the channel's per-message path). Allocates nothing unless a listener returns a promise.
 */
export function callCounted(emitter: EventEmitter, listeners: readonly Listener[], args: unknown[], outcome: ListenerOutcome): void {
  let pending: PendingOutcome | undefined;
  let failed = false;
  for (let i = 0; i < listeners.length; i++) {
    let result: unknown;
    try {
      result = listeners[i]!.apply(emitter, args);
    } catch (err) {
      failed = true;
      outcome.error(err);
      continue;
    }
    if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
      (pending ??= new PendingOutcome(outcome)).follow(result as PromiseLike<unknown>);
    }
  }
  if (pending !== undefined) pending.called(failed);
  else if (!failed) outcome.success();
}

/** The outcome of an emission some of whose listeners returned promises: success once all of them resolved. */
class PendingOutcome {
  /** Promises not settled yet, plus 1 until every listener was called. */
  private pending = 1;
  private failed = false;

  constructor(private readonly outcome: ListenerOutcome) {}

  follow(result: PromiseLike<unknown>): void {
    this.pending++;
    result.then(() => this.settled(), (err: unknown) => {
      this.failed = true;
      this.outcome.error(err);
    });
  }

  /** Every listener was called; `failed`: one of them threw. */
  called(failed: boolean): void {
    if (failed) this.failed = true;
    this.settled();
  }

  private settled(): void {
    if (--this.pending === 0 && !this.failed) this.outcome.success();
  }
}
