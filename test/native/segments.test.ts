/**
 * POSIX shared-memory segments as SharedArrayBuffers: the same bytes in two processes, real cross-process
 * atomics, sharing with worker threads, and unmapping at GC after the mapping worker has gone.
 */
import { describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';

import { native } from '../../src/native.js';
import { Hammer, hammer, pattern, readyAndWait } from '../fixtures/native-shared.js';
import { moduleWorker } from '../../src/module-worker.js';
import { Child } from '../helpers/child.js';
import { expectClean, nodeChild, root, trackCreated } from './helpers.js';

const created = trackCreated();

describe('segments', () => {
  it('releases a segment\'s pages at once, mapped or not: mappings then read zeros', () => {
    const name = created.segment('release');
    native.shmCreate(name, 8 << 20, 0o600);
    const view = new Uint8Array(native.shmMap(name));
    view[5 << 20] = 42;
    expect(statSync(`/dev/shm/${name}`).blocks).toBeGreaterThanOrEqual((8 << 20) / 512); // reserved at create
    expect(native.shmReleasePages(name)).toBe(true);
    expect(statSync(`/dev/shm/${name}`).blocks).toBe(0); // given back, although still mapped here
    expect(statSync(`/dev/shm/${name}`).size).toBe(8 << 20);
    expect(view[5 << 20]).toBe(0);
    native.shmUnlink(name);
    expect(native.shmReleasePages(name)).toBe(false);
  });


  it('creates, sizes, lists, grows and unlinks a segment with the exact mode', () => {
    const name = created.segment('life');
    native.shmCreate(name, 10_000, 0o640);
    const st = statSync(`/dev/shm/${name}`);
    expect(st.mode & 0o777).toBe(0o640); // exact, whatever the umask
    expect(native.shmSize(name)).toBe(10_000);
    // posix_fallocate reserved the pages: tmpfs counts them as allocated blocks.
    expect(st.blocks * 512).toBeGreaterThanOrEqual(10_000);
    expect(native.shmList(`shmx.t.life.`)).toContain(name);
    native.shmGrow(name, 3 << 20);
    expect(native.shmSize(name)).toBe(3 << 20);
    expect(statSync(`/dev/shm/${name}`).blocks * 512).toBeGreaterThanOrEqual(3 << 20);
    native.shmGrow(name, 100); // never shrinks
    expect(native.shmSize(name)).toBe(3 << 20);
    expect(native.shmUnlink(name)).toBe(true);
    expect(native.shmUnlink(name)).toBe(false);
    expect(native.shmList(`shmx.t.life.`)).not.toContain(name);
  });

  it('refuses to create a segment that exists (O_EXCL) and keeps the existing one', () => {
    const name = created.segment('excl');
    native.shmCreate(name, 4096, 0o600);
    const err = (() => {
      try {
        native.shmCreate(name, 8192, 0o600);
      } catch (e) {
        return e as Record<string, unknown>;
      }
      return null;
    })();
    expect(err).toMatchObject({ code: 'EEXIST', syscall: 'shm_open', resource: name });
    expect(native.shmSize(name)).toBe(4096);
  });

  it('maps as a real SharedArrayBuffer: a child process writes, the parent reads the same bytes, and back', async () => {
    const name = created.segment('xproc');
    const len = 64 * 1024;
    native.shmCreate(name, 2 * len, 0o600);
    const buffer = native.shmMap(name);
    expect(buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(buffer.byteLength).toBe(2 * len);
    const bytes = new Uint8Array(buffer);
    const child = nodeChild('write', [name, len, 7]);
    await child.line('written');
    for (let i = 0; i < len; i++) {
      if (bytes[i] !== pattern(i, 7)) throw new Error(`byte ${i} differs: ${bytes[i]} != ${pattern(i, 7)}`);
    }
    for (let i = 0; i < len; i++) bytes[len + i] = pattern(i, 99);
    child.send('check 99');
    expect(await child.json<boolean>('verified')).toBe(true);
    expectClean(await child.exited);
  });

  it('Atomics.add and a compareExchange spin lock are exact across two processes', async () => {
    const name = created.segment('hammer');
    native.shmCreate(name, 4096, 0o600);
    const words = new Int32Array(native.shmMap(name));
    const iterations = 200_000;
    const child = nodeChild('hammer', [name, iterations]);
    // Both sides spin on `go` so that they really run at the same time.
    const deadline = Date.now() + 20_000;
    while (Atomics.load(words, Hammer.ready) < 1) {
      if (Date.now() > deadline) throw new Error('child never became ready');
      await new Promise((r) => setTimeout(r, 5));
    }
    Atomics.store(words, Hammer.go, 1);
    readyAndWait(words);
    const ours = hammer(words, iterations);
    const theirs = await child.json<number>('hammered');
    expectClean(await child.exited);
    expect(Atomics.load(words, Hammer.contended)).toBeGreaterThan(0); // they did run at the same time
    expect(Atomics.load(words, Hammer.atomic)).toBe(ours + theirs);
    expect(words[Hammer.locked]).toBe(ours + theirs);
    expect(Atomics.load(words, Hammer.lock)).toBe(0);
  });

  it('a mapped SharedArrayBuffer posted to a Worker shares memory both ways', async () => {
    const name = created.segment('worker');
    native.shmCreate(name, 4096, 0o600);
    const buffer = native.shmMap(name);
    const words = new Int32Array(buffer);
    words[0] = 1234;
    const worker = moduleWorker(new URL('../fixtures/native-worker.ts', import.meta.url), {
      workerData: { role: 'share', buffer },
    });
    try {
      const seen = await new Promise<number>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(seen).toBe(1234); // the worker read what the main thread wrote
      // The worker stored 5678 at word 1 before answering.
      expect(Atomics.load(words, 1)).toBe(5678);
      // A fresh mapping of the segment sees the worker's write: it went to the kernel object, not a copy.
      expect(new Int32Array(native.shmMap(name))[1]).toBe(5678);
      Atomics.store(words, 3, 42);
      Atomics.notify(words, 3);
      const echoed = await new Promise<number>((resolve) => worker.once('message', resolve));
      expect(echoed).toBe(42);
    } finally {
      await worker.terminate();
    }
  });

  it('unmaps at GC safely even after the Worker that mapped the segment has exited', async () => {
    const name = created.segment('gcworker');
    native.shmCreate(name, 1 << 20, 0o600);
    const child = Child.command(process.execPath, [
      '--expose-gc',
      '--import',
      'tsx',
      join(root, 'test', 'fixtures', 'native-worker-gc.ts'),
      name,
      '12',
    ]);
    const result = await child.exited;
    expectClean(result); // SIGSEGV here means the munmap deleter ran after the addon was unloaded
    const report = JSON.parse(result.stdout.trim().split('\n').pop()!.slice('done '.length)) as {
      rounds: number;
      mappingsWhileHeld: number;
      mappingsAfterGc: number;
      backend: string;
    };
    expect(report.rounds).toBe(12);
    expect(report.mappingsWhileHeld).toBeGreaterThan(0);
    expect(report.mappingsAfterGc).toBe(0); // every mapping was unmapped by GC in the main thread
  });

  it('reports how it makes SharedArrayBuffers: Node-API where the running node exports the call, else V8', () => {
    expect(['node-api', 'v8']).toContain(native.sharedBufferBackend);
    const expected = expectedBackend(process.versions.node);
    if (expected !== undefined) expect(native.sharedBufferBackend).toBe(expected);
  });
});

/**
 * The backend a node version must use: node_api_create_external_sharedarraybuffer first shipped in 22.23.3,
 * 24.16.0 and 26.1.0 (their changelogs); Node 20 never had it. undefined where it is not known (odd majors).
 */
function expectedBackend(version: string): 'node-api' | 'v8' | undefined {
  const [major, minor, patch] = version.split('.').map(Number) as [number, number, number];
  const first: Record<number, [number, number]> = { 22: [23, 3], 24: [16, 0], 26: [1, 0] };
  if (major <= 21) return 'v8';
  if (major > 26) return 'node-api';
  const since = first[major];
  if (since === undefined) return undefined;
  return minor > since[0] || (minor === since[0] && patch >= since[1]) ? 'node-api' : 'v8';
}
