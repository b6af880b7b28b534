/**
 * Sweep time for stale objects: N session-arena segments named as made by a process that is gone (a real
 * process, started and ended for this, so its pid and start time are real), then `sweepStale()` of their
 * server app — timed, and checked to have removed every one.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';

import { formatResourceName, sweepStale } from '../../dist/index.js';
import { native } from '../../dist/native.js';
import type { Checks } from '../checks.js';
import { progress, silentLogger, trackServerApp, uniqueName } from '../harness.js';

export interface SweepResult {
  objects: number;
  createMs: number;
  sweepMs: number;
  removed: number;
}

/** A pid and start time of a process that no longer exists. */
async function deadCreator(): Promise<{ pid: number; startTime: number }> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  await once(child, 'spawn');
  const pid = child.pid!;
  const startTime = native.processStartTime(pid);
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
  if (startTime === null) throw new Error('could not read the start time of the fake creator');
  return { pid, startTime };
}

export async function runSweep(objects: number, checks: Checks): Promise<SweepResult> {
  const serverApp = uniqueName('bw');
  trackServerApp(serverApp);
  const creator = await deadCreator();
  progress(`sweep  creating ${objects} stale segments`);
  const t0 = performance.now();
  for (let i = 0; i < objects; i++) {
    const name = formatResourceName({ kind: 'sa', serverApp, creator, clientApp: 'bench', session: i, part: 'h' });
    native.shmCreate(name, 4096, 0o600);
  }
  const createMs = performance.now() - t0;
  progress(`sweep  sweeping ${objects} stale segments`);
  const t1 = performance.now();
  const report = sweepStale({ serverApp, logger: silentLogger });
  const sweepMs = performance.now() - t1;
  if (report.removed.length !== objects) checks.fail(`sweep removed ${report.removed.length} of ${objects} stale objects`);
  return { objects, createMs, sweepMs, removed: report.removed.length };
}
