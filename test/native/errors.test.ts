/**
 * Every error from a failing system call carries `code` (errno name or shmx code), `errno`, `syscall` and
 * `resource`, and says all of it in its message.
 */
import { describe, expect, it } from 'vitest';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';

import { native } from '../../src/native.js';
import { commandExists, expectClean, isRoot, nobodyChild, thrown, trackCreated } from './helpers.js';

const created = trackCreated();

function expectShape(err: Record<string, unknown>, code: string, syscall: string, resource: string): void {
  // Errors reported by a child arrive as their facts (name, message, code, ...), not as Error objects.
  if (err instanceof Error) expect(err.constructor).toBe(Error);
  else expect(err.name).toBe('Error');
  expect(err).toMatchObject({ code, syscall, resource });
  const errnos = constants.errno as Record<string, number>;
  expect(err.errno).toBe(code in errnos ? errnos[code] : 0);
  expect(String(err.message)).toContain(`(${code})`);
  expect(String(err.message)).toContain(resource);
}

describe('system-call errors', () => {
  it('segments: ENOENT, EEXIST, and EEMPTY for an empty one', () => {
    const missing = created.segment('missing');
    expectShape(thrown(() => native.shmSize(missing)), 'ENOENT', 'shm_open', missing);
    expectShape(thrown(() => native.shmMap(missing)), 'ENOENT', 'shm_open', missing);
    expectShape(thrown(() => native.shmGrow(missing, 4096)), 'ENOENT', 'shm_open', missing);
    const existing = created.segment('existing');
    native.shmCreate(existing, 4096, 0o600);
    expectShape(thrown(() => native.shmCreate(existing, 4096, 0o600)), 'EEXIST', 'shm_open', existing);
    const empty = created.segment('empty');
    writeFileSync(`/dev/shm/${empty}`, '');
    expectShape(thrown(() => native.shmMap(empty)), 'EEMPTY', 'mmap', empty);
  });

  it('queues: ENOENT, EEXIST, and ENOMQUEUEFS (or a listing) for mqList', () => {
    const missing = created.queue('missing');
    expectShape(thrown(() => native.mqOpen(missing)), 'ENOENT', 'mq_open', missing);
    const existing = created.queue('existing');
    native.mqOpen(existing, { create: true }).close();
    expectShape(thrown(() => native.mqOpen(existing, { create: true })), 'EEXIST', 'mq_open', existing);
    let listed: string[] | null = null;
    try {
      listed = native.mqList('shmx.t.existing.');
    } catch (err) {
      expectShape(err as Record<string, unknown>, 'ENOMQUEUEFS', 'statfs', '/dev/mqueue');
    }
    if (listed) expect(listed).toContain(existing);
  });

  it('process facts: ENOTSOCK and EBADF from getsockopt', () => {
    const fd = openSync('/proc/self/stat', 'r');
    expectShape(thrown(() => native.peerCredentials(fd)), 'ENOTSOCK', 'getsockopt', `fd ${fd}`);
    closeSync(fd);
    expectShape(thrown(() => native.peerCredentials(fd)), 'EBADF', 'getsockopt', `fd ${fd}`);
  });

  it('permission: EACCES for another user on 0600 objects', async (ctx) => {
    ctx.skip(!isRoot || !commandExists('setpriv'), 'needs root and setpriv(1) to run a child as user nobody');
    const segment = created.segment('denied');
    const queue = created.queue('denied');
    native.shmCreate(segment, 4096, 0o600);
    native.mqOpen(queue, { create: true, mode: 0o600 }).close();
    const child = nobodyChild('open-denied', [segment, queue]);
    const errors = await child.json<Array<Record<string, unknown>>>('errors');
    expectClean(await child.exited);
    expect(errors).toHaveLength(2);
    expectShape(errors[0]!, 'EACCES', 'shm_open', segment);
    expectShape(errors[1]!, 'EACCES', 'mq_open', queue);
  });
});
