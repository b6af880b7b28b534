/**
 * One Arena instance per process per app arena. Every session of a client app with one server shares the app
 * arena; opening it once per session would spend one of the arena's process slots per session. Instances are
 * reference-counted and closed with their last session.
 */
import { Arena } from '../arena/index.js';
import type { Logger } from '../log.js';
import { ceilingGuard } from './quotas.js';

const open = new Map<string, { arena: Arena; users: number }>();

/** Opens (or reuses) the app arena `name` for one more session of this process. */
export function acquireAppArena(name: string, logger?: Logger): Arena {
  let entry = open.get(name);
  // A truncated instance stays faulted: the sessions still on it fault and release it; new ones get a fresh one.
  if (entry === undefined || entry.arena.closed || entry.arena.checkTruncated() !== null) {
    // Bounded page-lock waits: a stopped peer holding the lock costs EARENABUSY, not a frozen event loop.
    entry = {
      arena: Arena.open(name, { lockTimeoutMs: 100, logger, beforeGrow: ceilingGuard('appArena.maxBytes') }), // quotas.ts
      users: 0,
    };
    open.set(name, entry);
  }
  entry.users++;
  return entry.arena;
}

/** One session is done with the app arena; the last one closes this process's instance. */
export function releaseAppArena(arena: Arena): void {
  const entry = open.get(arena.name);
  if (entry === undefined || entry.arena !== arena) {
    arena.close();
    return;
  }
  if (--entry.users === 0) {
    open.delete(arena.name);
    arena.close();
  }
}
