/**
 * Quotas: what one session, and one server, may take — so that a greedy or hostile session ends up with a clear
 * `EQUOTA` (QuotaError) of its own, or with its own session faulted (`limit-exceeded`), and never fills
 * /dev/shm or the process for everyone else. docs/cleanup-and-safety.md ("Quotas") has the model and the
 * reasoning behind the defaults.
 *
 *   per session   session-arena bytes   the session arena's ceiling (`sessionArena.maxBytes`), enforced by each
 *                                        side's own arena instance at growth; growth past it by a peer that
 *                                        bypasses its arena is found by the server's periodic check
 *                 open channels         per opening side (`quotas.channelsPerSession`, announced in WELCOME):
 *                                        the opener checks before it opens, the accepter refuses past it and
 *                                        faults the session of a peer that did not check
 *   per app       app-arena bytes       the app arena's ceiling (`appArena.maxBytes`), shared by the sessions of
 *                                        one client app (blocks belong to processes, not sessions)
 *   per server    total bytes           every segment the server's arenas have in /dev/shm (`quotas.totalBytes`)
 *                 total channels        channels open in all its sessions (`quotas.totalChannels`)
 */
import { readdirSync, statfsSync, statSync } from 'node:fs';
import type { Arena, ArenaGrowth } from '../arena/index.js';
import type { ChannelCounts } from '../channel/index.js';
import type { ProcessIdentity } from '../cleanup/liveness.js';
import { creatorPrefix } from '../cleanup/names.js';
import { QuotaError, type ShmxError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Refusal } from './protocol.js';

/** Default channels each side of a session may have open: the 1000-channel scale test fits, and 1024 default
 *  ring pairs (three 64 KiB units each) take 192 MiB, within the default 256 MiB session arena. */
export const DEFAULT_CHANNELS_PER_SESSION = 1024;
/** Default channels open in all sessions of one server: 16 sessions at their full per-session quota. */
export const DEFAULT_TOTAL_CHANNELS = 16 * 1024;
/** Default period of the server's check of its sessions' segments. */
export const DEFAULT_CHECK_INTERVAL_MS = 1000;
/** Default share of /dev/shm a server may fill with its arenas (the rest stays for other apps). */
export const DEFAULT_TOTAL_BYTES_SHARE = 0.5;

/** Server-wide and per-session quotas of a {@link SessionServer} (its `quotas` option). */
export interface ServerQuotaOptions {
  /**
   * Channels each side of a session may have open at once, counting the ones it opened (open, opening, or
   * waiting for a late answer). Announced to the client at the handshake: an open past it is refused with
   * `EQUOTA` by the opener's own check, and a peer that opens past it anyway has its session faulted
   * (`limit-exceeded`). Default 1024.
   */
  channelsPerSession?: number;
  /** Channels open in all sessions of this server; a client's open past it is refused (`EQUOTA`), the session
   *  goes on. Default 16384. */
  totalChannels?: number;
  /**
   * Bytes of /dev/shm all arenas of this server may hold (headers and data segments, session and app arenas,
   * whoever grew them). Past it, new sessions are refused and this process's allocations that need an arena to
   * grow fail with `EQUOTA`. Default: half the size of /dev/shm at start.
   */
  totalBytes?: number;
  /** How often the server measures its segments (usage, and session arenas grown past their ceiling by a
   *  peer that bypassed its arena: that session faults with `limit-exceeded`). Default 1000 ms. */
  checkIntervalMs?: number;
}

/** Limits a client applies to its sessions (its `quotas` connect option), against a greedy or hostile server. */
export interface ClientQuotaOptions {
  /**
   * Channels each side may have open in a session of this client: the lower of this and the server's announced
   * `channelsPerSession`. A server's open past it is refused with `EQUOTA` (past the announced limit, the session
   * faults with `limit-exceeded`). Default 1024.
   */
  channels?: number;
}

