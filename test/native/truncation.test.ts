/**
 * Mappings that survive truncation (native/sigbus.cc): a segment shrunk by another process faults our mapping
 * — zero pages, `shmFaulted`, the epoch word — instead of killing this process with SIGBUS; a SIGBUS anywhere
 * else still goes to the handler that was there before ours (the default action, or ASAN's under test:asan).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { native } from '../../src/native.js';
import { root, trackCreated } from './helpers.js';

const created = trackCreated();
const epoch = new Int32Array(native.segmentFaultEpoch);
// The binary this process loaded, by the loader's own rule (build/Release, else the matching prebuild: CI
// installs no build from source).
const addon = process.env.SHMX_ADDON ?? (createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string }).path(root);
const underAsan = (process.env.LD_PRELOAD ?? '').includes('libasan');

/** Shrinks a segment from another process (coreutils `truncate`), as a hostile peer would. */
function truncateElsewhere(name: string, size = 0): void {
  execFileSync('truncate', ['-s', String(size), `/dev/shm/${name}`]);
}

const scratch = mkdtempSync(join(tmpdir(), 'shmx-trunc-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('truncated segments', () => {
  it('a segment truncated by another process reads zeros here, is reported faulted and the epoch moves', () => {
    expect(native.sigbusHandler).toBe(true);
    const name = created.segment('trunc');
    native.shmCreate(name, 256 << 10, 0o600);
    const buffer = native.shmMap(name);
    const words = new Int32Array(buffer);
    Atomics.store(words, 1000, 42);
    expect(native.shmFaulted(buffer)).toBe(false);
    const before = Atomics.load(epoch, 0);

    truncateElsewhere(name);
    expect(native.shmFaulted(buffer)).toBe(false); // nothing noticed until something touches it
    expect(Atomics.load(words, 1000)).toBe(0); // SIGBUS, handled: the whole mapping is zero pages now
    expect(native.shmFaulted(buffer)).toBe(true);
    expect(Atomics.load(epoch, 0)).toBe(before + 1);
    // Later accesses, anywhere in the mapping, are plain memory accesses: no further fault, no further bump.
    Atomics.store(words, words.length - 1, 7);
    expect(Atomics.load(words, words.length - 1)).toBe(7);
    expect(Atomics.load(epoch, 0)).toBe(before + 1);
    // What we write there is private: the segment (what is left of it) never sees it.
    native.shmGrow(name, 256 << 10);
    expect(Atomics.load(new Int32Array(native.shmMap(name)), words.length - 1)).toBe(0);
    native.shmUnlink(name);
  });

  it('a partial shrink faults the mapping on the first access past the new end', () => {
    const name = created.segment('partial');
    native.shmCreate(name, 64 << 10, 0o600);
    const buffer = native.shmMap(name);
    const bytes = new Uint8Array(buffer);
    bytes[100] = 9;
    truncateElsewhere(name, 4096);
    expect(bytes[100]).toBe(9); // the first page is still there: no fault yet
    expect(native.shmFaulted(buffer)).toBe(false);
    expect(bytes[60_000]).toBe(0); // past the end: SIGBUS, handled
    expect(native.shmFaulted(buffer)).toBe(true);
    expect(bytes[100]).toBe(0); // the whole mapping was replaced, consistently
    native.shmUnlink(name);
  });

  it('futex calls on a truncated word fault the mapping instead of failing (EFAULT from the kernel)', () => {
    const name = created.segment('futex');
    native.shmCreate(name, 4096, 0o600);
    const buffer = native.shmMap(name);
    truncateElsewhere(name);
    const before = Atomics.load(epoch, 0);
    expect(native.futexWake(buffer, 0, 1)).toBe(0);
    expect(native.shmFaulted(buffer)).toBe(true);
    expect(Atomics.load(epoch, 0)).toBe(before + 1);
    // The word is private zero memory now: a wait on it behaves like on any word.
    expect(native.futexWait(buffer, 0, 1, 10)).toBe('not-equal');
    expect(native.futexWait(buffer, 0, 0, 1)).toBe('timed-out');
    native.shmUnlink(name);
  });

  it('a segment mapped in a Worker and truncated is faulted for every thread of the process', async () => {
    const name = created.segment('worker');
    native.shmCreate(name, 64 << 10, 0o600);
    const buffer = native.shmMap(name);
    const { Worker } = await import('node:worker_threads');
    truncateElsewhere(name);
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const words = new Int32Array(workerData);
       parentPort.postMessage(Atomics.load(words, 10));`,
      { eval: true, workerData: buffer },
    );
    const read = await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));
    await worker.terminate();
    expect(read).toBe(0);
    expect(native.shmFaulted(buffer)).toBe(true); // one mapping, one fault, seen from the main thread too
    native.shmUnlink(name);
  });

  it('a SIGBUS outside our mappings still ends the process as before (chained to the previous handler)', () => {
    // A shared library whose constructor maps a file of its own, shrinks it and touches it: a real fault at an
    // address that is not one of shmx's mappings, in a process where the handler is installed and working.
    const source = join(scratch, 'foreign.c');
    const library = join(scratch, 'foreign.so');
    writeFileSync(
      source,
      `#include <fcntl.h>
       #include <stdlib.h>
       #include <sys/mman.h>
       #include <unistd.h>
       __attribute__((constructor)) static void fault_outside(void) {
         char path[] = "/dev/shm/trunc-foreign-XXXXXX";
         int fd = mkstemp(path);
         if (fd < 0 || ftruncate(fd, 4096) != 0) _exit(3);
         volatile char* p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
         if (p == MAP_FAILED) _exit(4);
         unlink(path);
         if (ftruncate(fd, 0) != 0) _exit(5);
         p[0] = 1;
         _exit(6);
       }`,
    );
    execFileSync('cc', ['-shared', '-fPIC', '-o', library, source]);
    const name = created.segment('chain');
    const script = `
      const n = require(${JSON.stringify(addon)});
      n.shmCreate(${JSON.stringify(name)}, 4096, 0o600);
      const words = new Int32Array(n.shmMap(${JSON.stringify(name)}));
      require('node:child_process').execFileSync('truncate', ['-s', '0', ${JSON.stringify(`/dev/shm/${name}`)}]);
      n.shmUnlink(${JSON.stringify(name)});
      process.stdout.write('ours ' + Atomics.load(words, 0) + ' ' + n.shmFaulted(words.buffer) + '\\n');
      if (process.argv[1] === 'foreign') process.dlopen({ exports: {} }, ${JSON.stringify(library)});
      else process.kill(process.pid, 'SIGBUS');
      setTimeout(() => process.stdout.write('still alive\\n'), 500);
    `;
    for (const how of ['foreign', 'kill']) {
      // Each child creates the segment, maps it, has it truncated and unlinks it.
      // symbolize=0: ASAN's report (under test:asan) need not resolve symbols, which is slow on a busy machine.
      const env = { ...process.env, ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ?? ''}:symbolize=0` };
      const r = spawnSync(process.execPath, ['-e', script, how], { encoding: 'utf8', timeout: 60_000, env });
      expect(r.stdout).toContain('ours 0 true'); // our own truncated mapping survived first
      expect(r.stdout).not.toContain('still alive');
      if (underAsan) {
        // ASAN's handler ran (it was installed before ours): it reports and aborts.
        expect(r.stderr).toMatch(/AddressSanitizer/);
        expect(['SIGABRT', 'SIGBUS']).toContain(r.signal);
      } else {
        expect(r.signal).toBe('SIGBUS');
      }
    }
  }, 150_000);
});
