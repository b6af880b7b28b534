/**
 * One live server per server app and run directory: an exclusive flock(2) on `<runDirectory>/<serverApp>.lock`.
 *
 * Why a locked file: the kernel releases the lock the instant its holder dies, however it dies, so a new server
 * starts cleanly over a crashed one without trusting anything it left; and the file lives in the checked run
 * directory (this user's, writable by nobody else), so no other user can create, hold or replace it. The
 * abstract socket name used before had neither property: anyone on the machine could bind
 * `\0shmx.server.<uid>.<app>` first and keep this user's server from starting.
 *
 * The holder removes the file when it releases the lock. That is safe because a taker checks, after locking,
 * that the file it locked is still the one at the path: one that locked a file its predecessor had just
 * unlinked would otherwise run beside a third server that locked the new file.
 */
import { closeSync, fstatSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ShmxError } from '../errors.js';
import { native } from '../native.js';

/** Path of the lock file of `serverApp` in `runDirectory`. */
export function instanceLockPath(runDirectory: string, serverApp: string): string {
  return join(runDirectory, `${serverApp}.lock`);
}

/**
 * Holds the lock of `serverApp` until `release()`. Throws ESERVERRUNNING while another server holds it, and
 * EUNSAFEDIR when the lock file belongs to another user (possible only in a shared sticky directory).
 * The run directory must have been checked first (see run-directory.ts).
 */
export function acquireInstanceLock(runDirectory: string, serverApp: string): { release(): void } {
  const path = instanceLockPath(runDirectory, serverApp);
  for (let attempt = 0; attempt < 8; attempt++) {
    const fd = lockFile(path, serverApp);
    if (isFileAt(fd, path)) {
      let held = true;
      return {
        release: () => {
          if (!held) return;
          held = false;
          // Unlink first, then drop the lock: a taker that locks the unlinked file sees it is not at the path.
          try {
            unlinkSync(path);
          } catch {
            // already gone: nothing to remove
          }
          closeSync(fd); // closing the only descriptor of the open file description drops the lock
        },
      };
    }
    closeSync(fd); // locked a file the previous holder had just removed: take the new one
  }
  throw new ShmxError('ESERVERRUNNING', `the instance lock ${path} kept changing under us (servers starting and stopping)`, {
    resource: path,
  });
}

/** Whether descriptor `fd` is the file now at `path`. */
function isFileAt(fd: number, path: string): boolean {
  try {
    const held = fstatSync(fd);
    const there = statSync(path);
    return held.ino === there.ino && held.dev === there.dev;
  } catch {
    return false;
  }
}

function lockFile(path: string, serverApp: string): number {
  try {
    return native.lockFile(path);
  } catch (err) {
    const code = err instanceof ShmxError ? err.code : undefined;
    if (code === 'EWOULDBLOCK' || code === 'EAGAIN') { // the same errno on Linux
      throw new ShmxError('ESERVERRUNNING', `a server of app '${serverApp}' is already running (it holds ${path})`, {
        resource: path,
      });
    }
    if (code === 'ENOTOWNER' || code === 'ELOOP' || code === 'ENOTREGULAR' || code === 'EACCES') {
      throw new ShmxError('EUNSAFEDIR', `instance lock ${path} cannot be ours: ${(err as Error).message}`, {
        resource: path, cause: err,
      });
    }
    throw err;
  }
}
