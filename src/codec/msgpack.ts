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
/** The private buffer msgpackr gets back after an encodeInto (its own default size). */
const SPARE_BYTES = 8192;

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
  // encodeInto's packer. Beware: msgpackr's buffer and position are of the module, shared by every Packr of the
  // process — useBuffer(target) makes the target the buffer of the next pack *anywhere* (ours, other codecs',
  // the application's). Left there, the next pack would write into shared memory we no longer own (the ring
  // past a committed record, an arena block already sent). So encodeInto hands msgpackr a private buffer of
  // ours right after (`spare`), renewed once a pack may have used it: msgpackr's earlier results are never
  // written over.
  const into: Packr = new PackrClass(settings);
  let spare: Buffer | undefined;
  const owning: Unpackr = new UnpackrClass(settings);
  const copying: Unpackr = new UnpackrClass({ ...settings, copyBuffers: true });
  return {
    name: 'msgpack',
    encode: (value) => packer.pack(value),
    encodeInto(value, target) {
      // useBuffer() sets the position to 0 and any pack moves it on: still 0, nothing was packed into the spare.
      if (spare === undefined || into.position !== 0) spare = Buffer.allocUnsafeSlow(SPARE_BYTES);
      into.useBuffer(Buffer.from(target.buffer, target.byteOffset, target.byteLength)); // a Buffer: msgpackr writes strings with its methods
      let out: Uint8Array;
      try {
        out = into.pack(value);
      } finally {
        into.useBuffer(spare);
      }
      // msgpackr moves to a buffer of its own when the value does not fit the target.
      return out.buffer === target.buffer && out.byteOffset === target.byteOffset && out.byteLength <= target.byteLength ? out.byteLength : -1;
    },
    decode: (bytes, borrowed) => (borrowed ? copying : owning).unpack(bytes) as T,
  };
}
