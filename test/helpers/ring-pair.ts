/**
 * Both ends of one shm ring pair in this process, over a plain SharedArrayBuffer, with their wake-ups counted:
 * for tests of the ring protocol itself (no session, no peer process).
 */
import type { Block } from '../../src/arena/index.js';
import { formatRingPair, ringPairBytes, ShmTransport } from '../../src/channel/shm-transport.js';

/** A stand-in for an arena block: the whole buffer, never released. */
function wholeBuffer(buffer: SharedArrayBuffer): Block {
  return { buffer, offset: 0, length: buffer.byteLength, held: true, release() {} } as unknown as Block;
}

/** A formatted ring pair of `capacity` bytes each way; `wakes` counts the writer's wake-ups and the reader's rings. */
export function ringPair(capacity: number) {
  const buffer = new SharedArrayBuffer(ringPairBytes(capacity));
  formatRingPair(wholeBuffer(buffer), capacity);
  const wakes = { writer: 0, readerRings: 0 };
  const writer = new ShmTransport(wholeBuffer(buffer), true, { wakePeer: () => void wakes.writer++, ringPeer() {} });
  const reader = new ShmTransport(wholeBuffer(buffer), false, { wakePeer() {}, ringPeer: () => void wakes.readerRings++ });
  return { buffer, words: new Int32Array(buffer, 0, 16), writer, reader, wakes };
}
