/**
 * A channel multiplexed on the session's Unix stream socket: the kernel copies every byte, twice — the
 * baseline the shared-memory transport is measured against, and a fallback that needs no shared memory.
 */
import type { Transport } from './transport.js';

export class SocketTransport implements Transport {
  readonly kind = 'socket' as const;
  private readonly queued: Array<{ tag: number; requestId: number; body: Uint8Array }> = [];

  /**
   * @param send writes one DATA frame for this channel
   * @param writable whether the session socket accepts more without buffering past its high-water mark
   */
  constructor(
    readonly maxInline: number,
    private readonly send: (tag: number, requestId: number, body: Uint8Array) => void,
    private readonly socketWritable: () => boolean,
  ) {}

  /** @internal A DATA frame for this channel arrived. */
  push(tag: number, requestId: number, body: Uint8Array): void {
    this.queued.push({ tag, requestId, body });
  }

  write(tag: number, requestId: number, body: Uint8Array): boolean {
    if (!this.socketWritable()) return false;
    this.send(tag, requestId, body);
    return true;
  }

  read(limit: number, deliver: (tag: number, requestId: number, body: Uint8Array) => void): number {
    let n = 0;
    for (; n < limit && this.queued.length > 0; n++) {
      const m = this.queued.shift()!;
      deliver(m.tag, m.requestId, m.body);
    }
    return n;
  }

  get readable(): boolean {
    return this.queued.length > 0;
  }

  get writable(): boolean {
    return this.socketWritable();
  }

  close(): void {
    this.queued.length = 0;
  }
}
