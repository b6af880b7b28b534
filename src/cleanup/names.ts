/**
 * Names of every kernel object shmx creates. A name says what the object is, which server app it belongs to,
 * which process made it (pid and start time, so a reused pid is not taken for the creator), and for which
 * client app and session — so that anyone can decide from the name alone whether it is stale — and a random
 * nonce, so that nobody can predict the name and create it first (/dev/shm is world-writable).
 *
 *   shmx.<kind>.<serverApp>.<pid>.<startTime36>.<clientApp|->.<session36|->.<nonce>.<part>
 *
 * e.g. `shmx.sa.billing.4242.1x2k9.web.3.9f0c1a2b3c4d5e6f.arena.h` — header segment of session 3's arena
 * between server app `billing` (pid 4242) and client app `web`. The longest name (two 32-byte app names, the
 * largest pid, start time and session number, an arena's 64th data segment or a queue of channel 2^32) is
 * 168 bytes (an arena data segment adds a nonce of its own: `…arena.d63.<nonce>`): within the 250 bytes the addon accepts and POSIX's NAME_MAX of 255.
 */
import { randomBytes } from 'node:crypto';
import { hasCode, ShmxError } from '../errors.js';

/** What a named object is. */
export type ResourceKind =
  /** app-scope arena segment */
  | 'aa'
  /** session-scope arena segment */
  | 'sa'
  /** session control block (channel rings, doorbells) */
  | 'sc'
  /** message queue of an `mq` channel */
  | 'mq'
  /** ledger of a process's message queues */
  | 'lg';

const KINDS: ReadonlySet<string> = new Set(['aa', 'sa', 'sc', 'mq', 'lg']);

/** The parsed form of a resource name. */
export interface ResourceName {
  kind: ResourceKind;
  serverApp: string;
  /** The process that created the object. */
  creator: { pid: number; startTime: number };
  clientApp: string | null;
  session: number | null;
  /** 16 random hex digits (64 bits from the system's CSPRNG), fresh for each object or scope. */
  nonce: string;
  /** Free-form suffix naming the part (segment `h`, `d0`; queue `c3.r` ...). */
  part: string;
}

/** App names: lower-case letters, digits, `_` and `-`, starting with a letter or digit, at most 32 bytes. */
export const APP_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const PART = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const NONCE = /^[0-9a-f]{16}$/;

/** A fresh nonce: 64 random bits. Guessing the next one is hopeless; colliding with a live one, too. */
export function freshNonce(): string {
  return randomBytes(8).toString('hex');
}

/** How often {@link createWithFreshNonce} tries a new nonce after EEXIST before giving up. */
export const NONCE_ATTEMPTS = 8;

/**
 * Creates an object under a fresh nonce, retrying with a new one when the name is taken (EEXIST): a name
 * someone else created first never blocks us. `create` must create exclusively (O_EXCL) and leave nothing
 * behind when it throws. After {@link NONCE_ATTEMPTS} names in a row were taken — which random chance does
 * not explain — fails with EEXIST naming them.
 */
export function createWithFreshNonce<T>(what: string, create: (nonce: string) => T): T {
  const taken: string[] = [];
  for (let attempt = 0; attempt < NONCE_ATTEMPTS; attempt++) {
    const nonce = freshNonce();
    try {
      return create(nonce);
    } catch (err) {
      if (!hasCode(err, 'EEXIST')) throw err;
      taken.push(nonce);
    }
  }
  throw new ShmxError('EEXIST', `${what}: ${NONCE_ATTEMPTS} fresh random names in a row already existed ` +
    `(nonces ${taken.join(', ')}); something is creating shmx names at random`);
}

/**
 * Name of data segment `index` of the arena whose base name is `base`: `<base>.d<index>.<nonce>`. Each data
 * segment has a nonce of its own, drawn when it is created and recorded in the arena's header (its segment
 * table), so that nobody who sees the arena's other names in /dev/shm can predict — and create first — the
 * name of its next segment. Peers rebuild the name from the table; only the creator of a segment draws one.
 */
export function arenaDataSegmentName(base: string, index: number, nonce: string): string {
  if (!NONCE.test(nonce)) throw new RangeError(`nonce '${nonce}' must be 16 hex digits`);
  return `${base}.d${index}.${nonce}`;
}

