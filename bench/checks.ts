/**
 * What `--check` turns into a failing exit: a path that produced no samples, a checksum or count that did not
 * match, a cell that threw, a stall. Never a timing threshold — the numbers are for people, the checks only
 * prove that every path ran and delivered what it was given.
 */
export class Checks {
  readonly failures: string[] = [];
  readonly notes: string[] = [];

  fail(what: string): void {
    this.failures.push(what);
  }

  note(what: string): void {
    this.notes.push(what);
  }
}

/** Progress of the measured loops: the watchdog fails the run when it stops moving. */
export const heartbeat = { beats: 0, what: '' };

/**
 * Fails the run (through `onStall`) when no heartbeat came for `stallMs` — a round trip that never completes
 * (a lost wake-up) must end the run with a clear error instead of hanging it.
 */
export function startWatchdog(stallMs: number, onStall: (what: string) => void): () => void {
  let last = heartbeat.beats;
  let since = Date.now();
  const timer = setInterval(() => {
    if (heartbeat.beats !== last) {
      last = heartbeat.beats;
      since = Date.now();
    } else if (Date.now() - since > stallMs) {
      clearInterval(timer);
      onStall(heartbeat.what);
    }
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
