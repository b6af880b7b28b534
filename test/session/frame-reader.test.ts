/**
 * The master channel's frame reader: however the stream is cut into chunks, the same frames come out, each payload
 * in one buffer of its exact length; a malformed or oversized header is refused before its payload is buffered.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EAGER_FRAME_BYTES, FrameReader, FrameType, HEADER_BYTES, encodeFrame, encodeFrameHeader } from '../../src/session/protocol.js';

const TYPES = [FrameType.Ping, FrameType.Channel, FrameType.ChannelData, FrameType.Close];

/** Cuts `stream` at the given offsets (any order, duplicates allowed). */
function cut(stream: Buffer, at: number[]): Buffer[] {
  const cuts = [...new Set(at.map((x) => x % (stream.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const c of [...cuts, stream.length]) {
    if (c > from) chunks.push(Buffer.from(stream.subarray(from, c))); // a chunk of its own, as the socket gives
    from = Math.max(from, c);
  }
  return chunks;
}

function reader(): FrameReader {
  const r = new FrameReader(64 * 1024);
  r.maxBulkPayload = 1 << 20;
  return r;
}

describe('FrameReader', () => {
  it('yields the same frames, in order, whatever the chunk boundaries', () => {
    const frame = fc.record({
      type: fc.constantFrom(...TYPES),
      payload: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 1000, maxLength: 70_000 })),
    });
    fc.assert(fc.property(fc.array(frame, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, at) => {
      const stream = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.payload)));
      const r = reader();
      const got = cut(stream, at).flatMap((c) => r.push(c));
      expect(got.map((f) => f.type)).toEqual(frames.map((f) => f.type));
      for (let i = 0; i < frames.length; i++) {
        expect(got[i]!.payload.length).toBe(frames[i]!.payload.length);
        expect(Buffer.compare(got[i]!.payload, frames[i]!.payload)).toBe(0);
      }
    }), { numRuns: 300 });
  });

  it('hands a frame that spans chunks over as one buffer of its own, and one within a chunk as a view of it', () => {
    const big = Buffer.alloc(100_000, 7);
    const stream = Buffer.concat([encodeFrame(FrameType.ChannelData, big), encodeFrame(FrameType.Ping)]);
    const r = reader();
    const chunks = cut(stream, [3, 50_000]);
    expect(r.push(chunks[0]!)).toEqual([]); // part of a header
    expect(r.push(chunks[1]!)).toEqual([]); // part of the payload
    const [data, ping] = r.push(chunks[2]!);
    expect(data!.payload.length).toBe(big.length);
    expect(data!.payload.buffer.byteLength).toBeGreaterThanOrEqual(big.length); // not a chunk's
    expect(data!.payload.equals(big)).toBe(true);
    expect(ping!.type).toBe(FrameType.Ping);
    expect(ping!.payload.buffer).toBe(chunks[2]!.buffer);
  });

  it('does not reserve a large frame on its header alone: at most four times what has arrived', () => {
    const r = new FrameReader(64 * 1024);
    r.maxBulkPayload = 2 ** 30;
    const before = process.memoryUsage().arrayBuffers;
    // A hostile peer's header for a 1 GiB frame, and a few bytes of it.
    expect(r.push(Buffer.concat([encodeFrameHeader(FrameType.ChannelData, 2 ** 30), Buffer.alloc(1024, 1)]))).toEqual([]);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(EAGER_FRAME_BYTES);
  });

  it('assembles a frame larger than EAGER_FRAME_BYTES exactly, across the point where its buffer is made', () => {
    const big = Buffer.allocUnsafe(2 * EAGER_FRAME_BYTES + 12_345);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 0xff;
    const stream = Buffer.concat([encodeFrame(FrameType.ChannelData, big), encodeFrame(FrameType.Ping)]);
    const r = new FrameReader(64 * 1024);
    r.maxBulkPayload = 2 ** 30;
    const got: Array<{ type: FrameType; payload: Buffer }> = [];
    const step = 1_000_003; // chunks that straddle the quarter mark and the frame's end
    for (let at = 0; at < stream.length; at += step) got.push(...r.push(stream.subarray(at, at + step)));
    expect(got.map((f) => f.type)).toEqual([FrameType.ChannelData, FrameType.Ping]);
    expect(got[0]!.payload.length).toBe(big.length);
    expect(got[0]!.payload.equals(big)).toBe(true);
  });

  it('refuses an oversized, unknown or unclean header as soon as it is complete, even split across chunks', () => {
    const header = (length: number, type: number, reserved = 0): Buffer => {
      const h = Buffer.alloc(HEADER_BYTES);
      h.writeUInt32LE(length, 0);
      h[4] = type;
      h[6] = reserved;
      return h;
    };
    const cases: Array<[Buffer, RegExp]> = [
      [header(64 * 1024 + 1, FrameType.Channel), /exceeds 65536/],
      [header((1 << 20) + 1, FrameType.ChannelData), /exceeds 1048576/],
      [header(0, 99), /bad frame header/],
      [header(0, FrameType.Ping, 1), /bad frame header/],
    ];
    for (const [h, message] of cases) {
      const r = reader();
      expect(r.push(h.subarray(0, 5))).toEqual([]);
      expect(() => r.push(h.subarray(5))).toThrow(message);
    }
    const handshaking = new FrameReader(4096); // no bulk frames before the session is open
    expect(() => handshaking.push(header(1, FrameType.ChannelData))).toThrow(/exceeds 0/);
  });
});
