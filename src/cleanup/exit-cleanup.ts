/**
 * Exit-time cleanup: when this process ends in a way that still runs JavaScript — `process.exit()`, the event
 * loop running dry, an uncaught exception or unhandled rejection, SIGTERM/SIGINT that nobody else handles — it
 * removes, synchronously, what it alone owns: every segment whose name says this process created it (session
 * and app arenas of its servers, its queue ledgers), the queues its ledgers list, and the files its servers
 * made (listening socket, instance lock, control socket). What a SIGKILL leaves stays the sweeps' job.
 *
 * Why by name: a name carries its creator's pid and start time (names.ts), so "created by this process" is
 * decided exactly as a sweep decides "created by a dead process" — the same objects a sweep would remove a
 * moment after we died, removed now instead. Peers that still map a segment keep their mapping (unlink only
 * removes the name); they notice our death on the master socket as before.
 *
 * Signals: a process with no SIGTERM/SIGINT listener dies by the signal, and shmx must not change that. So the
 * listener shmx adds steps aside when the app has one of its own (checked when the signal arrives: the app's
 * handler decides, and its `process.exit()` runs the exit hook), and otherwise cleans up, removes itself — Node
 * then restores the default action — and raises the same signal again: the process still dies by it, with the
 * exit status a parent expects.
 *
 * Installed once, on the main thread, when this process first creates something it owns (a server starts, a
 * ledger is made). Worker threads share the process: their objects carry the same pid and go with it.
 * `SHMX_EXIT_CLEANUP` (read when installing): `on` (default), `exit` (no signal listeners), `off`.
 */
import { statSync, unlinkSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { native } from '../native.js';
import { readLedger } from './ledger.js';
import { selfIdentity } from './liveness.js';
import { parseResourceName, type ResourceName } from './names.js';

/** The signals whose default action (termination) shmx runs its cleanup before. */
export const CLEANUP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** Files to remove at exit, by path (a server's socket, lock and control socket while it runs). */
const files = new Set<string>();
let installed = false;

/** What {@link removeOwnedObjects} removed (for tests and logs). */
export interface ExitCleanupReport {
  segments: string[];
  queues: string[];
  files: string[];
}

/**
 * Arms the exit hooks (idempotent). Called by the code paths that create objects this process owns; cheap
 * after the first call.
 */
export function armExitCleanup(): void {
  if (installed || !isMainThread) return;
  installed = true;
  const mode = process.env.SHMX_EXIT_CLEANUP ?? 'on';
  if (mode === 'off') return;
  if (mode !== 'on' && mode !== 'exit') {
    throw new RangeError(`SHMX_EXIT_CLEANUP must be 'on', 'exit' or 'off', not '${mode}'`);
  }
  // 'exit' also fires after an uncaught exception or unhandled rejection (exit code 1): one hook covers both.
  process.on('exit', runQuietly);
  // First in line: an app's `once` listener registered before us removes itself before it runs, so a listener
  // of ours behind it would count no app handler and kill the process under the app's graceful shutdown.
  if (mode === 'on') for (const signal of CLEANUP_SIGNALS) process.prependListener(signal, onSignal);
}

/** Registers a file this process made and alone removes; returns the function that forgets it again (call it
 *  when the file is removed the ordinary way). */
export function removeFileAtExit(path: string): () => void {
  armExitCleanup();
  files.add(path);
  return () => {
    files.delete(path);
  };
}

function onSignal(signal: NodeJS.Signals): void {
  // Another listener is the app's: it chose what this signal does, and its exit (if any) runs our 'exit' hook.
  if (process.listenerCount(signal) > 1) return;
  runQuietly();
  // Our listener was the last: removing it restores the default action, which the signal raised again takes.
  process.removeListener(signal, onSignal);
  process.kill(process.pid, signal);
}

/** Never throws: the process is on its way out, and an error here would replace the reason it is ending. */
function runQuietly(): void {
  try {
    removeOwnedObjects();
  } catch {
    // Whatever is left is the sweeps' (the creator is about to be dead).
  }
}

function createdByMe(parsed: ResourceName | null, me: { pid: number; startTime: number }): parsed is ResourceName {
  return parsed !== null && parsed.creator.pid === me.pid && parsed.creator.startTime === me.startTime;
}

const uid = process.getuid?.() ?? -1;

function ownedByMyUser(name: string): boolean {
  try {
    return statSync(`/dev/shm/${name}`).uid === uid;
  } catch {
    return false;
  }
}

/**
 * Removes now, synchronously, every object this process created and the registered files. Runs at exit; safe
 * at any time only when the process no longer uses any of them (so: not exported from the package).
 */
export function removeOwnedObjects(): ExitCleanupReport {
  const report: ExitCleanupReport = { segments: [], queues: [], files: [] };
  for (const path of files) {
    try {
      unlinkSync(path);
      report.files.push(path);
    } catch {
      // already gone
    }
  }
  files.clear();
  const me = selfIdentity();
  const ledgers: string[] = [];
  for (const name of native.shmList('shmx.')) {
    const parsed = parseResourceName(name);
    if (!createdByMe(parsed, me) || !ownedByMyUser(name)) continue;
    if (parsed.kind === 'lg') {
      ledgers.push(name); // after its queues: it is how they are found
      continue;
    }
    if (native.shmUnlink(name)) report.segments.push(name);
  }
  for (const ledger of ledgers) {
    for (const queue of readLedger(ledger)) {
      if (!createdByMe(parseResourceName(queue), me)) continue;
      try {
        if (native.mqUnlink(queue)) report.queues.push(queue);
      } catch {
        // not ours to remove after all (EACCES): the sweeps will say so
      }
    }
    if (native.shmUnlink(ledger)) report.segments.push(ledger);
  }
  return report;
}
