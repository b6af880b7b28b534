/**
 * Shared-memory layout of an arena: word indices of the header segment, the unit table encoding, the slab
 * header and the block state word. Every number here is part of the on-memory format (bump
 * {@link ARENA_VERSION} when one changes).
 *
 * All shared words are Int32 so that `Atomics` works on them; offsets inside a segment are plain numbers
 * (segments may exceed 2 GiB, so never `| 0` a byte offset).
 */
import { arenaDataSegmentName } from '../cleanup/names.js';

/** `'shmA'`: the header is initialised (written last by the creator). */
export const ARENA_MAGIC = 0x73686d41;
/** 2: data segments carry a nonce of their own, kept in {@link H_SEG_NONCES}. */
export const ARENA_VERSION = 2;

/** Data space is managed in units of 64 KiB. */
export const UNIT_SHIFT = 16;
export const UNIT = 1 << UNIT_SHIFT;
/** Largest block served from slabs; bigger requests get a run of whole units. */
export const MAX_SMALL = 65536;
/** Segment table capacity. */
export const MAX_SEGMENTS = 64;
/** Process slots (one holder bit each in the block state word). */
export const MAX_SLOTS = 24;
/** In-flight lends one block can carry (8 bits of the state word). */
export const MAX_INFLIGHT = 255;
/** Upper limit of `maxBytes` in units (64 GiB): keeps the unit table at most 16 MiB. */
export const MAX_UNITS = 1 << 20;

// ---- block state word: bits 0-23 holder mask, bits 24-31 in-flight lend count; 0 <=> free ----
export const HOLDER_MASK = 0x00ffffff;
export const INFLIGHT_ONE = 0x01000000;
export const INFLIGHT_SHIFT = 24;

// ---- header segment (Int32 word indices) ----
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_UNIT_SHIFT = 2;
export const H_MAX_UNITS = 3;
export const H_GROW_UNITS = 4;
export const H_ID_LO = 5;
export const H_ID_HI = 6;
/** Committed segment count: bumped after the segment's table entry is written. */
export const H_SEG_COUNT = 7;
/** Page lock: 0 free, else the holder's token (slot + 1, or PID_TOKEN | pid for a slot-less opener). */
export const H_PAGE_LOCK = 8;
/** Times a dead holder's page lock was stolen (diagnostics). */
export const H_LOCK_STEALS = 9;
export const H_HEADER_WORDS = 10;
/** Permission bits of new segments. */
export const H_MODE = 11;
export const H_CLASS_COUNT = 12;
/** Dead slots recovered so far (diagnostics). */
export const H_RECOVERIES = 13;
/** Segment table: MAX_SEGMENTS entries of {firstUnit, unitCount}. */
export const H_SEG_TABLE = 16;
export const SEG_ENTRY_WORDS = 2;
/** Slot table: MAX_SLOTS entries of {pid, startLo, startHi, state}. */
export const H_SLOTS = H_SEG_TABLE + MAX_SEGMENTS * SEG_ENTRY_WORDS; // 144
export const SLOT_WORDS = 4;
export const SLOT_PID = 0;
export const SLOT_START_LO = 1;
export const SLOT_START_HI = 2;
export const SLOT_STATE = 3;
/** Per size class: the head of its slab list (first unit + 1, 0 = empty). */
export const H_CLASS_HEADS = H_SLOTS + MAX_SLOTS * SLOT_WORDS; // 240
export const MAX_CLASSES = 64;
/**
 * Per data segment: the nonce of its name (64 bits as two words, high then low), written by the segment's
 * creator before it commits the table entry. Peers rebuild the name from it: see {@link segmentName}.
 */
