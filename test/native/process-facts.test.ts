/**
 * Process facts: liveness (kill 0, with EPERM meaning alive), start times that tell processes apart,
 * the executable of a pid, SO_PEERCRED across two processes, and one thread's own CPU time.
 */
import { describe, expect, it } from 'vitest';
import { chmodSync, closeSync, mkdtempSync, openSync, realpathSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { once } from 'node:events';
import { native } from '../../src/native.js';
import { moduleWorker } from '../../src/module-worker.js';
import { Child } from '../helpers/child.js';
import { commandExists, expectClean, isRoot, nobodyChild, nodeChild, thrown } from './helpers.js';

describe('process facts', () => {
  it('threadCpuMicros: a Worker\'s CPU is its own — the main thread, asleep meanwhile, is not charged for it', async () => {
    const mainBefore = native.threadCpuMicros();
    const processBefore = process.cpuUsage();
    const worker = moduleWorker(new URL('../fixtures/native-worker.ts', import.meta.url), { workerData: { role: 'burn-cpu' } });
    const [workerSpent] = (await once(worker, 'message')) as [number];
    await worker.terminate();
    const mainSpent = native.threadCpuMicros() - mainBefore;
    const processSpent = process.cpuUsage(processBefore);
    expect(workerSpent).toBeGreaterThanOrEqual(50_000);
    // This thread only waited for a message; the process as a whole paid for the Worker's loop.
    expect(processSpent.user + processSpent.system).toBeGreaterThanOrEqual(workerSpent);
    expect(mainSpent).toBeLessThan(processSpent.user + processSpent.system - 40_000);
  });

  it('isAlive: true for this process and pid 1, false for a killed and reaped child', async () => {
    expect(native.isAlive(process.pid)).toBe(true);
    expect(native.isAlive(1)).toBe(true);
    const child = Child.command('sleep', ['60']);
    const pid = child.pid;
    expect(native.isAlive(pid)).toBe(true);
    child.kill('SIGKILL');
    const result = await child.exited; // reaped: the pid no longer names a zombie
    expect(result.signal).toBe('SIGKILL');
    expect(native.isAlive(pid)).toBe(false);
  });

  it('isAlive: EPERM means alive (pid 1 seen by user nobody)', async (ctx) => {
    ctx.skip(!isRoot || !commandExists('setpriv'), 'needs root and setpriv(1) to run a child as user nobody');
      const child = nobodyChild('alive-pid1', []);
      const report = await child.json<{ isAlive: boolean; killCode: string; uid: number }>('alive');
      expectClean(await child.exited);
      expect(report.uid).toBe(65534);
      expect(report.killCode).toBe('EPERM'); // the case under test really happened
      expect(report.isAlive).toBe(true);
    },
  );

  it('processStartTime: stable for one process, different for another, null once it is gone', async () => {
    const own = native.processStartTime(process.pid);
    expect(typeof own).toBe('number');
    expect(native.processStartTime(process.pid)).toBe(own);
    await new Promise((r) => setTimeout(r, 30)); // at least one clock tick (10 ms) after this process started
    const child = nodeChild('idle', []);
    await child.line('ready');
    const theirs = native.processStartTime(child.pid);
    expect(typeof theirs).toBe('number');
    expect(theirs).not.toBe(own);
    expect(theirs!).toBeGreaterThan(own!);
    child.kill('SIGKILL');
    await child.exited;
    expect(native.processStartTime(child.pid)).toBeNull();
  });

  it('executablePath: the node binary for this process, null for a dead pid', async () => {
    expect(native.executablePath(process.pid)).toBe(realpathSync(process.execPath));
    const child = Child.command('sleep', ['60']);
    const pid = child.pid;
    expect(native.executablePath(pid)).toBe(realpathSync('/proc/' + pid + '/exe'));
    child.kill('SIGKILL');
    await child.exited;
    expect(native.executablePath(pid)).toBeNull();
  });

  it('peerCredentials: both ends of a Unix socket see the other process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shmx.t.peer.'));
    const path = join(dir, 'sock');
    const server = net.createServer();
    try {
      const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
      await new Promise<void>((resolve) => server.listen(path, resolve));
      chmodSync(dir, 0o755);
      chmodSync(path, 0o777); // the child may run as nobody
      const asNobody = isRoot && commandExists('setpriv');
      const child = asNobody ? nobodyChild('peer-client', [path]) : nodeChild('peer-client', [path]);
      const socket = await accepted;
      const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
      const creds = await child.json<{
        peer: { pid: number; uid: number; gid: number };
        self: { pid: number; uid: number; gid: number };
      }>('creds');
      // Our end names the child; with setpriv the child pid is setpriv's (it execs node in place).
      expect(native.peerCredentials(fd)).toEqual(creds.self);
      expect(creds.self.pid).toBe(child.pid);
      if (asNobody) expect(creds.self).toMatchObject({ uid: 65534, gid: 65534 });
      // The child's end names us.
      expect(creds.peer).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
      socket.end();
      expectClean(await child.exited);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('peerCredentials on a file is ENOTSOCK, on a closed descriptor EBADF', () => {
    const fd = openSync('/proc/self/stat', 'r');
    try {
      expect(thrown(() => native.peerCredentials(fd))).toMatchObject({
        code: 'ENOTSOCK',
        errno: 88,
        syscall: 'getsockopt',
        resource: `fd ${fd}`,
      });
    } finally {
      closeSync(fd);
    }
    expect(thrown(() => native.peerCredentials(fd))).toMatchObject({ code: 'EBADF', errno: 9 });
  });
});
