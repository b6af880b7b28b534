/**
 * Sweeps: removing kernel objects whose creator is dead. Safe to run from any process at any time: it never
 * touches objects of live processes, of other server apps (when one is named) or of other users.
 */
import { statSync } from 'node:fs';
import { diag } from '../diagnostics.js';
import { ShmxError } from '../errors.js';
import type { Logger } from '../log.js';
import { defaultLogger } from '../log.js';
import { native } from '../native.js';
import { isProcessAlive } from './liveness.js';
import { readLedger } from './ledger.js';
import { isArenaDataSegment, parseResourceName, type ResourceName } from './names.js';

/** Options of {@link sweepStale}. */
export interface SweepOptions {
  /** Only objects of this server app. Default: all server apps. */
  serverApp?: string;
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
  logger?: Logger;
}

/** One kernel object shmx found. */
export interface FoundResource {
  /** `shm` for a segment in /dev/shm, `mq` for a message queue. */
  type: 'shm' | 'mq';
  name: string;
  parsed: ResourceName;
  /** Whether the process that created it still runs. */
  creatorAlive: boolean;
  /** Size in bytes (segments only). */
  bytes?: number;
}

/** What a sweep removed (or, with dryRun, would remove). */
export interface SweepReport {
  removed: FoundResource[];
  /** Objects left alone because their creator is alive. */
  kept: number;
  /** Stale objects that could not be removed (e.g. EACCES), with the error's code and message. */
  failed: Array<FoundResource & { code: string; message: string }>;
}

const uid = process.getuid?.() ?? -1;

function ownedByMe(name: string): { owned: boolean; bytes: number } {
  try {
    const st = statSync(`/dev/shm/${name}`);
    return { owned: st.uid === uid, bytes: st.size };
  } catch {
    return { owned: false, bytes: 0 };
  }
}

/** Every shmx object of this user that is visible now (queues only when /dev/mqueue is mounted, or through the
 *  ledgers of their creators). */
export function listResources(serverApp?: string): FoundResource[] {
  const out: FoundResource[] = [];
  const alive = new Map<string, boolean>();
  const liveness = (p: ResourceName): boolean => {
    const key = `${p.creator.pid}.${p.creator.startTime}`;
    let known = alive.get(key);
    if (known === undefined) alive.set(key, (known = isProcessAlive(p.creator)));
    return known;
  };
  const seenQueues = new Set<string>();
  for (const name of native.shmList('shmx.')) {
    const parsed = parseResourceName(name);
    if (parsed === null || (serverApp !== undefined && parsed.serverApp !== serverApp)) continue;
    const { owned, bytes } = ownedByMe(name);
    if (!owned) continue;
    const creatorAlive = liveness(parsed);
    out.push({ type: 'shm', name, parsed, creatorAlive, bytes });
    if (parsed.kind === 'lg' && !creatorAlive) {
      for (const queue of readLedger(name)) {
        const q = parseResourceName(queue);
        if (q === null || seenQueues.has(queue)) continue;
        seenQueues.add(queue);
        out.push({ type: 'mq', name: queue, parsed: q, creatorAlive: liveness(q) });
      }
    }
  }
  let queues: string[] = [];
  try {
    queues = native.mqList('shmx.');
  } catch {
    // /dev/mqueue not mounted: the ledgers above are how queues are found.
  }
  for (const name of queues) {
    const parsed = parseResourceName(name);
    if (parsed === null || seenQueues.has(name)) continue;
    if (serverApp !== undefined && parsed.serverApp !== serverApp) continue;
    try {
      if (statSync(`/dev/mqueue/${name}`).uid !== uid) continue;
    } catch {
      continue;
    }
    out.push({ type: 'mq', name, parsed, creatorAlive: liveness(parsed) });
  }
  return out;
}

/** Removes one found object; false when it was already gone. */
export function removeResource(r: Pick<FoundResource, 'type' | 'name'>): boolean {
  return r.type === 'shm' ? native.shmUnlink(r.name) : native.mqUnlink(r.name);
}

/** Removes every object whose creator is dead. Ledgers go last, after the queues they list. */
export function sweepStale(options: SweepOptions = {}): SweepReport {
  const logger = options.logger ?? defaultLogger();
  const found = listResources(options.serverApp);
  const stale = found.filter((r) => !r.creatorAlive);
  stale.sort((a, b) => Number(a.parsed.kind === 'lg') - Number(b.parsed.kind === 'lg'));
  const removed: FoundResource[] = [];
  const failed: SweepReport['failed'] = [];
  const failedCreators = new Set<string>();
  const creatorKey = (r: FoundResource) => `${r.parsed.serverApp}.${r.parsed.creator.pid}.${r.parsed.creator.startTime}`;
  for (const r of stale) {
    if (options.dryRun) {
      removed.push(r);
      continue;
    }
    // A ledger is the only way to find its queues without /dev/mqueue: keep it while any of them remains.
    if (r.parsed.kind === 'lg' && failedCreators.has(creatorKey(r))) continue;
    try {
      if (removeResource(r)) {
        removed.push(r);
        logger.info({ resource: r.name, type: r.type, creator: r.parsed.creator }, 'swept stale object');
      }
    } catch (err) {
      failedCreators.add(creatorKey(r));
      failed.push({ ...r, code: err instanceof ShmxError ? err.code : 'EUNKNOWN', message: err instanceof Error ? err.message : String(err) });
      logger.warn({ resource: r.name, err }, 'could not remove stale object');
    }
  }
  const report = { removed, kept: found.length - stale.length, failed };
  if (diag.sweep.hasSubscribers) {
    diag.sweep.publish({ serverApp: options.serverApp, dryRun: options.dryRun === true, removed: removed.length, failed: failed.length, kept: report.kept });
  }
  return report;
}

/**
 * Removes every segment whose name starts with `prefix` (one scope's objects, on graceful close or when its
 * peer died). With `releasePages`, arena data segments give their memory back first: mappings that outlive the
 * scope (until a garbage collection) then hold no RAM. Only when nobody uses the scope any more — they read
 * zeros afterwards. Returns the names removed.
 */
export function removeSegmentsWithPrefix(prefix: string, logger?: Logger, releasePages = false): string[] {
  const removed: string[] = [];
  for (const name of native.shmList(prefix)) {
    try {
      // Arena data segments are the bulk of a scope's memory.
      if (releasePages && isArenaDataSegment(name)) native.shmReleasePages(name);
      if (native.shmUnlink(name)) removed.push(name);
    } catch (err) {
      // Another user's file under our prefix (/dev/shm is world-writable and sticky): not ours, and it must
      // not stop the removal of the scope's real objects.
      const code = (err as { code?: string }).code;
      if (code !== 'EPERM' && code !== 'EACCES') throw err;
      logger?.warn({ resource: name, code }, 'left a foreign object under a scope prefix');
    }
  }
  if (removed.length > 0) logger?.info({ prefix, removed }, 'removed scope objects');
  return removed;
}
