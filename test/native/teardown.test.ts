/**
 * Native objects outliving their thread: pending futex waits and receiveAsync calls in Workers that are
 * terminated or exit, waiters dropped without close(), and a process exiting with both pending. Runs in a
 * child node (with --expose-gc) so that a crash is a failed exit status, not a dead test runner.
 */
import { describe, expect, it } from 'vitest';
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { native } from '../../src/native.js';
import { Child } from '../helpers/child.js';
import { expectClean, nodeChild, root, trackCreated } from './helpers.js';

const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as { resolve(dir: string): string };

const created = trackCreated();

describe('teardown', () => {
  it('Workers ended with a futex wait and a receiveAsync pending, and a process exiting with both, end cleanly', async () => {
    const name = created.segment('teardown');
    const queue = created.queue('teardown');
    native.shmCreate(name, 4096, 0o600);
    native.mqOpen(queue, { create: true }).close();
    const child = Child.command(process.execPath, [
      '--expose-gc',
      '--import',
      'tsx',
      join(root, 'test', 'fixtures', 'native-teardown.ts'),
      name,
      queue,
      '8',
    ]);
    const result = await child.exited;
    expectClean(result);
    expect(result.stdout).toContain('done');
  });

  it('the addon in use is the one SHMX_ADDON names, in this process and in children', async () => {
    const child = nodeChild('loaded', []);
    const loaded = await child.json<{ addon: string[]; asan: boolean }>('loaded');
    expectClean(await child.exited);
    // SHMX_ADDON, else what node-gyp-build picks: build/Release after a build from source, or the prebuild.
    const expected = realpathSync(process.env.SHMX_ADDON ?? nodeGypBuild.resolve(root));
    expect(loaded.addon).toEqual([expected]);
    // Under native/test-asan.sh the sanitizer runtime is preloaded everywhere.
    expect(loaded.asan).toBe(Boolean(process.env.SHMX_ADDON && /libasan/.test(process.env.LD_PRELOAD ?? '')));
  });
});
