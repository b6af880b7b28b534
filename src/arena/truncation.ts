/**
 * Noticing segments that were truncated under us.
 *
 * Any process that can open a segment can `ftruncate` it; the next access to the lost pages raises SIGBUS. The
 * addon's handler (native/sigbus.cc) maps zero pages over that mapping, so the access and every later one
 * succeed on private memory, and bumps a process-wide epoch word. This module is the JavaScript half: one
 * load of that word at natural points (arena operations, keep-alive ticks, a session fault) tells
 * whether anything faulted since the last look; only then are the owners of mappings (arenas, ledgers) asked to
 * look at their own buffers (`native.shmFaulted`) and fault themselves with `ESEGMENTTRUNCATED`.
 */
import { ShmxError } from '../errors.js';
import { native } from '../native.js';

/** The addon's epoch word, mapped at the first look (importing shmx loads no addon: docs/native.md). */
let epoch: Int32Array | undefined;
/** The epoch value this thread has handled. Starts at 0: the first look after any fault scans once. */
let seen = 0;
/** Owners of mappings, held weakly: watching must not keep an unreferenced arena (and its mappings) alive. */
const watchers = new Set<WeakRef<SegmentWatcher>>();

/** Something that owns shared mappings and can tell whether one of them faulted. */
export interface SegmentWatcher {
  /** Looks at its own mappings (`native.shmFaulted`) and faults itself if one was truncated. Must not throw. */
  checkSegments(): void;
}

/** Starts watching; returns the function that stops it. */
export function watchSegments(watcher: SegmentWatcher): () => void {
  const ref = new WeakRef(watcher);
  watchers.add(ref);
  return () => watchers.delete(ref);
}

/**
 * Lets every watcher look at its mappings if any mapping of this process faulted since the last call. Costs one
 * load and a compare when nothing happened.
 */
export function noticeSegmentFaults(): void {
  // A plain read, not Atomics.load: it costs a few times less (measured: native.md), and nothing needs ordering
  // here — a bump missed by one look is seen by the next (every arena operation, every keep-alive tick).
  const now = (epoch ??= new Int32Array(native.segmentFaultEpoch))[0];
  if (now === seen) return;
  seen = now; // before the pass: a fault during it bumps the epoch again and is seen next time
  for (const ref of [...watchers]) {
    const watcher = ref.deref();
    if (watcher === undefined) watchers.delete(ref);
    else watcher.checkSegments();
  }
}

/** The error of a segment found truncated: `ESEGMENTTRUNCATED`, naming it. */
export function segmentTruncated(owner: string, segment: string): ShmxError {
  return new ShmxError(
    'ESEGMENTTRUNCATED',
    `${owner}: segment ${segment} was truncated by another process; its mapping now reads zeros and nothing ` +
      'written there reaches anyone',
    { resource: segment },
  );
}

/** The first of `buffers` (with their segment names) whose mapping faulted, or undefined. */
export function faultedSegment(buffers: Iterable<[SharedArrayBuffer, string]>): string | undefined {
  for (const [buffer, name] of buffers) if (native.shmFaulted(buffer)) return name;
  return undefined;
}
