/**
 * Leak check around the whole test run: any shmx object in /dev/shm (or /dev/mqueue, when mounted) that did
 * not exist before the run and still exists after it fails `npm test`.
 */
import { readdirSync } from 'node:fs';

function shmxObjects(): Set<string> {
  const found = new Set<string>();
  for (const dir of ['/dev/shm', '/dev/mqueue']) {
    try {
      for (const name of readdirSync(dir)) if (name.startsWith('shmx')) found.add(`${dir}/${name}`);
    } catch {
      // not mounted
    }
  }
  return found;
}

let before = new Set<string>();

export function setup(): void {
  before = shmxObjects();
}

export function teardown(): void {
  const leaked = [...shmxObjects()].filter((name) => !before.has(name));
  if (leaked.length > 0) {
    throw new Error(`the tests left ${leaked.length} shmx object(s) behind:\n  ${leaked.slice(0, 40).join('\n  ')}`);
  }
}
