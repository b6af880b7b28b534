/**
 * An independent look at the kernel's objects: the files of /dev/shm (segments) and /dev/mqueue (message
 * queues), read with plain `fs`, not through shmx or its addon, so that what shmx believes cannot hide what is
 * really there. Used by the leak gate and by the soak.
 */
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';

export const SHM_DIR = '/dev/shm';
export const MQUEUE_DIR = '/dev/mqueue';

/** What was found. `queues` is null when /dev/mqueue is not mounted (queues cannot be listed then). */
export interface ObjectListing {
  segments: string[];
  queues: string[] | null;
}

/** True when an mqueue filesystem is mounted on /dev/mqueue (an empty directory there lists nothing). */
export function mqueueMounted(): boolean {
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .some((line) => {
        const [, mountPoint, type] = line.split(' ');
        return mountPoint === MQUEUE_DIR && type === 'mqueue';
      });
  } catch {
    return false;
  }
}

/** Segments and queues whose names satisfy `match`. */
export function listObjects(match: (name: string) => boolean): ObjectListing {
  const segments = readdirSync(SHM_DIR).filter(match).sort();
  const queues = mqueueMounted() ? readdirSync(MQUEUE_DIR).filter(match).sort() : null;
  return { segments, queues };
}

/** Every name of a listing, with its directory: `/dev/shm/<name>`, `/dev/mqueue/<name>`. */
export function listingPaths(listing: ObjectListing): string[] {
  return [
    ...listing.segments.map((n) => `${SHM_DIR}/${n}`),
    ...(listing.queues ?? []).map((n) => `${MQUEUE_DIR}/${n}`),
  ];
}

/** Removes what a listing names (unlink on mqueuefs removes the queue); gone already is fine. */
export function removeListed(listing: ObjectListing): void {
  for (const path of listingPaths(listing)) {
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
