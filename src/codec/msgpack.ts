/**
 * The msgpack codec, on msgpackr (pure JavaScript; its optional native string decoder, msgpackr-extract, is used
 * when installed and never needed). Loaded on first use, so importing shmx loads neither.
 *
 * Defaults: plain msgpack maps (no msgpackr "records", whose shared structures would tie both ends to one
 * state), `moreTypes` (typed arrays, Sets, Errors keep their type), Dates as timestamps, `Map`s decoded as plain
 * objects (msgpack has one map type). Values decoded from shared memory copy their binary data out.
 */
import { createRequire } from 'node:module';
import type { Options, Packr, Unpackr } from 'msgpackr';
import type { Codec } from './codec.js';

const require = createRequire(import.meta.url);

/** Options of {@link msgpackCodec}: msgpackr's own (https://github.com/kriszyp/msgpackr#options). */
export type MsgpackOptions = Options;

/**
 * A msgpack codec. Each call makes its own packers: two channels with different options do not meet.
 *
 * ```ts
 * const prices = await session.openChannel<Quote, Ack>({ codec: msgpackCodec(), metadata: { kind: 'prices' } });
 * prices.send({ symbol: 'ACME', bid: 10.5, at: new Date() });
 * ```
 */
export function msgpackCodec<T = unknown>(options: MsgpackOptions = {}): Codec<T> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const { Packr: PackrClass, Unpackr: UnpackrClass } = require('msgpackr') as typeof import('msgpackr');
  const settings: Options = { useRecords: false, moreTypes: true, ...options };
  // pack() encodes into msgpackr's own reused buffer and hands out a fresh part of it each time: no copy, and
  // earlier results stay valid (the channel may still queue them).
  const packer: Packr = new PackrClass(settings);
  // A second packer for encodeInto: useBuffer() makes the target its buffer for later packs too, so it must
  // never be the packer whose results are kept.
  const into: Packr = new PackrClass(settings);
  const owning: Unpackr = new UnpackrClass(settings);
  const copying: Unpackr = new UnpackrClass({ ...settings, copyBuffers: true });
  return {
    name: 'msgpack',
    encode: (value) => packer.pack(value),
    encodeInto(value, target) {
      into.useBuffer(Buffer.from(target.buffer, target.byteOffset, target.byteLength)); // a Buffer: msgpackr writes strings with its methods
      const out = into.pack(value);
      // msgpackr moves to a buffer of its own when the value does not fit the target.
      return out.buffer === target.buffer && out.byteOffset === target.byteOffset && out.byteLength <= target.byteLength ? out.byteLength : -1;
    },
    decode: (bytes, borrowed) => (borrowed ? copying : owning).unpack(bytes) as T,
  };
}
