/**
 * Bad arguments are TypeError/RangeError with an exact message, thrown before any system call: no segment or
 * queue appears, whatever the call was about to create.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';

import { native } from '../../src/native.js';
import { Created, leftoverSegments, thrown } from './helpers.js';

const created = new Created();
afterAll(() => {
  created.removeAll();
  expect(created.leftovers()).toEqual([]);
  expect(leftoverSegments()).toEqual([]);
});

// Valid names that the calls below would create if they reached the kernel.
const seg = created.segment('valid');
const queue = created.queue('valid');
const sab = new SharedArrayBuffer(16);
const n = native as unknown as Record<string, (...args: unknown[]) => unknown>;

type Row = [label: string, call: () => unknown, cls: typeof TypeError | typeof RangeError, message: string];

const rows: Row[] = [
  // names
  ['name with /', () => native.shmCreate('a/b', 4096, 0o600), RangeError, "name must not contain '/': 'a/b'"],
  ['empty name', () => native.shmCreate('', 4096, 0o600), RangeError, 'name must not be empty'],
  ['name > 250 bytes', () => native.shmCreate('x'.repeat(251), 4096, 0o600), RangeError, `name is longer than 250 bytes: '${'x'.repeat(40)}...'`],
  ['name ..', () => native.shmCreate('..', 4096, 0o600), RangeError, "name must not be '.' or '..'"],
  ['name .', () => native.shmUnlink('.'), RangeError, "name must not be '.' or '..'"],
  ['name with a space', () => native.shmCreate('a b', 4096, 0o600), RangeError, "name may hold only [A-Za-z0-9._-]: 'a b'"],
  ['name with non-ASCII', () => native.mqOpen('é', { create: true }), RangeError, "name may hold only [A-Za-z0-9._-]: 'é'"],
  ['name not a string', () => n.shmCreate!(42, 4096, 0o600), TypeError, 'name must be a string'],
  ['name missing', () => n.shmSize!(), TypeError, 'name must be a string'],
  ['mq name with /', () => native.mqOpen('/q', { create: true }), RangeError, "name must not contain '/': '/q'"],
  ['mqUnlink name', () => n.mqUnlink!(null), TypeError, 'name must be a string'],
  ['prefix with /', () => native.shmList('a/b'), RangeError, "prefix must not contain '/': 'a/b'"],
  ['prefix not a string', () => n.mqList!(5), TypeError, 'prefix must be a string'],
  // sizes
  ['size 0', () => native.shmCreate(seg, 0, 0o600), RangeError, 'size must be in [1, 1099511627776], got 0'],
  ['size negative', () => native.shmCreate(seg, -1, 0o600), RangeError, 'size must be in [1, 1099511627776], got -1'],
  ['size NaN', () => native.shmCreate(seg, NaN, 0o600), RangeError, 'size must be an integer, got NaN'],
  ['size 1.5', () => native.shmCreate(seg, 1.5, 0o600), RangeError, 'size must be an integer, got 1.5'],
  ['size Infinity', () => native.shmCreate(seg, Infinity, 0o600), RangeError, 'size must be an integer, got Infinity'],
  ['size > 1 TiB', () => native.shmCreate(seg, 2 ** 40 + 1, 0o600), RangeError, 'size must be in [1, 1099511627776], got 1099511627777'],
  ['size a string', () => n.shmCreate!(seg, '4096', 0o600), TypeError, 'size must be a number'],
  ['mode too large', () => native.shmCreate(seg, 4096, 0o1000), RangeError, 'mode must be in [0, 511], got 512'],
  ['grow to 0', () => native.shmGrow(seg, 0), RangeError, 'size must be in [1, 1099511627776], got 0'],
  // futex words
  ['futex on an ArrayBuffer', () => n.futexWait!(new ArrayBuffer(8), 0, 0, 0), TypeError, 'buffer must be a SharedArrayBuffer'],
  ['futex on a view', () => n.futexWake!(new Int32Array(sab), 0, 1), TypeError, 'buffer must be a SharedArrayBuffer'],
  ['futex unaligned', () => native.futexWait(sab, 2, 0, 0), RangeError, 'byteOffset must be a multiple of 4, got 2'],
  ['futex out of range', () => native.futexWait(sab, 16, 0, 0), RangeError, 'byteOffset 16 is outside the buffer (16 bytes)'],
  ['futex negative offset', () => native.futexWake(sab, -4, 1), RangeError, 'byteOffset must be in [0, 1099511627776], got -4'],
  ['futex count 0', () => native.futexWake(sab, 0, 0), RangeError, 'count must be in [1, 2147483647], got 0'],
  ['futex expected 2^32', () => native.futexWait(sab, 0, 2 ** 32, 0), RangeError, 'expected must be in [-2147483648, 4294967295], got 4294967296'],
  ['futex timeout 1.5', () => native.futexWait(sab, 0, 0, 1.5), RangeError, 'timeoutMs must be an integer, got 1.5'],
  ['waiter on an ArrayBuffer', () => n.createFutexWaiter!(new ArrayBuffer(8), 0), TypeError, 'buffer must be a SharedArrayBuffer'],
  ['waiter unaligned', () => native.createFutexWaiter(sab, 6), RangeError, 'byteOffset must be a multiple of 4, got 6'],
  // message-queue options
  ['mq options not an object', () => n.mqOpen!(queue, 5), TypeError, 'options must be an object'],
  ['mq create not boolean', () => n.mqOpen!(queue, { create: 'yes' }), TypeError, 'options.create must be a boolean'],
  ['mq exclusive not boolean', () => n.mqOpen!(queue, { create: true, exclusive: 1 }), TypeError, 'options.exclusive must be a boolean'],
  ['mq maxMessages 0', () => native.mqOpen(queue, { create: true, maxMessages: 0 }), RangeError, 'options.maxMessages must be an integer in [1, 65536], got 0'],
  ['mq maxMessages 1.5', () => native.mqOpen(queue, { create: true, maxMessages: 1.5 }), RangeError, 'options.maxMessages must be an integer in [1, 65536], got 1.5'],
  ['mq maxMessages NaN', () => native.mqOpen(queue, { create: true, maxMessages: NaN }), RangeError, 'options.maxMessages must be an integer in [1, 65536], got NaN'],
  ['mq messageSize string', () => n.mqOpen!(queue, { create: true, messageSize: '8' }), TypeError, 'options.messageSize must be a number'],
  ['mq messageSize 32 MiB', () => native.mqOpen(queue, { create: true, messageSize: 2 ** 25 }), RangeError, 'options.messageSize must be an integer in [1, 16777216], got 33554432'],
  ['mq mode too large', () => native.mqOpen(queue, { create: true, mode: 0o1000 }), RangeError, 'options.mode must be an integer in [0, 511], got 512'],
  // pids and descriptors
  ['pid 0', () => native.isAlive(0), RangeError, 'pid must be in [1, 4194304], got 0'],
  ['pid negative', () => native.isAlive(-1), RangeError, 'pid must be in [1, 4194304], got -1'],
  ['pid a string', () => n.isAlive!('1'), TypeError, 'pid must be a number'],
  ['start time of pid 0', () => native.processStartTime(0), RangeError, 'pid must be in [1, 4194304], got 0'],
  ['executable of pid -5', () => native.executablePath(-5), RangeError, 'pid must be in [1, 4194304], got -5'],
  ['pid above PID_MAX_LIMIT', () => native.isAlive(2 ** 23), RangeError, 'pid must be in [1, 4194304], got 8388608'],
  ['fd negative', () => native.peerCredentials(-1), RangeError, 'fd must be in [0, 2147483647], got -1'],
];

describe('argument validation', () => {
  it.each(rows)('%s', (_label, call, cls, message) => {
    const err = thrown(call);
    expect(err).toBeInstanceOf(cls);
    expect(err.constructor).toBe(cls); // exactly that class, not a subclass or a NativeError
    expect(err.message).toBe(message);
    expect(err.code).toBeUndefined(); // not a system-call error
  });

  it('nothing reached the kernel: neither the valid segment nor the valid queue exists', () => {
    for (const [, call] of rows) thrown(call);
    expect(existsSync(`/dev/shm/${seg}`)).toBe(false);
    expect(thrown(() => native.mqOpen(queue))).toMatchObject({ code: 'ENOENT' });
    expect(created.leftovers()).toEqual([]);
  });

  it('message-queue calls check their arguments; a closed queue is ECLOSED', () => {
    const q = native.mqOpen(queue, { create: true, maxMessages: 2, messageSize: 8 });
    try {
      const m = q as unknown as Record<string, (...args: unknown[]) => unknown>;
      expect(thrown(() => m.send!('text'))).toMatchObject({ constructor: TypeError, message: 'data must be a TypedArray or DataView' });
      expect(thrown(() => m.send!(new ArrayBuffer(4)))).toMatchObject({ constructor: TypeError });
      expect(thrown(() => q.send(new Uint8Array(1), -1))).toMatchObject({
        constructor: RangeError,
        message: 'priority must be in [0, 32767], got -1',
      });
      expect(thrown(() => q.send(new Uint8Array(1), 32768))).toMatchObject({ constructor: RangeError });
      expect(q.attributes().currentMessages).toBe(0);
    } finally {
      q.close();
      native.mqUnlink(queue);
    }
    for (const call of [() => q.send(new Uint8Array(1)), () => q.receive(), () => q.attributes()]) {
      expect(thrown(call)).toMatchObject({ code: 'ECLOSED', errno: 0, syscall: 'mq', resource: queue });
    }
    // Argument errors still come first on a closed queue.
    expect(thrown(() => (q as unknown as { send: (x: unknown) => void }).send(1))).toBeInstanceOf(TypeError);
  });

  it('futex timeouts below zero all mean "no limit", as documented', async () => {
    const waiter = native.createFutexWaiter(sab, 0);
    const pending = waiter.wait(0, -5);
    await new Promise((r) => setTimeout(r, 30));
    expect(waiter.busy).toBe(true);
    waiter.close();
    expect(await pending).toBe('cancelled');
    expect(thrown(() => waiter.wait(0, 1.5))).toBeInstanceOf(RangeError);
  });
});
