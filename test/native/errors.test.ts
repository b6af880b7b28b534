/**
 * One error family (issue 11 item 5): a failing system call in the addon throws a ShmxError — the prototype of
 * every other shmx error — with the kernel's errno name as `code`, the `errno` value, the `syscall` and the
 * `resource`; so do the methods of the addon's objects. Argument checks stay TypeError / RangeError. `hasCode`
 * narrows, and `code` is a union of the documented codes (checked by the typecheck: see the ts-expect-error).
 */
import { describe, expect, it } from 'vitest';
import { hasCode, ShmxError, type ShmxErrorCode } from '../../src/index.js';
import { native } from '../../src/native.js';
import { uniqueObjectName } from '../helpers/names.js';

describe('native errors', () => {
  it('a failing system call throws a ShmxError with errno, syscall and resource', () => {
    const name = uniqueObjectName('err');
    let err: unknown;
    try {
      native.shmSize(name);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShmxError);
    expect(hasCode(err, 'ENOENT')).toBe(true);
    const e = err as ShmxError;
    expect(e.name).toBe('ShmxError');
    expect(e.errno).toBe(2);
    expect(typeof e.syscall).toBe('string');
    expect(e.resource).toContain(name);
  });

  it('a method of an addon object throws a ShmxError too; argument checks stay TypeError', () => {
    const name = uniqueObjectName('errq');
    const queue = native.mqOpen(name, { create: true, maxMessages: 1, messageSize: 64 });
    try {
      expect(() => native.shmSize(42 as unknown as string)).toThrow(TypeError);
      queue.close();
      let err: unknown;
      try {
        queue.attributes();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ShmxError);
    } finally {
      native.mqUnlink(name);
    }
  });

  it('hasCode narrows to an error with that code', () => {
    const err: unknown = new ShmxError('EQUOTA', 'x');
    if (hasCode(err, 'EQUOTA')) {
      const code: 'EQUOTA' = err.code; // typed by the guard
      expect(code).toBe('EQUOTA');
    } else {
      throw new Error('hasCode should have matched');
    }
    const codes: ShmxErrorCode[] = ['EHOSED', 'ETIMEDOUT', 'ABORT_ERR', 'ENOENT', 'ESENDQUEUEFULL'];
    expect(codes.length).toBe(5);
    // @ts-expect-error — not a code shmx documents (the typecheck fails if this compiles)
    expect(hasCode(err, 'NOT_A_CODE')).toBe(false);
  });
});
