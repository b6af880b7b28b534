/**
 * Requests in flight on one channel, matched to replies by id. Each completes exactly once — by its reply,
 * its timeout, its AbortSignal or the channel closing, whichever comes first.
 */
import { AbortError, ShmxError, TimeoutError } from '../errors.js';
import type { Message } from './message.js';

interface Pending {
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class PendingRequests {
  private readonly pending = new Map<number, Pending>();
  private lastId = 0;

  get size(): number {
    return this.pending.size;
  }

  /** A fresh request id. */
  nextId(): number {
    const id = this.lastId >= 0x7fffffff ? 1 : this.lastId + 1;
    this.lastId = id;
    return id;
  }

  /** Registers request `id` of channel `channel`; returns the promise of its reply. */
  add(id: number, timeoutMs: number | undefined, signal: AbortSignal | undefined, channel: number): Promise<Message> {
    return new Promise<Message>((resolve, reject) => {
      const p: Pending = { resolve, reject, timer: undefined, signal, onAbort: undefined };
      if (timeoutMs !== undefined) {
        p.timer = setTimeout(
          () => this.fail(id, new TimeoutError(`request on channel ${channel}: no reply within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }
      if (signal !== undefined) {
        p.onAbort = () => this.fail(id, new AbortError(`request on channel ${channel}: aborted`, { cause: signal.reason }));
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.pending.set(id, p);
    });
  }

  /** Completes request `id` with its reply; false when it is not pending (late, duplicate or forged reply). */
  complete(id: number, message: Message): boolean {
    const p = this.take(id);
    if (p === undefined) return false;
    p.resolve(message);
    return true;
  }

  fail(id: number, error: Error): void {
    this.take(id)?.reject(error);
  }

  /** Rejects everything still pending (the channel closed). */
  failAll(reason: string): void {
    for (const id of [...this.pending.keys()]) this.fail(id, new ShmxError('ECLOSED', `channel closed (${reason}) before the reply`));
  }

  private take(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p === undefined) return undefined;
    this.pending.delete(id);
    if (p.timer !== undefined) clearTimeout(p.timer);
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort);
    return p;
  }
}
