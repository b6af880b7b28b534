/**
 * The shm transport's ends over one ring pair, in plain SharedArrayBuffer memory (no kernel objects): what a
 * reader does when the channel ends in the middle of a batch.
 */
import { describe, expect, it } from 'vitest';
import type { Block } from '../../src/arena/index.js';
import { formatRingPair, ringPairBytes, ShmTransport } from '../../src/channel/shm-transport.js';
import { ringPair } from '../helpers/ring-pair.js';

const CAPACITY = 4096;
const W_WRITE = 2;
const W_READ = 3;

/** Stand-in for an arena block over `buffer`: each end holds its own. */
function block(buffer: SharedArrayBuffer): Block & { releases: number } {
  let held = true;
  const b = {
    buffer, offset: 0, length: buffer.byteLength, releases: 0,
    get held() {
      return held;
    },
    release() {
      if (!held) throw new Error('released twice');
      held = false;
      b.releases++;
    },
  };
  return b as unknown as Block & { releases: number };
}

/** A wake-up that rings nobody (one process: nothing sleeps). */
const QUIET = { wakePeer() {}, ringPeer() {} };

function pair() {
  const buffer = new SharedArrayBuffer(ringPairBytes(CAPACITY));
  const opener = block(buffer);
  formatRingPair(opener, CAPACITY);
  const accepterBlock = block(buffer);
  return {
    // the opener writes the first ring, whose header is at offset 0
    words: new Int32Array(buffer, 0, 16),
    writer: new ShmTransport(opener, true, QUIET),
    reader: new ShmTransport(accepterBlock, false, QUIET),
    accepterBlock,
  };
}

describe('shm transport ends', () => {
  it('a close inside the delivery callback stops the batch and never writes to the released ring', () => {
    const { words, writer, reader, accepterBlock } = pair();
    for (let i = 1; i <= 5; i++) expect(writer.write(i, 0, Buffer.from([i]))).toBe(true);
    const seen: number[] = [];
    const n = reader.read(100, (tag) => {
      seen.push(tag);
      reader.close(); // what Channel.close() inside a 'message' handler ends in
    });
    expect(seen).toEqual([1]);
    expect(n).toBe(1);
    expect(accepterBlock.releases).toBe(1);
    // The read count was not published into memory this end no longer holds.
    expect(Atomics.load(words, W_READ)).toBe(0);
    expect(reader.readable).toBe(false);
  });

  it('a drain inside the delivery callback continues after the record being delivered', () => {
    const { words, writer, reader } = pair();
    for (let i = 1; i <= 5; i++) writer.write(i, 0, Buffer.from([i]));
    const delivered: number[] = [];
    const drained: number[] = [];
    reader.read(100, (tag) => {
      delivered.push(tag);
      reader.stop();
      reader.discardInbound((t) => drained.push(t));
    });
    expect(delivered).toEqual([1]);
    expect(drained).toEqual([2, 3, 4, 5]);
    expect(Atomics.load(words, W_READ)).toBe(Atomics.load(words, W_WRITE));
    reader.close();
  });

  it('gives the space back once per batch, and along the way only once a sixteenth of the ring was read', () => {
    const { words, writer, reader } = pair();
    // 16-byte records (8 head + 4 request id + 4 body): a sixteenth of the 4096-byte ring is 16 of them.
    for (let i = 0; i < 40; i++) expect(writer.write(1, 0, Buffer.alloc(4, i))).toBe(true);
    const published: number[] = [];
    expect(reader.read(40, () => published.push(Atomics.load(words, W_READ)))).toBe(40);
    // Nothing given back during the first 16 visits; then the records before the one being visited, at most.
    expect(published.slice(0, 16).every((count) => count === 0)).toBe(true);
    expect(published[16]).toBe(16 * 16);
    expect(published[32]).toBe(32 * 16);
    expect(published.every((count, i) => count <= i * 16)).toBe(true);
    expect(Atomics.load(words, W_READ)).toBe(40 * 16);
    reader.close();
    writer.close();
  });

  it('a writer whose reader is gone takes back what was not read', () => {
    const { writer, reader } = pair();
    for (let i = 1; i <= 4; i++) writer.write(i, 0, Buffer.from([i]));
    reader.read(1, () => {});
    const back: number[] = [];
    writer.discardOutbound((t) => back.push(t));
    expect(back).toEqual([2, 3, 4]);
    writer.close();
    reader.close();
  });
});

describe('copying reads', () => {
  it('hand out private copies that outlive the ring space they came from, whatever the sizes, wraps and timing', () => {
    // 64 KiB: spans of many records, cut at 8 KiB (a record may start in one span and go on past it), and wraps.
    const { writer, reader } = ringPair(65536);
    const sent: Buffer[] = [];
    const kept: Array<{ requestId: number; body: Uint8Array; owned: boolean | undefined }> = [];
    const keep = (_tag: number, requestId: number, body: Uint8Array, owned?: boolean) => kept.push({ requestId, body, owned });
    const sizes = [1, 64, 300, 2000, 7, 64, 64, 1500, 0, 900, 64, 9000, 33, 5000];
    let next = 0;
    for (let round = 0; round < 400; round++) {
      // Write a few, read a few: reads meet records published after their span was copied.
      for (let k = 0; k < 1 + (round % 5); k++) {
        const size = sizes[next % sizes.length]!;
        const body = Buffer.alloc(size, next & 0xff);
        if (!writer.write(1, next, body)) break;
        sent.push(body);
        next++;
      }
      reader.read(1 + (round % 3), keep, true);
    }
    reader.read(1000, keep, true);
    expect(kept.length).toBe(sent.length);
    expect(kept.every((k) => k.owned === true)).toBe(true);
    // The ring was overwritten many times since: every copy still holds what was sent.
    expect(kept.every((k, i) => k.requestId === i && Buffer.from(k.body).equals(sent[i]!))).toBe(true);
    expect(kept.every((k) => !(k.body.buffer instanceof SharedArrayBuffer))).toBe(true);
  });
});
