/**
 * The codec contract of typed channels: how a value becomes bytes and back. shmx ships two — msgpack
 * (msgpack.ts) and raw bytes (raw.ts) — and any object with this shape plugs in (JSON, flatbuffers, capnp).
 */

/**
 * Turns values into bytes and back. `encode` is required; `encodeInto` lets a typed channel write a large value
 * straight into an arena block, and a small one straight into the ring of a `shm` channel, instead of encoding
 * and copying.
 */
export interface Codec<T = unknown> {
  /** A short name, for errors and logs. */
  readonly name: string;
  /**
   * Encodes `value`. The bytes must stay valid and unchanged after the call (the channel may queue them): a
   * codec that encodes into a reused buffer returns a fresh part of it each time (msgpackr does).
   */
  encode(value: T): Uint8Array;
  /**
   * Optional: encodes `value` into `target` (from offset 0) and returns the byte count, or -1 when it does not
   * fit (the target's contents are then unspecified). Typed channels use it to encode values in place: `target`
   * is shared memory (an arena block, a channel's ring) that is only lent for the call — keep no reference to it
   * and write nothing into it once the call returned.
   */
  encodeInto?(value: T, target: Uint8Array): number;
  /**
   * Decodes one value from exactly `bytes`. `borrowed` is true when `bytes` is shared memory that stays valid
   * only until the message is released: the value must then hold no views into it (copy what it keeps).
   */
  decode(bytes: Uint8Array, borrowed: boolean): T;
}

/** Checks that `codec` has the shape of a {@link Codec} (TypeError otherwise, before anything is sent). */
export function checkCodec(codec: unknown): Codec {
  const c = codec as Partial<Codec> | null;
  if (typeof c !== 'object' || c === null || typeof c.encode !== 'function' || typeof c.decode !== 'function') {
    throw new TypeError('codec must be an object with encode(value) and decode(bytes, borrowed) methods');
  }
  if (c.encodeInto !== undefined && typeof c.encodeInto !== 'function') throw new TypeError('codec.encodeInto must be a function');
  if (typeof c.name !== 'string') throw new TypeError('codec.name must be a string');
  return c as Codec;
}