const ARENA_DATA_TAIL = /^[0-9]+\.[0-9a-f]{16}$/;

/** True when `name` is a data segment name as {@link arenaDataSegmentName} makes them (of arena `base`, if
 *  given; else of any arena). */
export function isArenaDataSegment(name: string, base?: string): boolean {
  if (base !== undefined) return name.startsWith(`${base}.d`) && ARENA_DATA_TAIL.test(name.slice(base.length + 2));
  const at = name.lastIndexOf('.d', name.length - 18);
  return at >= 0 && ARENA_DATA_TAIL.test(name.slice(at + 2));
}

/** Throws a RangeError unless `name` is a valid app name. */
export function checkAppName(name: unknown, what = 'app name'): string {
  if (typeof name !== 'string') throw new TypeError(`${what} must be a string`);
  if (!APP_NAME.test(name)) {
    throw new RangeError(`${what} '${name}' must match ${APP_NAME} (lower-case letters, digits, _ and -; ≤ 32)`);
  }
  return name;
}

/**
 * Builds the name of a resource; without `nonce`, a fresh one. Throws RangeError on parts that would make it
 * ambiguous.
 */
export function formatResourceName(r: Omit<ResourceName, 'nonce'> & { nonce?: string }): string {
  const nonce = r.nonce ?? freshNonce();
  if (!NONCE.test(nonce)) throw new RangeError(`nonce '${nonce}' must be 16 hex digits`);
  if (!PART.test(r.part)) throw new RangeError(`resource part '${r.part}' must be dot-separated [A-Za-z0-9_-]`);
  return `${creatorPrefix(r)}${nonce}.${r.part}`;
}

/** The name without its part: every object of one scope shares it (`…<session>.<nonce>.`). */
export function scopePrefix(r: Omit<ResourceName, 'part'>): string {
  return formatResourceName({ ...r, part: 'x' }).slice(0, -1);
}

/**
 * The name up to the nonce (`shmx.<kind>.<serverApp>.<pid>.<start>.<clientApp>.<session>.`): every object of
 * this kind and scope made by this creator starts with it, whatever its nonce.
 */
export function creatorPrefix(r: Omit<ResourceName, 'part' | 'nonce'>): string {
  checkAppName(r.serverApp, 'serverApp');
  if (r.clientApp !== null) checkAppName(r.clientApp, 'clientApp');
  if (!KINDS.has(r.kind)) throw new RangeError(`unknown resource kind '${String(r.kind)}'`);
  const { pid, startTime } = r.creator;
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new RangeError(`creator pid must be a positive integer`);
  if (!Number.isSafeInteger(startTime) || startTime < 0) throw new RangeError(`creator startTime must be ≥ 0`);
  if (r.session !== null && (!Number.isSafeInteger(r.session) || r.session < 0)) {
    throw new RangeError('session must be an integer ≥ 0');
  }
  const session = r.session === null ? '-' : r.session.toString(36);
  return ['shmx', r.kind, r.serverApp, String(pid), startTime.toString(36), r.clientApp ?? '-', session, ''].join('.');
}

/** Parses a resource name; null for anything that is not a well-formed shmx name. */
export function parseResourceName(name: string): ResourceName | null {
  const fields = name.split('.');
  if (fields.length < 9 || fields[0] !== 'shmx') return null;
  const [, kind, serverApp, pidText, startText, client, sessionText, nonce] = fields as [
    string, string, string, string, string, string, string, string,
  ];
  const part = fields.slice(8).join('.');
  if (!KINDS.has(kind) || !APP_NAME.test(serverApp) || !NONCE.test(nonce) || !PART.test(part)) return null;
  if (!/^[1-9][0-9]*$/.test(pidText) || !/^[0-9a-z]+$/.test(startText)) return null;
  if (client !== '-' && !APP_NAME.test(client)) return null;
  if (sessionText !== '-' && !/^[0-9a-z]+$/.test(sessionText)) return null;
  const pid = Number(pidText);
  const startTime = parseInt(startText, 36);
  if (!Number.isSafeInteger(pid) || !Number.isSafeInteger(startTime)) return null;
  return {
    kind: kind as ResourceKind,
    serverApp,
    creator: { pid, startTime },
    clientApp: client === '-' ? null : client,
    session: sessionText === '-' ? null : parseInt(sessionText, 36),
    nonce,
    part,
  };
}
