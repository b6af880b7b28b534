/**
 * The checksum every receiver computes over a payload, so that no path wins by not touching the data: the XOR
 * of the payload's 32-bit little-endian words (zero-padded), fed in chunks of any length and alignment (a
 * socket delivers a 1 GiB payload as thousands of chunks at arbitrary offsets of pooled buffers).
 *
 * XOR is lane-wise, so an aligned word read at any memory address can be rotated into the lanes of its stream
 * position: the bulk of every chunk is read as aligned Uint32 words — about as fast as JavaScript reads memory.
 */
export class Checksum {
  private acc = 0;
  private position = 0;

  update(chunk: Uint8Array): this {
    const n = chunk.byteLength;
    let i = 0;
    // Bytes before the first 4-aligned address, one at a time into their stream lane.
    const head = Math.min(n, (4 - (chunk.byteOffset & 3)) & 3);
    for (; i < head; i++) this.acc ^= chunk[i]! << (8 * ((this.position + i) & 3));
    const words = (n - i) >>> 2;
    if (words > 0) {
      const view = new Uint32Array(chunk.buffer, chunk.byteOffset + i, words);
      let x = 0;
      for (let w = 0; w < words; w++) x ^= view[w]!;
      // Byte 0 of every aligned word sits in stream lane r: rotate left by 8r.
      const r = (this.position + i) & 3;
      this.acc ^= r === 0 ? x : (x << (8 * r)) | (x >>> (32 - 8 * r));
      i += words * 4;
    }
    for (; i < n; i++) this.acc ^= chunk[i]! << (8 * ((this.position + i) & 3));
    this.position += n;
    return this;
  }

  /** Bytes seen so far. */
  get length(): number {
    return this.position;
  }

  /** The checksum as an unsigned 32-bit integer. */
  get value(): number {
    return this.acc >>> 0;
  }
}

/** Checksum of one contiguous payload. */
export function checksum(bytes: Uint8Array): number {
  return new Checksum().update(bytes).value;
}

/** The 8-byte reply every receiver sends: checksum and length (mod 2^32), little-endian. */
export function encodeReply(sum: number, length: number): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, sum >>> 0, true);
  view.setUint32(4, length >>> 0, true);
  return out;
}

/** Reads a reply made by {@link encodeReply}. */
export function decodeReply(bytes: Uint8Array): { sum: number; length: number } {
  if (bytes.byteLength < 8) return { sum: -1, length: -1 };
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  return { sum: view.getUint32(0, true), length: view.getUint32(4, true) };
}

/** Fills `bytes` with a cheap pseudo-random sequence (xorshift32), so a checksum of it is not trivially zero. */
export function fillPseudoRandom(bytes: Uint8Array, seed = 0x9e3779b9): void {
  const words = bytes.byteLength >>> 2;
  const view = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
  let x = seed | 0 || 1;
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view[i] = x;
  }
  for (let i = words * 4; i < bytes.byteLength; i++) bytes[i] = i & 0xff;
}
