/**
 * The control socket's totals, in shared memory: the control thread counts, the server's thread reads them at
 * any time (`status`, the Prometheus metrics) without a message round trip.
 */
const FIELDS = ['connections', 'connectionsAccepted', 'connectionsRefused', 'responses', 'errorResponses', 'cutOffs', 'timeouts', 'throttles'] as const;
/** One total of the control socket. */
export type ControlStat = (typeof FIELDS)[number];

export class ControlStats {
  /** Shared with the other thread (post it in workerData). */
  readonly buffer: SharedArrayBuffer;
  private readonly words: BigInt64Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(FIELDS.length * 8)) {
    this.buffer = buffer;
    this.words = new BigInt64Array(buffer);
  }

  get(field: ControlStat): number {
    return Number(Atomics.load(this.words, FIELDS.indexOf(field)));
  }

  add(field: ControlStat, n = 1): void {
    Atomics.add(this.words, FIELDS.indexOf(field), BigInt(n));
  }
}
