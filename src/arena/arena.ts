/**
 * `Arena`: a crash-tolerant allocator over POSIX shared memory that several processes use at once.
 * See docs/arena.md for the design.
 */
import { randomFillSync } from 'node:crypto';
import { isArenaDataSegment } from '../cleanup/names.js';
import { hasCode, ShmxError } from '../errors.js';
import { defaultLogger } from '../log.js';
import { native } from '../native.js';
import type { Block } from './block.js';
import { ArenaCore, type ArenaGrowth, type ArenaLogger, type CoreOptions, type HeaderFacts, type LeakInfo } from './core.js';
import type { Handle } from './handle.js';
import {
  ARENA_MAGIC,
  ARENA_VERSION,
  H_CLASS_COUNT,
  H_GROW_UNITS,
  H_HEADER_WORDS,
  H_ID_HI,
  H_ID_LO,
  H_MAGIC,
  H_MAX_UNITS,
  H_MODE,
  H_SEG_COUNT,
  H_SEG_TABLE,
  H_UNIT_SHIFT,
  H_VERSION,
  headerBytes,
  headerName,
  headerWords,
  MAX_SEGMENTS,
  MAX_UNITS,
  NAME_RE,
  PID_TOKEN,
  SEG_ENTRY_WORDS,
  UNIT,
  UNIT_SHIFT,
} from './layout.js';
import { grow } from './pages.js';
import { clearBitEverywhere, recoverDeadSlots } from './recovery.js';
import { CLASS_COUNT } from './size-classes.js';
import { claimSlot, freeSlot } from './slots.js';
import { sleepMs } from './page-lock.js';
import { computeStats, type ArenaStats } from './stats.js';
import { noticeSegmentFaults, segmentTruncated } from './truncation.js';

export type { ArenaGrowth, ArenaLogger, LeakInfo } from './core.js';
export type { ArenaStats } from './stats.js';

/** Options of {@link Arena.open}. */
export interface ArenaOpenOptions {
  /** Create the arena instead of opening it (then {@link ArenaCreateOptions.maxBytes} is required). */
  create?: boolean;
  /** A pino-compatible logger (warn: leaks; info: recoveries, lock steals). Default: shmx's quiet logger. */
  logger?: ArenaLogger;
  /** Called when a Block is garbage-collected while still held. */
  onLeak?: (info: LeakInfo) => void;
  /**
   * Which Blocks to watch with a FinalizationRegistry so that a forgotten release (a Block collected while
   * held) is reported: `true` all, `'large'` blocks over 64 KiB only (the default), `false` none.
   * Registration costs ~0.3 µs per block, more than a small alloc+free itself, hence the default.
   * Forgotten holds are reclaimed at close either way.
   */
  trackLeaks?: boolean | 'large';
  /** How long to wait for a page lock held by a live process before `EARENABUSY`. Default 5000 ms. */
  lockTimeoutMs?: number;
  /**
   * Called by this instance, with the page lock held, before it adds a data segment — or finds it cannot
   * because `maxBytes` (or the segment table) is reached (`overCeiling`). It may throw to refuse the growth:
   * the error reaches the `alloc()` caller and nothing is changed (the session layer's quotas throw `EQUOTA`
   * here). When it returns, growth goes on, or fails with `EARENAFULL` when over the ceiling.
   */
  beforeGrow?: (growth: ArenaGrowth) => void;
}

/** Options of {@link Arena.create}. */
export interface ArenaCreateOptions extends ArenaOpenOptions {
  /** Upper bound of the data segments' total size (≥ 64 KiB, ≤ 64 GiB; rounded down to 64 KiB units). */
  maxBytes: number;
  /** Size of the first data segment, created now. Default: `growChunk`. 0 creates none until needed. */
  initialBytes?: number;
  /** Minimum size of each further segment. Default: min(maxBytes, 8 MiB). Raised when needed so that maxBytes
   *  stays reachable within the arena's 64 segments. */
  growChunk?: number;
  /** Permission bits of the segments. Default 0o600. */
  mode?: number;
}

/** Options of {@link Arena.alloc}. */
export interface AllocOptions {
  /** Alignment of the block's offset in its buffer: a power of two ≤ 4096. Default 16 (8 for tiny sizes). */
  align?: number;
}

const DEFAULT_GROW = 8 * 1024 * 1024;
const ARENA_CORES = new WeakMap<object, ArenaCore>();
const OPEN_WAIT_MS = 1000;


