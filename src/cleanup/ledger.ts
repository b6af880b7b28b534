/**
 * A process's ledger of message queues. Segments can always be found by listing /dev/shm, but /dev/mqueue is
 * often not mounted, so the names of queues a process creates are also written here — a small segment named
 * after the process. A sweep that finds the ledger of a dead process removes every queue it lists.
 *
 * Layout: Int32 header [magic, capacity, count], then `capacity` entries of ENTRY_BYTES:
 * [state (0 free, 1 used), byteLength, name bytes].
 *
 * The ledger is this process's own bookkeeping, and this process keeps a copy of what it holds. So a ledger
 * truncated under us (another process shrank it; the SIGBUS handler left zero pages, see
 * src/arena/truncation.ts) is not a fault of any session: it is rebuilt under the same name from that copy,
 * with a warning carrying `ESEGMENTTRUNCATED`. Only when the rebuild fails does the ledger stay faulted: then
 * recording a new queue throws that error (the channel open fails), and forgetting one does nothing.
 */
import { faultedSegment, noticeSegmentFaults, segmentTruncated, watchSegments } from '../arena/truncation.js';
import { hasCode } from '../errors.js';
import { defaultLogger } from '../log.js';
import { native, type MqOpenOptions, type NativeMessageQueue } from '../native.js';
import { armExitCleanup } from './exit-cleanup.js';
import { createWithFreshNonce, formatResourceName } from './names.js';
import { selfIdentity } from './liveness.js';

const MAGIC = 0x6c656467; // "ledg"
const CAPACITY = 512;
const ENTRY_BYTES = 256;
const HEADER_BYTES = 64;
const SIZE = HEADER_BYTES + CAPACITY * ENTRY_BYTES;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The queues this process has created for one server app, recorded before each mq_open. */
export class Ledger {
  private static readonly mine = new Map<string, Ledger>();

  private words: Int32Array;
  private bytes: Uint8Array;
  private readonly slots = new Map<string, number>();
  /** Set when the ledger was truncated and could not be rebuilt. */
  private failure: Error | null = null;
  /** Set once the ledger removed itself (empty): nothing to rebuild then. */
  private removed = false;

  private constructor(readonly name: string) {
    const buffer = native.shmMap(name);
    this.words = new Int32Array(buffer);
    this.bytes = new Uint8Array(buffer);
    // Held strongly in `mine` for as long as it exists, so the weak watch lasts as long as the ledger.
    watchSegments(this);
  }

  /** Called after a SIGBUS was handled somewhere in this process: rebuilds the ledger if it was ours. */
  checkSegments(): void {
    if (this.removed || this.failure !== null || faultedSegment([[this.words.buffer as SharedArrayBuffer, this.name]]) === undefined) {
      return;
    }
    const err = segmentTruncated(`ledger ${this.name}`, this.name);
    try {
      // Our own name (pid and start time in it): remove what is left and write it anew from our copy.
      native.shmUnlink(this.name);
      native.shmCreate(this.name, SIZE, 0o600);
      const buffer = native.shmMap(this.name);
      this.words = new Int32Array(buffer);
      this.bytes = new Uint8Array(buffer);
      this.words[0] = MAGIC;
      this.words[1] = CAPACITY;
      for (const [queue, i] of this.slots) this.write(i, encoder.encode(queue));
      defaultLogger().warn({ ledger: this.name, err }, 'ledger was truncated by another process; rebuilt');
    } catch (cause) {
      this.failure = err;
      defaultLogger().warn({ ledger: this.name, err, cause }, 'ledger was truncated and could not be rebuilt');
    }
  }

  private write(i: number, data: Uint8Array): void {
    const at = (HEADER_BYTES + i * ENTRY_BYTES) >> 2;
    this.bytes.set(data, HEADER_BYTES + i * ENTRY_BYTES + 8);
    this.words[at + 1] = data.length;
    Atomics.store(this.words, at, 1);
    Atomics.add(this.words, 2, 1);
  }

