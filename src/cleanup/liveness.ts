/**
 * Process identity and liveness. A pid alone is not an identity — pids are reused — so shmx pairs it with the
 * process's start time and calls a process dead when `kill(pid, 0)` says ESRCH or the start time differs.
 */
import { readFileSync } from 'node:fs';
import { native } from '../native.js';

/** A process, as shmx records it in names and shared memory. */
export interface ProcessIdentity {
  pid: number;
  startTime: number;
}

let self: ProcessIdentity | undefined;

/** This process's identity. */
export function selfIdentity(): ProcessIdentity {
  if (self === undefined || self.pid !== process.pid) {
    const startTime = native.processStartTime(process.pid);
    if (startTime === null) throw new Error('cannot read this process start time from /proc');
    self = { pid: process.pid, startTime };
  }
  return self;
}

/** True for a process that has exited but not been reaped yet: it holds no mappings, it is dead to us. */
export function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/** True while the process that had this identity is still running. */
export function isProcessAlive(who: ProcessIdentity): boolean {
  if (who.pid === process.pid) return who.startTime === selfIdentity().startTime;
  if (!native.isAlive(who.pid)) return false;
  const startTime = native.processStartTime(who.pid);
  // EPERM-alive processes of other users still have a readable /proc/<pid>/stat.
  if (startTime === null || startTime !== who.startTime) return false;
  return !isZombie(who.pid);
}

/**
 * Resolves true once the process is observably dead, false if it still runs after `timeoutMs`. A peer's
 * socket reaches EOF while the kernel is still tearing the process down; this bridges that moment.
 */
export async function whenDead(who: ProcessIdentity, timeoutMs = 1000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 1; isProcessAlive(who); pause = Math.min(pause * 2, 50)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, pause));
  }
  return true;
}