function checkName(name: unknown): string {
  if (typeof name !== 'string') throw new TypeError('arena name must be a string');
  if (!NAME_RE.test(name)) throw new RangeError('arena name must be 1..200 characters of [A-Za-z0-9._-]');
  return name;
}

function checkOpenOptions(options: unknown): ArenaOpenOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const o = options as ArenaOpenOptions;
  if (o.logger !== undefined && (typeof o.logger !== 'object' || typeof o.logger.warn !== 'function')) {
    throw new TypeError('options.logger must be a pino-compatible logger');
  }
  if (o.onLeak !== undefined && typeof o.onLeak !== 'function') throw new TypeError('options.onLeak must be a function');
  if (o.beforeGrow !== undefined && typeof o.beforeGrow !== 'function') throw new TypeError('options.beforeGrow must be a function');
  if (o.trackLeaks !== undefined && typeof o.trackLeaks !== 'boolean' && o.trackLeaks !== 'large') {
    throw new TypeError("options.trackLeaks must be a boolean or 'large'");
  }
  if (o.lockTimeoutMs !== undefined) {
    if (typeof o.lockTimeoutMs !== 'number') throw new TypeError('options.lockTimeoutMs must be a number');
    if (!(o.lockTimeoutMs >= 0 && o.lockTimeoutMs <= 600_000)) throw new RangeError('options.lockTimeoutMs out of range');
  }
  return o;
}

function checkByteCount(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number`);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer in ${min}..${max}`);
  }
  return value;
}

function coreOptions(o: ArenaOpenOptions): CoreOptions {
  return {
    lockTimeoutMs: o.lockTimeoutMs ?? 5000,
    logger: o.logger ?? defaultLogger,
    onLeak: o.onLeak,
    trackLeaks: o.trackLeaks === true ? 'all' : o.trackLeaks === false ? 'none' : 'large',
    beforeGrow: o.beforeGrow,
  };
}

function corruptAtOpen(name: string, message: string): never {
  throw new ShmxError('EARENACORRUPT', `arena ${name} is corrupt: ${message}`, { resource: name });
}

/** Reads and validates the header facts (the magic is already checked). */
function readFacts(name: string, hdr: Int32Array): HeaderFacts {
  const version = Atomics.load(hdr, H_VERSION);
  const words = Atomics.load(hdr, H_HEADER_WORDS);
  // Shrunk before we mapped it (its magic page survived): refuse it rather than map less than it claims.
  if (version === ARENA_VERSION && words > hdr.length && words === headerWords(Atomics.load(hdr, H_MAX_UNITS))) {
    throw segmentTruncated(`arena ${name}`, headerName(name));
  }
  if (version !== ARENA_VERSION) corruptAtOpen(name, `unsupported layout version ${version}`);
  const maxUnits = Atomics.load(hdr, H_MAX_UNITS);
  const growUnits = Atomics.load(hdr, H_GROW_UNITS);
  const mode = Atomics.load(hdr, H_MODE);
  if (
    Atomics.load(hdr, H_UNIT_SHIFT) !== UNIT_SHIFT ||
    !(maxUnits >= 1 && maxUnits <= MAX_UNITS) ||
    Atomics.load(hdr, H_HEADER_WORDS) !== headerWords(maxUnits) ||
    hdr.length < headerWords(maxUnits) ||
    !(growUnits >= 1 && growUnits <= maxUnits) ||
    !(mode >= 0 && mode <= 0o777) ||
    Atomics.load(hdr, H_CLASS_COUNT) !== CLASS_COUNT
  ) {
    corruptAtOpen(name, 'header fields out of range');
  }
  return { maxUnits, growUnits, mode };
}

/**
 * Maps the header segment, waiting (up to 1 s) for a creator that is still sizing or initialising it: the
 * creator writes the magic last.
 */
function mapHeader(name: string): Int32Array {
  const deadline = Date.now() + OPEN_WAIT_MS;
  for (;;) {
    let hdr: Int32Array | undefined;
    try {
      hdr = new Int32Array(native.shmMap(headerName(name)));
    } catch (err) {
      // ENOENT: no such arena. Anything else may be a segment still being sized (empty mapping).
      if (hasCode(err, 'ENOENT') || Date.now() > deadline) throw err;
    }
    if (hdr !== undefined && hdr.length >= headerWords(1)) {
      const magic = Atomics.load(hdr, H_MAGIC);
      if (magic === ARENA_MAGIC) return hdr;
      if (magic !== 0) corruptAtOpen(name, 'bad magic');
    }
    if (Date.now() > deadline) corruptAtOpen(name, 'the header was never initialised');
    sleepMs(1);
  }
}