  /** This process's ledger for `serverApp`, created on first use. */
  static forServerApp(serverApp: string): Ledger {
    let ledger = Ledger.mine.get(serverApp);
    if (ledger === undefined) {
      // A fresh nonce (another on EEXIST): a ledger name someone created first never blocks our queues.
      const name = createWithFreshNonce('queue ledger', (nonce) => {
        const candidate = formatResourceName({
          kind: 'lg', serverApp, creator: selfIdentity(), clientApp: null, session: null, nonce, part: 'q',
        });
        native.shmCreate(candidate, SIZE, 0o600);
        return candidate;
      });
      ledger = new Ledger(name);
      ledger.words[0] = MAGIC;
      ledger.words[1] = CAPACITY;
      Ledger.mine.set(serverApp, ledger);
      armExitCleanup(); // exit-cleanup.ts: this ledger and its queues go when this process ends (not by SIGKILL)
    }
    return ledger;
  }

  /** Records a queue name; call before creating the queue. */
  record(queue: string): void {
    noticeSegmentFaults();
    if (this.failure !== null) throw this.failure;
    if (this.slots.has(queue)) return;
    const data = encoder.encode(queue);
    if (data.length > ENTRY_BYTES - 8) throw new RangeError(`queue name too long for the ledger: ${queue}`);
    // Our copy says which entries are used (only this process writes its ledger): shared memory that a
    // truncation zeroed must not make us hand out an entry twice.
    const used = new Set(this.slots.values());
    for (let i = 0; i < CAPACITY; i++) {
      if (used.has(i)) continue;
      this.slots.set(queue, i);
      this.write(i, data);
      // Truncated while we wrote (zero pages took it): rebuilt now, from `slots`, which has this queue.
      noticeSegmentFaults();
      if (this.failure !== null) throw this.failure;
      return;
    }
    throw new RangeError(`ledger ${this.name} is full (${CAPACITY} queues)`);
  }

  /** Forgets a queue; call after removing it. The ledger removes itself when it becomes empty. */
  forget(queue: string): void {
    noticeSegmentFaults();
    const i = this.slots.get(queue);
    if (i === undefined) return;
    this.slots.delete(queue);
    if (this.failure === null) {
      Atomics.store(this.words, (HEADER_BYTES + i * ENTRY_BYTES) >> 2, 0);
      Atomics.sub(this.words, 2, 1);
    }
    if (this.slots.size === 0) {
      this.removed = true;
      native.shmUnlink(this.name);
      for (const [app, ledger] of Ledger.mine) if (ledger === this) Ledger.mine.delete(app);
    }
  }
}

/** The queue names recorded in a ledger segment (of a dead process, typically). Bounds-checked: a torn or
 *  hostile ledger yields only well-formed names. */
export function readLedger(name: string): string[] {
  let buffer: SharedArrayBuffer;
  try {
    buffer = native.shmMap(name);
  } catch (err) {
    // Truncated to nothing: it lists nothing (a sweep must not fail on it).
    if (hasCode(err, 'EEMPTY')) return [];
    throw err;
  }
  if (buffer.byteLength < SIZE) return [];
  const words = new Int32Array(buffer);
  const bytes = new Uint8Array(buffer);
  if (words[0] !== MAGIC) return [];
  const out: string[] = [];
  for (let i = 0; i < CAPACITY; i++) {
    const at = HEADER_BYTES + i * ENTRY_BYTES;
    if (Atomics.load(words, at >> 2) !== 1) continue;
    const length = words[(at >> 2) + 1]!;
    if (length <= 0 || length > ENTRY_BYTES - 8) continue;
    const queue = decoder.decode(bytes.subarray(at + 8, at + 8 + length));
    if (/^shmx\.[A-Za-z0-9._-]+$/.test(queue)) out.push(queue);
  }
  return out;
}

/** Creates a message queue recorded in this process's ledger first, so that a sweep can find and remove it
 *  even when /dev/mqueue is not mounted and this process dies. */
export function createRecordedQueue(serverApp: string, name: string, options: MqOpenOptions = {}): NativeMessageQueue {
  const ledger = Ledger.forServerApp(serverApp);
  ledger.record(name);
  try {
    return native.mqOpen(name, { ...options, create: true, exclusive: true });
  } catch (err) {
    ledger.forget(name);
    throw err;
  }
}

/** Removes a queue made by {@link createRecordedQueue} and its ledger entry. */
export function removeRecordedQueue(serverApp: string, name: string): void {
  native.mqUnlink(name);
  Ledger.forServerApp(serverApp).forget(name);
}
