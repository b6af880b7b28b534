/**
 * Names of every kernel object shmx creates. A name says what the object is, which server app it belongs to,
 * which process made it (pid and start time, so a reused pid is not taken for the creator), and for which
 * client app and session — so that anyone can decide from the name alone whether it is stale.
 *
 *   shmx.<kind>.<serverApp>.<pid>.<startTime36>.<clientApp|->.<session36|->.<part>
 *
 * e.g. `shmx.sa.billing.4242.1x2k9.web.3.h` — header segment of session 3's arena between server app
 * `billing` (pid 4242) and client app `web`. Every name fits POSIX limits (< 250 bytes).
 */

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
  /** Free-form suffix naming the part (segment `h`, `d0`; queue `c3.r` ...). */
  part: string;
}

/** App names: lower-case letters, digits, `_` and `-`, starting with a letter or digit, at most 32 bytes. */
export const APP_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const PART = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Throws a RangeError unless `name` is a valid app name. */
export function checkAppName(name: unknown, what = 'app name'): string {
  if (typeof name !== 'string') throw new TypeError(`${what} must be a string`);
  if (!APP_NAME.test(name)) {
    throw new RangeError(`${what} '${name}' must match ${APP_NAME} (lower-case letters, digits, _ and -; ≤ 32)`);
  }
  return name;
}

/** Builds the name of a resource. Throws RangeError on parts that would make it ambiguous. */
export function formatResourceName(r: ResourceName): string {
  checkAppName(r.serverApp, 'serverApp');
  if (r.clientApp !== null) checkAppName(r.clientApp, 'clientApp');
  if (!PART.test(r.part)) throw new RangeError(`resource part '${r.part}' must be dot-separated [A-Za-z0-9_-]`);
  const { pid, startTime } = r.creator;
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new RangeError(`creator pid must be a positive integer`);
  if (!Number.isSafeInteger(startTime) || startTime < 0) throw new RangeError(`creator startTime must be ≥ 0`);
  const session = r.session === null ? '-' : r.session.toString(36);
  return [
    'shmx',
    r.kind,
    r.serverApp,
    String(pid),
    startTime.toString(36),
    r.clientApp ?? '-',
    session,
    r.part,
  ].join('.');
}

/** The name without its part: every object of one scope shares it (`…<session>.`). */
export function scopePrefix(r: Omit<ResourceName, 'part'>): string {
  return formatResourceName({ ...r, part: 'x' }).slice(0, -1);
}

/** Parses a resource name; null for anything that is not a well-formed shmx name. */
export function parseResourceName(name: string): ResourceName | null {
  const fields = name.split('.');
  if (fields.length < 8 || fields[0] !== 'shmx') return null;
  const [, kind, serverApp, pidText, startText, client, sessionText] = fields as [
    string, string, string, string, string, string, string,
  ];
  const part = fields.slice(7).join('.');
  if (!KINDS.has(kind) || !APP_NAME.test(serverApp) || !PART.test(part)) return null;
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
    part,
  };
}