export const H_SEG_NONCES = H_CLASS_HEADS + MAX_CLASSES; // 304
export const SEG_NONCE_WORDS = 2;
/** Unit table: one entry of UNIT_ENTRY_WORDS per unit of maxBytes. */
export const H_UNITS = 512;
export const UNIT_ENTRY_WORDS = 4;
/** Unit entry: descriptor (kind | value). */
export const U_DESC = 0;
/** Unit entry: state word of a large block (first unit of a LARGE run only; 0 elsewhere). */
export const U_STATE = 1;
/** Unit entry: generation of the large block starting here (never reset, only incremented). */
export const U_GEN = 2;
/** Unit entry: SLAB: class index + 1; LARGE: requested length minus (units - 1) * UNIT. */
export const U_AUX = 3;

// ---- slot states ----
/** Slot claimed (pid written), not yet usable, or being freed. */
export const SLOT_CLAIMING = 0;
export const SLOT_ALIVE = 1;
/** Recovery claimed: SLOT_RECOVERING | recoverer pid. */
export const SLOT_RECOVERING = 0x40000000;
export const PID_MASK = 0x3fffffff;

/** Page-lock token of an opener without a slot. */
export const PID_TOKEN = 0x40000000;

// ---- unit descriptor ----
export const KIND_SHIFT = 28;
export const VALUE_MASK = (1 << KIND_SHIFT) - 1;
export const KIND_FREE = 0;
/** First unit of a slab run; value = run length in units. */
export const KIND_SLAB = 1;
/** First unit of a large block run; value = run length in units. */
export const KIND_LARGE = 2;
/** Continuation unit of a run; value = distance back to the first unit. */
export const KIND_CONT = 3;

export function desc(kind: number, value: number): number {
  return ((kind << KIND_SHIFT) | value) | 0;
}
export function descKind(d: number): number {
  return d >>> KIND_SHIFT;
}
export function descValue(d: number): number {
  return d & VALUE_MASK;
}

// ---- slab header (Int32 words from the slab's first byte) ----
/** `'SLAB'` */
export const SLAB_MAGIC = 0x534c4142;
export const S_MAGIC = 0;
/** Global unit index of the slab (a header copied elsewhere does not validate). */
export const S_UNIT = 1;
export const S_CLASS = 2;
export const S_COUNT = 3;
/** Free blocks (accelerator, may drift after a crash; the locked path never trusts it). */
export const S_FREE = 4;
/** Next slab of the class list (unit + 1, 0 = end). */
export const S_NEXT = 5;
export const S_UNITS = 6;
export const S_HEADER_WORDS = 8;
/** Bitmap starts here; then state words, then generations, then (aligned) data. */
export const S_BITMAP = S_HEADER_WORDS;

/** Words of the header segment for an arena of `maxUnits` units. */
// The nonce table must end before the unit table.
if (H_SEG_NONCES + MAX_SEGMENTS * SEG_NONCE_WORDS > H_UNITS) throw new Error('arena layout: nonce table overlaps units');

export function headerWords(maxUnits: number): number {
  return H_UNITS + maxUnits * UNIT_ENTRY_WORDS;
}

/** Header byte size rounded to the page size. */
export function headerBytes(maxUnits: number): number {
  return Math.ceil((headerWords(maxUnits) * 4) / 4096) * 4096;
}

/** Names: `<base>.h` and `<base>.d<N>.<nonce>` (see arenaDataSegmentName). */
export function headerName(base: string): string {
  return `${base}.h`;
}

/** The nonce (16 hex digits) as the two header words that record it. */
export function nonceWords(nonce: string): [hi: number, lo: number] {
  return [parseInt(nonce.slice(0, 8), 16) | 0, parseInt(nonce.slice(8), 16) | 0];
}

/** Name of data segment `index` whose nonce the header records as words `hi`, `lo`. Built from numbers, so a
 *  hostile table can only name a segment of this arena's own name space (`<base>.d<index>.<16 hex>`). */
export function segmentName(base: string, index: number, hi: number, lo: number): string {
  const hex = (w: number) => (w >>> 0).toString(16).padStart(8, '0');
  return arenaDataSegmentName(base, index, hex(hi) + hex(lo));
}
export const NAME_RE = /^[A-Za-z0-9._-]{1,200}$/;
