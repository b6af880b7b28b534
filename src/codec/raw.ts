/**
 * The raw-bytes codec: values are `Uint8Array`s, sent as they are. For a typed channel that carries bytes next
 * to channels that carry objects, with the same API.
 */
import type { Codec } from './codec.js';

/** Bytes in, bytes out. A received value that came in shared memory is copied (it outlives the message). */
export const rawCodec: Codec<Uint8Array> = {
  name: 'raw',
  encode(value) {
    if (!(value instanceof Uint8Array)) throw new TypeError('the raw codec sends Uint8Arrays only');
    return value;
  },
  encodeInto(value, target) {
    if (!(value instanceof Uint8Array)) throw new TypeError('the raw codec sends Uint8Arrays only');
    if (value.byteLength > target.byteLength) return -1;
    target.set(value);
    return value.byteLength;
  },
  decode(bytes, borrowed) {
    return borrowed ? bytes.slice() : bytes;
  },
};