/** Quota usage of one session side (a plain object: `session.quotas`). */
export interface SessionQuotaUsage {
  channels: {
    /** Channels this side opened that count against its limit. */
    opened: number;
    /** Channels the peer opened, open here. */
    peerOpened: number;
    /** How many this side may open. */
    limit: number;
    /** How many the peer may open (past it: refused, or the session faults past the agreed limit). */
    peerLimit: number;
  };
  sessionArena: {
    /** Bytes of the session arena's data segments in /dev/shm now. */
    reservedBytes: number;
    /** Its ceiling (`sessionArena.maxBytes` of the server). */
    maxBytes: number;
  };
}

/** Quota usage of a server (a plain object: `server.quotas`). */
export interface ServerQuotaUsage {
  totalBytes: { used: number; limit: number };
  totalChannels: { used: number; limit: number };
  channelsPerSession: number;
  /** Sessions this server faulted with `limit-exceeded` because a peer passed a quota it knew. */
  sessionsFaulted: number;
}

/** What the server's check needs of a session (Session has it). */
export interface QuotaSubject {
  readonly id: string;
  readonly state: string;
  readonly channels: readonly unknown[];
  readonly sessionArena: { readonly name: string; readonly maxBytes: number };
  faultLimit(err: ShmxError): void;
}

