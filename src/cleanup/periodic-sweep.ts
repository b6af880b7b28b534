/**
 * Periodic sweeps: every process that takes part in sessions of a server app sweeps that app's stale objects
 * now and then, for as long as it runs — so objects of a process that died while nobody was connected to it
 * are removed by whoever is still around, not only by the next server to start. One unref'd timer per app, for
 * the life of the process.
 */
import type { Logger } from '../log.js';
import { sweepStale } from './sweep.js';

const timers = new Map<string, NodeJS.Timeout>();

/** Sweeps `serverApp`'s stale objects every `intervalMs` from now on (once per app, whoever asks first). */
export function sweepPeriodically(serverApp: string, logger: Logger, intervalMs = 30_000): void {
  if (!Number.isFinite(intervalMs) || intervalMs < 100) throw new RangeError('sweepIntervalMs must be at least 100 ms');
  if (timers.has(serverApp)) return; // the first caller's interval stands
  const timer = setInterval(() => {
    try {
      sweepStale({ serverApp, logger });
    } catch (err) {
      logger.warn({ err, serverApp }, 'periodic sweep failed');
    }
  }, intervalMs);
  timer.unref(); // never keeps the process alive
  timers.set(serverApp, timer);
}
