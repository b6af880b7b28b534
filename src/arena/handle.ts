/**
 * Handles: what `lend()` gives and `borrow()` takes. A handle names a block by arena id, global offset,
 * length and generation; it carries no pointer and grants nothing by itself — `borrow()` validates every
 * field against the arena before it touches the block.
 *
 * Wire form (32 bytes, little-endian):
 *
 * ```
 *  0  u32 magic 'shH1'        4  u32 arena id (low)    8  u32 arena id (high)
 * 12  u32 offset (low)       16  u32 offset (high)    20  u32 length (low)
 * 24  u32 length (high)      28  u32 generation
 * ```
 */
import { ShmxError } from '../errors.js';

/** The plain-object form of a handle (safe to JSON-serialise). */
export interface Handle {
  /** Arena id: 16 lowercase hex digits, unique per created arena. */
  readonly arena: string;
  /** Global byte offset of the block in the arena. */
  readonly offset: number;
  /** Length in bytes the borrower sees (≤ the block's capacity). */
  readonly length: number;
  /** Generation of the block when it was lent (uint32). */
  readonly generation: number;
}

/** Size of an encoded handle in bytes. */
export const HANDLE_BYTES = 32;
const HANDLE_MAGIC = 0x31486873; // 'shH1' little-endian
const TWO32 = 2 ** 32;

/** Arena id string from its two header words. */
export function arenaIdString(lo: number, hi: number): string {
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

function stale(message: string): ShmxError {
  return new ShmxError('ESTALEHANDLE', message);
}

/** Checks the shape of a plain handle (TypeError on a non-object, ESTALEHANDLE on impossible values). */
export function checkHandle(h: unknown): Handle {
  if (typeof h !== 'object' || h === null) throw new TypeError('handle must be an object or a Uint8Array');
  const { arena, offset, length, generation } = h as Record<string, unknown>;
  if (
    typeof arena !== 'string' ||
    !/^[0-9a-f]{16}$/.test(arena) ||
    typeof offset !== 'number' ||
    !Number.isSafeInteger(offset) ||
    offset < 0 ||
    typeof length !== 'number' ||
    !Number.isSafeInteger(length) ||
    length < 1 ||
    typeof generation !== 'number' ||
    !Number.isInteger(generation) ||
    generation < 0 ||
    generation >= TWO32
  ) {
    throw stale('malformed handle');
  }
  return { arena, offset, length, generation };
}

/** Serialises a handle into 32 bytes (into `target` at `targetOffset` when given). */
export function encodeHandle(handle: Handle, target?: Uint8Array, targetOffset = 0): Uint8Array {
  const h = checkHandle(handle);
  const out = target ?? new Uint8Array(HANDLE_BYTES);
  if (!(out instanceof Uint8Array)) throw new TypeError('target must be a Uint8Array');
  if (!Number.isInteger(targetOffset) || targetOffset < 0 || targetOffset + HANDLE_BYTES > out.length) {
    throw new RangeError(`target needs ${HANDLE_BYTES} bytes at offset ${targetOffset}`);
  }
  const dv = new DataView(out.buffer, out.byteOffset + targetOffset, HANDLE_BYTES);
  dv.setUint32(0, HANDLE_MAGIC, true);
  dv.setUint32(4, parseInt(h.arena.slice(8), 16), true);
  dv.setUint32(8, parseInt(h.arena.slice(0, 8), 16), true);
  dv.setUint32(12, h.offset % TWO32, true);
  dv.setUint32(16, Math.floor(h.offset / TWO32), true);
  dv.setUint32(20, h.length % TWO32, true);
  dv.setUint32(24, Math.floor(h.length / TWO32), true);
  dv.setUint32(28, h.generation, true);
  return out;
}

/** A handle as its 32 bytes carry it: the arena id as its two words (what the channel fast path compares). */
export interface HandleWords {
  idLo: number;
  idHi: number;
  offset: number;
  length: number;
  generation: number;
}

/**
 * Reads 32 bytes (at `offset`) without building the id string. Wrong size or magic, or impossible values →
 * `ESTALEHANDLE`; a non-Uint8Array → TypeError.
 */
export function readHandle(bytes: Uint8Array, offset = 0): HandleWords {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('handle bytes must be a Uint8Array');
  if (!Number.isInteger(offset) || offset < 0) throw new RangeError('offset must be a non-negative integer');
  if (bytes.length - offset < HANDLE_BYTES) throw stale(`handle needs ${HANDLE_BYTES} bytes`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, HANDLE_BYTES);
  if (dv.getUint32(0, true) !== HANDLE_MAGIC) throw stale('not a handle (bad magic)');
  const h = {
    idLo: dv.getUint32(4, true),
    idHi: dv.getUint32(8, true),
    offset: dv.getUint32(12, true) + dv.getUint32(16, true) * TWO32,
    length: dv.getUint32(20, true) + dv.getUint32(24, true) * TWO32,
    generation: dv.getUint32(28, true),
  };
  if (!Number.isSafeInteger(h.offset) || !Number.isSafeInteger(h.length) || h.length < 1) throw stale('malformed handle');
  return h;
}

/** Writes a handle's 32 bytes from numbers the arena vouches for (its own lend: no checks needed). */
export function writeHandle(idLo: number, idHi: number, offset: number, length: number, generation: number): Uint8Array {
  const out = new Uint8Array(HANDLE_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, HANDLE_MAGIC, true);
  dv.setUint32(4, idLo, true);
  dv.setUint32(8, idHi, true);
  dv.setUint32(12, offset % TWO32, true);
  dv.setUint32(16, Math.floor(offset / TWO32), true);
  dv.setUint32(20, length % TWO32, true);
  dv.setUint32(24, Math.floor(length / TWO32), true);
  dv.setUint32(28, generation, true);
  return out;
}

/**
 * Parses 32 bytes (at `offset`) into a handle. Wrong size or magic → `ESTALEHANDLE` (garbage is never a
 * handle); a non-Uint8Array → TypeError.
 */
export function decodeHandle(bytes: Uint8Array, offset = 0): Handle {
  const h = readHandle(bytes, offset);
  return checkHandle({ arena: arenaIdString(h.idLo, h.idHi), offset: h.offset, length: h.length, generation: h.generation });
}
