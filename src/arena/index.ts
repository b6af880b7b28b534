/**
 * Arenas: a crash-tolerant cross-process allocator in shared memory (see docs/arena.md).
 */
export { Arena } from './arena.js';
export type { AllocOptions, ArenaCreateOptions, ArenaGrowth, ArenaOpenOptions, ArenaLogger, ArenaStats, LeakInfo } from './arena.js';
export { Block } from './block.js';
export { decodeHandle, encodeHandle, HANDLE_BYTES, readHandle } from './handle.js';
export type { Handle } from './handle.js';
export { MAX_INFLIGHT, MAX_SLOTS, MAX_SMALL, UNIT as ARENA_UNIT } from './layout.js';
export { SIZE_CLASSES } from './size-classes.js';
export type { SizeClass } from './size-classes.js';
