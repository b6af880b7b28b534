/**
 * A full /dev/shm is a clean ENOSPC from shmCreate/shmGrow (posix_fallocate reserves the pages up front),
 * never a SIGBUS when the memory is first touched. shm_open always uses /dev/shm, so the child runs in a
 * private mount namespace with a 1 MiB tmpfs mounted over /dev/shm.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';

import { commandExists, expectClean, isRoot, root, inPrivateMountNamespace } from './helpers.js';

const canUnshare = isRoot && commandExists('unshare');

describe('ENOSPC', () => {
  it('shmCreate and shmGrow past the space fail with ENOSPC, leaving no segment and no SIGBUS', async (ctx) => {
    ctx.skip(!canUnshare, 'needs root and unshare(1) to mount a small tmpfs over /dev/shm in a private mount namespace');
    const script = join(root, 'test', 'fixtures', 'native-enospc.ts');
    const child = inPrivateMountNamespace(
      `mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "${process.execPath}" --import tsx "${script}"`,
    );
    const result = await child.exited;
    expectClean(result); // a SIGBUS would show as signal SIGBUS here
    const report = JSON.parse(result.stdout.split('\n').find((l) => l.startsWith('result '))!.slice(7)) as Record<
      string,
      unknown
    >;
    expect(report.shmSize).toBe(1024 * 1024); // the child really ran on the small tmpfs
    expect(report.createError).toMatchObject({
      name: 'ShmxError', // native errors are ShmxErrors (src/native.ts)
      code: 'ENOSPC',
      errno: 28,
      syscall: 'posix_fallocate',
      resource: expect.stringMatching(/^shmx\.t\.enospc\.big\./),
    });
    expect(String((report.createError as { message: string }).message)).toContain('/dev/shm cannot hold 4194304 more bytes');
    expect(report.afterCreate).toEqual([]); // the failed create removed its half-made segment
    expect(report.touchedSmall).toBe(64);
    expect(report.growError).toMatchObject({ code: 'ENOSPC', errno: 28, syscall: 'posix_fallocate' });
    expect(report.sizeAfterFailedGrow).toBe(256 * 1024); // a failed grow leaves the size unchanged
    expect(report.touchedAfterFailedGrow).toBe(64);
    expect(report.sizeAfterGrow).toBe(512 * 1024);
    expect(report.touchedGrown).toBe(128);
  });
});
