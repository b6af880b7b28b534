/**
 * The mq wire format (mq-wire.ts): records packed into one queue message come out as they went in, one at a time;
 * whatever cannot be a record comes out as one record of tag 0 (the channel rejects it) and ends the message. The
 * kernel's part — the queue and the two processes — is in failures.test.ts (a hostile peer) and flow.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { MQ_RECORD_HEADER, MqBatch, MqRecords } from '../../src/channel/mq-wire.js';
import { OWN_BODY_MIN } from '../../src/channel/transport.js';

interface Seen {
  tag: number;
  requestId: number;
  body: number[];
  owned: boolean;
}

function reader(message: Uint8Array): { records: MqRecords; seen: Seen[]; visit: (t: number, r: number, b: Uint8Array, o?: boolean) => void } {
  const buffer = Buffer.alloc(message.byteLength + 64, 0xee); // stale bytes past the message
  buffer.set(message);
  const records = new MqRecords(buffer);
  records.reset(message.byteLength);
  const seen: Seen[] = [];
  return { records, seen, visit: (tag, requestId, body, owned) => seen.push({ tag, requestId, body: [...body], owned: owned === true }) };
}

describe('mq wire', () => {
  it('records put into a batch come out in order, and a reader may stop between two and go on', () => {
    const batch = new MqBatch(Buffer.alloc(100));
    batch.add(0x101, 7, Uint8Array.of(1, 2, 3));
    batch.add(0x201, 0, new Uint8Array(0));
    expect(batch.fits(100 - 2 * MQ_RECORD_HEADER - 3 - MQ_RECORD_HEADER)).toBe(true);
    expect(batch.fits(100 - 2 * MQ_RECORD_HEADER - 3 - MQ_RECORD_HEADER + 1)).toBe(false);
    batch.add(4, 9, Uint8Array.of(9));
    const { records, seen, visit } = reader(batch.bytes());
    records.next(visit);
    expect(records.more).toBe(true);
    records.visitRest(visit);
    expect(records.more).toBe(false);
    expect(seen).toEqual([
      { tag: 0x101, requestId: 7, body: [1, 2, 3], owned: false },
      { tag: 0x201, requestId: 0, body: [], owned: false },
      { tag: 4, requestId: 9, body: [9], owned: false },
    ]);
    batch.clear();
    expect(batch.isEmpty).toBe(true);
  });

  it('a batch never sent shows its records (their lends go back)', () => {
    const batch = new MqBatch(Buffer.alloc(64));
    const seen: number[] = [];
    batch.visit((tag) => seen.push(tag));
    expect(seen).toEqual([]);
    batch.add(2, 0, new Uint8Array(8));
    batch.add(3, 0, new Uint8Array(8));
    batch.visit((tag) => seen.push(tag));
    expect(seen).toEqual([2, 3]);
  });

  it(`a body of ${OWN_BODY_MIN} bytes or more leaves as a copy of its own`, () => {
    const batch = new MqBatch(Buffer.alloc(OWN_BODY_MIN + MQ_RECORD_HEADER));
    batch.add(1, 0, new Uint8Array(OWN_BODY_MIN).fill(5));
    const buffer = Buffer.from(batch.bytes());
    const records = new MqRecords(buffer);
    records.reset(buffer.byteLength);
    let got: Uint8Array | undefined;
    records.next((_t, _r, body, owned) => {
      expect(owned).toBe(true);
      got = body;
    });
    buffer.fill(0); // the next message received over it
    expect(got!.every((b) => b === 5)).toBe(true);
  });

  it.each([
    ['an empty message', []],
    ['a header cut short', [1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0]],
    ['a length running past the message', [1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 2, 3, 4]],
    ['a length of 2^32 - 1', [1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]],
  ])('%s comes out as one record of tag 0 and ends the message', (_what, bytes) => {
    const { records, seen, visit } = reader(Uint8Array.from(bytes));
    records.visitRest(visit);
    expect(seen).toEqual([{ tag: 0, requestId: 0, body: bytes, owned: false }]);
    expect(records.more).toBe(false);
  });

  it('a good record followed by garbage: the good one, then tag 0 with the rest', () => {
    const batch = new MqBatch(Buffer.alloc(64));
    batch.add(1, 0, Uint8Array.of(42));
    const message = Buffer.concat([batch.bytes(), Buffer.from([9, 9, 9])]);
    const { records, seen, visit } = reader(message);
    records.visitRest(visit);
    expect(seen).toEqual([
      { tag: 1, requestId: 0, body: [42], owned: false },
      { tag: 0, requestId: 0, body: [9, 9, 9], owned: false },
    ]);
  });
});