/**
 * A shared-memory arena. Every process that uses it has its own `Arena` instance (one process slot each);
 * blocks allocated by one can be lent to another by handle.
 *
 * ```ts
 * const a = Arena.create('shmx.demo', { maxBytes: 64 << 20 });
 * const b = a.alloc(1024);
 * b.bytes.set(payload);
 * channel.send(encodeHandle(a.lend(b)));
 * b.release(); // the peer's borrow keeps the block alive
 * ```
 */
export class Arena {
  readonly #core: ArenaCore;
  readonly #maxBytes: number;

  private constructor(core: ArenaCore) {
    this.#core = core;
    this.#maxBytes = core.maxUnits * UNIT;
    ARENA_CORES.set(this, core);
  }

  /**
   * Creates a new arena (its header segment exclusively: `EEXIST` when the name is taken) and opens it.
   * @throws TypeError / RangeError on bad arguments, before any system call.
   */
  static create(name: string, options: ArenaCreateOptions): Arena {
    checkName(name);
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const o = checkOpenOptions(options) as ArenaCreateOptions;
    const maxBytes = checkByteCount(o.maxBytes, 'options.maxBytes', UNIT, MAX_UNITS * UNIT);
    const maxUnits = Math.floor(maxBytes / UNIT);
    const growChunk =
      o.growChunk === undefined ? Math.min(maxUnits * UNIT, DEFAULT_GROW) : checkByteCount(o.growChunk, 'options.growChunk', 1, maxBytes);
    const growUnits = Math.min(maxUnits, Math.ceil(growChunk / UNIT));
    const initialBytes =
      o.initialBytes === undefined ? growUnits * UNIT : checkByteCount(o.initialBytes, 'options.initialBytes', 0, maxBytes);
    const initialUnits = Math.min(maxUnits, Math.ceil(initialBytes / UNIT));
    // The segment table has MAX_SEGMENTS entries: grow in steps large enough that maxBytes stays reachable
    // (a step too small would end in "all segments in use" long before maxBytes).
    const reachableUnits = Math.max(growUnits, Math.ceil((maxUnits - initialUnits) / (MAX_SEGMENTS - (initialUnits > 0 ? 1 : 0))));
    const mode = o.mode === undefined ? 0o600 : checkByteCount(o.mode, 'options.mode', 0, 0o777);

    const hname = headerName(name);
    native.shmCreate(hname, headerBytes(maxUnits), mode);
    let arena: Arena | undefined;
    try {
      const hdr = new Int32Array(native.shmMap(hname));
      const id = new Uint32Array(2);
      randomFillSync(id);
      Atomics.store(hdr, H_VERSION, ARENA_VERSION);
      Atomics.store(hdr, H_UNIT_SHIFT, UNIT_SHIFT);
      Atomics.store(hdr, H_MAX_UNITS, maxUnits);
      Atomics.store(hdr, H_GROW_UNITS, Math.min(maxUnits, reachableUnits));
      Atomics.store(hdr, H_ID_LO, id[0]! | 0);
      Atomics.store(hdr, H_ID_HI, id[1]! | 0);
      Atomics.store(hdr, H_HEADER_WORDS, headerWords(maxUnits));
      Atomics.store(hdr, H_MODE, mode);
      Atomics.store(hdr, H_CLASS_COUNT, CLASS_COUNT);
      Atomics.store(hdr, H_MAGIC, ARENA_MAGIC);
      arena = Arena.attach(name, hdr, o);
      if (initialUnits > 0) {
        const core = arena.#core;
        core.lock();
        try {
          grow(core, initialUnits, true); // exactly what the creator asked to reserve now
        } finally {
          core.unlock();
        }
      }
      return arena;
    } catch (err) {
      try {
        arena?.close();
      } finally {
        Arena.unlink(name);
      }
      throw err;
    }
  }

