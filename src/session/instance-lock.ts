/**
 * One live server per server app and run directory: an exclusive flock(2) on `<runDirectory>/<serverApp>.lock`.
 *
 * Why a locked file: the kernel releases the lock the instant its holder dies, however it dies, so a new server
 * starts cleanly over a crashed one without trusting anything it left; and the file lives in the checked run
 * directory (this user's, writable by nobody else), so no other user can create, hold or replace it. The
 * abstract socket name used before had neither property: anyone on the machine could bind
 * `\0shmx.server.<uid>.<app>` first and keep this user's server from starting. The file stays after the server
 * closes (removing it would race with the next server opening it); it is empty and costs nothing.
 */
import { closeSync } from 'node:fs';
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
  let fd: number;
  try {
    fd = native.lockFile(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
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
  let held = true;
  return {
    release: () => {
      if (!held) return;
      held = false;
      closeSync(fd); // closing the only descriptor of the open file description drops the lock
    },
  };
}
