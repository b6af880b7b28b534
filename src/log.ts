/**
 * Logging: shmx accepts any pino logger; without one it logs warnings and errors only, to stderr.
 */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

let quiet: Logger | undefined;

/** The logger shmx uses when the caller gives none: level `warn`, to stderr. */
export function defaultLogger(): Logger {
  quiet ??= pino({ level: process.env.SHMX_LOG_LEVEL ?? 'warn', name: 'shmx' }, pino.destination(2));
  return quiet;
}