  /**
   * Opens an existing arena by name (or creates it with `{ create: true, maxBytes, … }`). Claims a process
   * slot (`EARENASLOTS` when all 24 are held by live processes) and recovers the slots of dead processes.
   */
  static open(name: string, options?: ArenaOpenOptions | ArenaCreateOptions): Arena {
    checkName(name);
    const o = checkOpenOptions(options);
    if (o.create === true) return Arena.create(name, o as ArenaCreateOptions);
    return Arena.attach(name, mapHeader(name), o);
  }

  private static attach(name: string, hdr: Int32Array, o: ArenaOpenOptions): Arena {
    const facts = readFacts(name, hdr);
    const core = new ArenaCore(name, hdr, facts, coreOptions(o));
    const arena = new Arena(core);
    let slot = claimSlot(hdr);
    if (slot < 0) {
      core.token = PID_TOKEN | process.pid;
      recoverDeadSlots(core, false);
      slot = claimSlot(hdr);
      if (slot < 0) {
        throw new ShmxError('EARENASLOTS', `arena ${name}: all process slots are held by live processes`, {
          resource: name,
        });
      }
    }
    core.slot = slot;
    core.bit = 1 << slot;
    core.token = slot + 1;
    try {
      recoverDeadSlots(core, false);
    } catch (err) {
      arena.close();
      throw err;
    }
    return arena;
  }

  /**
   * Removes every segment of arena `name` (header and data). Processes that have it mapped keep working on
   * their mappings; nobody can open it anymore. Returns how many names were removed.
   */
  static unlink(name: string): number {
    checkName(name);
    let removed = 0;
    for (const n of native.shmList(`${name}.`)) {
      if (n !== headerName(name) && !isArenaDataSegment(n, name)) continue;
      try {
        if (native.shmUnlink(n)) removed++;
      } catch (err) {
        // Another user's file under one of our names (the sticky /dev/shm lets nobody else remove it): never
        // one of ours — creation is exclusive — so it must not stop the removal of the rest.
        const code = (err as { code?: string }).code;
        if (code !== 'EPERM' && code !== 'EACCES') throw err;
      }
    }
    return removed;
  }

  /** The arena's name (the base of its segment names). */
  get name(): string {
    return this.#core.name;
  }

  /** The arena id handles carry (16 hex digits, unique per created arena). */
  get id(): string {
    return this.#core.id;
  }

  /** Upper bound of the data segments' total size. */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /**
   * Bytes of /dev/shm this arena holds as its shared segment table says now — the header segment and every
   * committed data segment, whoever grew them — for budgets (the session quotas). Cheap: no system call and
   * no scan. The table is shared memory, so each entry is clamped and the total is at most the header plus
   * `maxBytes`. 0 once closed.
   */
  get reservedBytes(): number {
    const core = this.#core;
    if (core.closed) return 0;
    const hdr = core.hdr;
    const count = Math.min(Math.max(Atomics.load(hdr, H_SEG_COUNT), 0), MAX_SEGMENTS);
    let units = 0;
    for (let i = 0; i < count; i++) {
      units += Math.min(Math.max(Atomics.load(hdr, H_SEG_TABLE + i * SEG_ENTRY_WORDS + 1), 0), core.maxUnits);
    }
    return hdr.byteLength + Math.min(units, core.maxUnits) * UNIT;
  }

  /** True once closed (or destroyed). */
  get closed(): boolean {
    return this.#core.closed;
  }