function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer`);
  }
  return value;
}

/** Sizes of the segments in /dev/shm whose names start with one of `prefixes` (gone ones are skipped). */
function segmentSizes(prefixes: readonly string[]): Map<string, number> {
  const sizes = new Map<string, number>();
  let names: string[];
  try {
    names = readdirSync('/dev/shm');
  } catch {
    return sizes;
  }
  for (const name of names) {
    if (!prefixes.some((p) => name.startsWith(p))) continue;
    try {
      sizes.set(name, statSync(`/dev/shm/${name}`).size);
    } catch {
      // removed meanwhile
    }
  }
  return sizes;
}

/**
 * Bytes of the data segments of arena `arena` among `sizes`: every `<arena>.d…` file, whoever made it (the
 * header, `<arena>.h`, has the fixed size the creator gave it).
 */
function arenaDataBytes(sizes: Map<string, number>, arena: string): number {
  const data = `${arena}.d`;
  let bytes = 0;
  for (const [name, size] of sizes) if (name.startsWith(data)) bytes += size;
  return bytes;
}

/** A `beforeGrow` for arenas whose ceiling is a quota: reaching it is `EQUOTA` naming that quota. */
export function ceilingGuard(quota: string): (growth: ArenaGrowth) => void {
  return (g) => {
    if (g.overCeiling) {
      throw new QuotaError(quota, g.maxBytes, `arena ${g.arena} is at its ceiling: ${g.neededBytes} more bytes do not fit`,
        { resource: g.arena });
    }
  };
}

/**
 * @internal The channel quotas of one session side. The channel multiplexer asks it before this side opens a
 * channel and when the peer opens one.
 */
export class SessionQuotaPolicy {
  /**
   * @param agreed what each side may open, as the server announced it (a peer past it broke the rules)
   * @param own what this side accepts and opens (≤ agreed), and the option that set it
   * @param total server-wide channel budget (server side only)
   */
  constructor(
    private readonly agreed: number,
    private readonly own: { limit: number; quota: string },
    private readonly total?: { used(): number; limit: number },
  ) {}

  /** Before this side opens a channel: EQUOTA when it would pass a limit. */
  checkOpen(c: ChannelCounts): void {
    if (c.local >= this.own.limit) {
      throw new QuotaError(this.own.quota, this.own.limit, `this side already has ${c.local} channels open or opening`);
    }
    if (this.total !== undefined && this.total.used() >= this.total.limit) {
      throw new QuotaError('quotas.totalChannels', this.total.limit, 'the server has its maximum of channels open');
    }
  }

  /**
   * The peer opens a channel. Past the agreed limit it throws: an honest peer checks that limit before it opens,
   * so this one bypassed it and its session faults (`limit-exceeded`). Past a limit the peer could not know (this
   * side's own, the server's total) it returns the error to refuse this channel with; undefined admits it.
   */
  admitPeer(c: ChannelCounts): QuotaError | undefined {
    if (c.peer >= this.agreed) {
      throw new QuotaError('quotas.channelsPerSession', this.agreed,
        `the peer opened more channels than the ${this.agreed} agreed at the handshake`);
    }
    if (c.peer >= this.own.limit) {
      return new QuotaError(this.own.quota, this.own.limit, `the peer already has ${c.peer} channels open here`);
    }
    if (this.total !== undefined && this.total.used() >= this.total.limit) {
      return new QuotaError('quotas.totalChannels', this.total.limit, 'the server has its maximum of channels open');
    }
    return undefined;
  }

  /** Usage of this side, for `session.quotas`. */
  usage(c: ChannelCounts, sessionArena: { readonly name: string; readonly maxBytes: number }): SessionQuotaUsage {
    return {
      channels: { opened: c.local, peerOpened: c.peer, limit: this.own.limit, peerLimit: this.own.limit },
      sessionArena: {
        reservedBytes: arenaDataBytes(segmentSizes([`${sessionArena.name}.`]), sessionArena.name),
        maxBytes: sessionArena.maxBytes,
      },
    };
  }
}

/** The policy of a client's session: the lower of the server's announced limit and the client's own. */
export function clientQuotaPolicy(announcedChannels: number, options: ClientQuotaOptions | undefined): SessionQuotaPolicy {
  const own = positive(options?.channels, 'quotas.channels', DEFAULT_CHANNELS_PER_SESSION);
  return new SessionQuotaPolicy(announcedChannels, own < announcedChannels
    ? { limit: own, quota: 'quotas.channels' }
    : { limit: announcedChannels, quota: 'quotas.channelsPerSession' });
}

/** Checks client quota options up front (before any connection is made). */
export function checkClientQuotaOptions(options: ClientQuotaOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) throw new TypeError('quotas must be an object');
  positive(options.channels, 'quotas.channels', DEFAULT_CHANNELS_PER_SESSION);
}

/**
 * @internal The quotas of one server: the budget of its arenas' bytes and of its channels, the per-session
 * policy it gives its sessions, and the periodic check of its sessions' segments.
 */
export class ServerQuotas {
  readonly channelsPerSession: number;
  readonly totalChannels: number;
  readonly totalBytes: number;
  private readonly checkIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private sessions: () => Iterable<QuotaSubject> = () => [];
  private faulted = 0;
  private overBudgetLogged = false;
  /** Every arena this server created and has not closed (closed ones are dropped as they are met). */
  private readonly arenas = new Set<Arena>();

  constructor(
    options: ServerQuotaOptions | undefined,
    private readonly serverApp: string,
    private readonly me: ProcessIdentity,
    private readonly logger: Logger,
  ) {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new TypeError('quotas must be an object');
    }
    this.channelsPerSession = positive(options?.channelsPerSession, 'quotas.channelsPerSession', DEFAULT_CHANNELS_PER_SESSION);
    this.totalChannels = positive(options?.totalChannels, 'quotas.totalChannels', DEFAULT_TOTAL_CHANNELS);
    this.totalBytes = positive(options?.totalBytes, 'quotas.totalBytes', defaultTotalBytes());
    this.checkIntervalMs = positive(options?.checkIntervalMs, 'quotas.checkIntervalMs', DEFAULT_CHECK_INTERVAL_MS);
    if (this.checkIntervalMs < 10) throw new RangeError('quotas.checkIntervalMs must be at least 10 ms');
  }

  /** Prefixes of every segment this server's arenas have (session and app arenas). */
  private prefixes(): string[] {
    return (['sa', 'aa'] as const).map((kind) => {
      const full = creatorPrefix({ kind, serverApp: this.serverApp, creator: this.me, clientApp: null, session: null });
      return full.split('.').slice(0, 5).join('.') + '.'; // shmx.<kind>.<serverApp>.<pid>.<start>.
    });
  }

  /** Counts `arena` (just created by this server) against the byte budget until it is closed. */
  track(arena: Arena): void {
    this.arenas.add(arena);
  }

  /**
   * Bytes the server's arenas hold in /dev/shm now, as their segment tables say (whoever grew them). Cheap —
   * no system call — so it can run at every handshake and growth; the periodic check lists the files.
   */
  usedBytes(): number {
    let total = 0;
    for (const arena of this.arenas) {
      if (arena.closed) this.arenas.delete(arena);
      else total += arena.reservedBytes;
    }
    return total;
  }

  /** Channels open in all sessions now. */
  usedChannels(): number {
    let n = 0;
    for (const s of this.sessions()) n += s.channels.length;
    return n;
  }

  /**
   * `beforeGrow` of an arena this server creates: its ceiling is the quota `quota`, and no growth in this
   * process may take the server past `totalBytes` (which also refuses new sessions: their arenas' first
   * segments are such growths).
   */
  guard(quota: string): (growth: ArenaGrowth) => void {
    const ceiling = ceilingGuard(quota);
    return (g) => {
      ceiling(g);
      const used = this.usedBytes();
      if (used + g.growBytes > this.totalBytes) {
        throw new QuotaError('quotas.totalBytes', this.totalBytes,
          `growing ${g.arena} by ${g.growBytes} bytes would pass the server's budget (${used} bytes in use)`, { resource: g.arena });
      }
    };
  }

  /** A refusal for a new session when the server is already at its byte budget (checked before anything is made). */
  admit(): Refusal | null {
    const used = this.usedBytes();
    if (used < this.totalBytes) return null;
    return { code: 'EQUOTA', reason: `the server's arenas hold ${used} bytes (quota quotas.totalBytes = ${this.totalBytes})` };
  }

  /** The channel policy of a new session on this server. */
  sessionPolicy(): SessionQuotaPolicy {
    return new SessionQuotaPolicy(this.channelsPerSession, { limit: this.channelsPerSession, quota: 'quotas.channelsPerSession' },
      { used: () => this.usedChannels(), limit: this.totalChannels });
  }

  /** Starts the periodic check over `sessions` (the server's open sessions). */
  start(sessions: () => Iterable<QuotaSubject>): void {
    this.sessions = sessions;
    this.timer = setInterval(() => this.check(), this.checkIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Lists the server's segments in /dev/shm (the files, not what the tables say): a session whose arena's data
   * segments add up to more than its ceiling was grown by a peer that bypassed its arena (an honest grower clips
   * to the ceiling, and a table entry past it is corruption the arena finds itself): that session faults.
   */
  check(): void {
    const sizes = segmentSizes(this.prefixes());
    const used = this.usedBytes();
    if (used >= this.totalBytes && !this.overBudgetLogged) {
      this.overBudgetLogged = true;
      this.logger.warn({ used, limit: this.totalBytes }, 'arenas are at quotas.totalBytes: new sessions are refused');
    } else if (used < this.totalBytes) {
      this.overBudgetLogged = false;
    }
    for (const s of this.sessions()) {
      if (s.state !== 'open') continue;
      const { name, maxBytes } = s.sessionArena;
      const bytes = arenaDataBytes(sizes, name);
      if (bytes > maxBytes) {
        this.faulted++;
        s.faultLimit(new QuotaError('sessionArena.maxBytes', maxBytes,
          `session ${s.id}'s arena has ${bytes} bytes of data segments in /dev/shm`, { resource: name }));
      }
    }
  }

  /** Usage now, for `server.quotas`. */
  usage(): ServerQuotaUsage {
    return {
      totalBytes: { used: this.usedBytes(), limit: this.totalBytes },
      totalChannels: { used: this.usedChannels(), limit: this.totalChannels },
      channelsPerSession: this.channelsPerSession,
      sessionsFaulted: this.faulted,
    };
  }
}

/** Half of /dev/shm (see DEFAULT_TOTAL_BYTES_SHARE); unbounded when it cannot be measured. */
function defaultTotalBytes(): number {
  try {
    const st = statfsSync('/dev/shm');
    const bytes = Math.floor(st.blocks * st.bsize * DEFAULT_TOTAL_BYTES_SHARE);
    if (bytes > 0) return bytes;
  } catch {
    // no /dev/shm to measure
  }
  return Number.MAX_SAFE_INTEGER;
}
