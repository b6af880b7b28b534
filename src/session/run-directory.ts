/**
 * The run directory: where a server app's listening socket and instance lock live. Whoever may write there
 * could swap the socket for their own (clients would still refuse a foreign server, but nobody could connect)
 * or hold the lock, so the directory must be this user's (or root's) and writable by nobody else — or sticky,
 * like /tmp. By default each user gets a private one, so users never share sockets or locks.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { ShmxError } from '../errors.js';

/** Mode of a run directory shmx creates: others must reach the socket only at the levels that admit them. */
export function runDirectoryMode(permissions: 'user' | 'group' | 'unrestricted'): number {
  return permissions === 'user' ? 0o700 : permissions === 'group' ? 0o750 : 0o755;
}

/**
 * The default run directory of a server app: `$XDG_RUNTIME_DIR/shmx` when that variable names a usable
 * directory (absolute, a real directory of this user, private) and the server runs as this user at the `user`
 * level (a private runtime directory is unreachable for other users); otherwise `<os.tmpdir()>/shmx-<uid>`,
 * with the server app's uid when the universe names one — so every process of a universe computes the same
 * path for a server of another user.
 */
export function defaultRunDirectory(server: { uid?: number; permissions: 'user' | 'group' | 'unrestricted' }): string {
  const me = process.getuid?.() ?? 0;
  const uid = server.uid ?? me;
  const xdg = process.env['XDG_RUNTIME_DIR'];
  if (server.permissions === 'user' && uid === me && xdg !== undefined && isAbsolute(xdg) && privateDirectoryOfMine(xdg)) {
    return join(xdg, 'shmx');
  }
  return join(tmpdir(), `shmx-${uid}`);
}

function privateDirectoryOfMine(path: string): boolean {
  try {
    const st = statSync(path);
    return st.isDirectory() && st.uid === (process.getuid?.() ?? 0) && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

/** Creates the run directory (with `mode`, whatever the umask) when it is missing, then checks it. */
export function prepareRunDirectory(path: string, mode: number): void {
  if (!existsSync(path)) {
    mkdirSync(path, { recursive: true, mode });
    chmodSync(path, mode); // the umask must not narrow what the permission level needs (nor widen anything)
  }
  checkRunDirectory(path);
}

/**
 * Throws EUNSAFEDIR naming the rule `path` breaks: a symbolic link, not a directory, owned by another user
 * than this one or root, writable by its group or by everyone without the sticky bit.
 */
export function checkRunDirectory(path: string): void {
  const uid = process.getuid?.() ?? 0;
  const st = lstatSync(path);
  const unsafe = (rule: string) => {
    throw new ShmxError('EUNSAFEDIR', `run directory ${path} ${rule}: whoever may write there could replace the ` +
      'socket or take the instance lock (use a directory of this user with mode 0700, or the default)', { resource: path });
  };
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  if (st.isSymbolicLink()) unsafe('is a symbolic link');
  if (!st.isDirectory()) unsafe('is not a directory');
  if (st.uid !== uid && st.uid !== 0) unsafe(`is owned by uid ${st.uid}, neither this user (uid ${uid}) nor root`);
  const sticky = (st.mode & 0o1000) !== 0;
  if ((st.mode & 0o002) !== 0 && !sticky) unsafe(`is writable by everyone (mode ${mode}) without the sticky bit`);
  if ((st.mode & 0o020) !== 0 && !sticky) unsafe(`is writable by its group (mode ${mode}) without the sticky bit`);
}