  /**
   * Allocates a block of `size` bytes. Sizes up to 64 KiB come from size-class slabs, bigger ones are runs
   * of whole 64 KiB units. Grows the arena by a new segment when needed.
   * @throws TypeError / RangeError on bad arguments (size not an integer in 1..maxBytes, align not a power
   *   of two ≤ 4096); `EARENAFULL` past maxBytes; `EARENABUSY` when the page lock stays held by a live
   *   process; `EARENACORRUPT`; `ESEGMENTTRUNCATED` once a segment was truncated under us; `ECLOSED`.
   */
  alloc(size: number, options?: AllocOptions): Block {
    const core = this.#core;
    noticeSegmentFaults();
    if (core.closed || core.failure !== null) core.ensureUsable();
    if (typeof size !== 'number') throw new TypeError('size must be a number');
    if (!(size >= 1 && size <= this.#maxBytes) || size % 1 !== 0) {
      throw new RangeError(`size must be an integer in 1..${this.#maxBytes}`);
    }
    let align = 0;
    if (options !== undefined) {
      if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
      const a = options.align;
      if (a !== undefined) {
        if (typeof a !== 'number') throw new TypeError('options.align must be a number');
        if (!(a >= 1 && a <= 4096) || (a & (a - 1)) !== 0) {
          throw new RangeError('options.align must be a power of two ≤ 4096');
        }
        align = a;
      }
    }
    return core.alloc(size, align);
  }

  /** True when `block` was allocated or borrowed through this arena instance. */
  owns(block: Block): boolean {
    return block._owner === this.#core;
  }

  /** Lets go of `block` (same as `block.release()`). @throws ESTALEHANDLE when already released. */
  free(block: Block): void {
    this.#core.releaseBlock(block);
  }

  /**
   * Lends `block` (which this instance holds): the returned handle lets one `borrow()`, in any process,
   * take a hold of its own. The block stays allocated until every holder let go and every lend was
   * borrowed. At most 255 lends per block may be in flight (`EARENABUSY` beyond).
   */
  lend(block: Block): Handle {
    return this.#core.lendBlock(block);
  }

  /**
   * Takes a hold on the block a handle names (a plain handle or its 32-byte encoding). Each handle borrows
   * once. A handle of a freed or reused block, of another arena, or with a bad offset/length/garbage bytes
   * throws `ESTALEHANDLE` — never a view of other data.
   */
  borrow(handle: Handle | Uint8Array): Block {
    return this.#core.borrow(handle);
  }

  /**
   * The `ESEGMENTTRUNCATED` error once one of this arena's segments was found truncated (shrunk by another
   * process), else null. Looks first: touches the last word of each mapped segment (a shrink nothing else has
   * touched yet shows up now, harmlessly) and reads the process's fault epoch — a few loads in all. A truncated
   * arena stays faulted: every call throws that error; close it and use a new one.
   */
  checkTruncated(): ShmxError | null {
    this.#core.probeSegments();
    noticeSegmentFaults();
    return this.#core.truncation;
  }

  /**
   * Calls `listener` (once, in a microtask) when one of this arena's segments is found truncated — by any
   * operation of this process, or by {@link Arena.checkTruncated}. Returns the function that unsubscribes.
   * Listeners are dropped at close.
   */
  onTruncated(listener: (err: ShmxError) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    const listeners = this.#core.truncationListeners;
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /** Accounting of the whole arena, scanned from the block state words. */
  stats(): ArenaStats {
    const core = this.#core;
    core.ensureUsable();
    return computeStats(core);
  }

  /**
   * Reclaims the holds of processes that died while using the arena (and frees blocks nobody else holds).
   * Call it when a peer is known to be gone. Returns how many dead slots were recovered.
   */
  recoverDead(): number {
    const core = this.#core;
    core.ensureUsable();
    return recoverDeadSlots(core, false);
  }

  /**
   * Detaches this instance: releases every hold it still has (including blocks whose release was
   * forgotten), frees its process slot and drops its mappings (they are unmapped once unreferenced).
   * Blocks of this instance become unusable. Idempotent; never throws (a failure to release is logged and
   * the holds are reclaimed by crash recovery once this process exits).
   */
  close(): void {
    const core = this.#core;
    if (core.closed) return;
    if (core.failure === null && core.slot >= 0) {
      try {
        core.lock();
        try {
          clearBitEverywhere(core, core.bit, true);
        } finally {
          core.unlock();
        }
        freeSlot(core.hdr, core.slot, process.pid);
      } catch (err) {
        // ECLOSED here means the arena was destroyed under us: there is nothing left to release.
        if (!hasCode(err, 'ECLOSED')) {
          core.logger().warn({ arena: core.name, err }, 'arena close could not release its holds');
        }
      }
    }
    core.closed = true;
    core.unwatchSegments();
    core.dropRegistry();
    core.extraHolds.clear();
    core.slabs.clear();
    core.current.fill(null);
    core.segments = [];
  }

  /** Closes this instance and removes the arena's segments (the creator's job). */
  destroy(): void {
    this.close();
    Arena.unlink(this.#core.name);
  }
}

/** @internal The engine behind an Arena (the channel body codec, tests and fixtures; not re-exported). */
export function arenaCore(arena: Arena): ArenaCore {
  const core = ARENA_CORES.get(arena);
  if (core === undefined) throw new TypeError('not an Arena');
  return core;
}
