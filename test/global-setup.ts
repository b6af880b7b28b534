/**
 * The leak gate: at the end of the run, every segment in /dev/shm and every queue in /dev/mqueue whose name
 * carries this run's tag (test/helpers/names.ts) is a leak — a test created it and did not remove it. The gate
 * lists them, sets the exit code of the run to 1, and then removes them so the next run starts clean (set
 * SHMX_KEEP_LEAKS=1 to keep them for a look).
 *
 * Why an exit code and not a throw: vitest 4.1 catches an error thrown by a global teardown, prints it as
 * "error during close" and still exits 0. The teardown runs in vitest's main process after every test file has
 * finished, and nothing in vitest resets `process.exitCode` after it (it only ever sets it to 1), so setting it
 * here fails `vitest run` and `npm test`. test/gate/leak-gate.test.ts proves it on a fixture that leaks.
 *
 * Only names with this run's tag count, so objects of concurrent runs and of other programs on the machine are
 * never blamed.
 */
import { rmSync } from 'node:fs';
import { listingPaths, listObjects, mqueueMounted, MQUEUE_DIR, removeListed } from './helpers/objects.js';
import { isThisRun, runTag } from './helpers/names.js';
import { runDirectoryRoot } from './helpers/universe.js';

/** The first line of the gate's verdict; test/gate/leak-gate.test.ts looks for it. */
export const GATE = 'shmx leak gate';

export function setup(): void {
  if (!mqueueMounted()) {
    console.warn(
      `${GATE} (run ${runTag}): ${MQUEUE_DIR} is not mounted — message queues this run leaves cannot be listed ` +
        `and are NOT checked (as root: mount -t mqueue none ${MQUEUE_DIR})`,
    );
  }
}

export function teardown(): void {
  const leaked = listObjects(isThisRun);
  const paths = listingPaths(leaked);
  const checked = leaked.queues === null ? '/dev/shm (not /dev/mqueue: not mounted)' : '/dev/shm and /dev/mqueue';
  if (paths.length === 0) {
    console.log(`${GATE} (run ${runTag}): nothing of this run left in ${checked}`);
  } else {
    console.error(
      `\n${GATE} (run ${runTag}): FAILED — the tests left ${paths.length} object(s) behind in ${checked}:\n  ` +
        `${paths.join('\n  ')}\n`,
    );
    process.exitCode = 1;
    if (process.env.SHMX_KEEP_LEAKS !== '1') removeListed(leaked);
  }
  // Run directories are files, not kernel objects: left sockets are not leaks (a SIGKILLed server leaves its
  // socket file until the next server starts), but the directories are this run's to remove.
  rmSync(runDirectoryRoot, { recursive: true, force: true });
}
