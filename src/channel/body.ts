/**
 * The one codec of a message body, shared by the channel (sending and delivering), the transports that must
 * know what a record carries (the socket transport's credit bookkeeping) and the discards: what kind a tag
 * says the body is, whether it carries a lend of an arena block, in which arena, and how to take that lend back.
 */
import { arenaCore } from '../arena/arena.js';
import { HANDLE_BYTES, readHandle, type Arena, type Block } from '../arena/index.js';
import { ShmxError } from '../errors.js';
import { BodyKind, kindOf, tagOf } from './envelope.js';
import type { ChannelHost, SessionChild } from './host.js';

/** The arenas a body's handle may point into. */
export type BodyArenas = Pick<ChannelHost, 'sessionArenaForChannels' | 'appArenaForChannels'>;

/** True when the body is a handle whose block is lent to the receiver (a block, or a spilled payload). */
export function carriesHandle(tag: number): boolean {
  const kind = kindOf(tag);
  return kind === BodyKind.SessionBlock || kind === BodyKind.AppBlock || kind === BodyKind.Spilled;
}

/**
 * Bytes of the payload a spilled body's handle names; 0 for every other kind. What the socket transport's credit
 * counts for a spilled message. Throws (ESTALEHANDLE) for a malformed handle — only a broken peer sends one.
 */
export function spilledLength(tag: number, body: Uint8Array): number {
  return kindOf(tag) === BodyKind.Spilled ? readHandle(body).length : 0;
}

/** The arena a handle-carrying body's block belongs to (app blocks: the app arena; all else: the session's). */
export function arenaOfBody(arenas: BodyArenas, tag: number): Arena {
  return kindOf(tag) === BodyKind.AppBlock ? arenas.appArenaForChannels : arenas.sessionArenaForChannels;
}

/** Borrows the block a handle-carrying body names (validated: a malformed or stale handle throws). */
export function borrowBody(arenas: BodyArenas, tag: number, body: Uint8Array): Block {
  if (body.byteLength !== HANDLE_BYTES) throw new ShmxError('EPROTO', 'malformed block handle');
  return arenaOfBody(arenas, tag).borrow(body); // the encoded form: validated without building the id string
}

/** Takes back the lend a body carries that nobody will borrow (borrows it and lets go at once). */
export function takeBackLend(arenas: BodyArenas, tag: number, body: Uint8Array): void {
  if (carriesHandle(tag)) borrowBody(arenas, tag, body).release();
}

/** An encoded body: its tag and bytes, and a spilled copy the sender lets go of once the record is written. */
export interface EncodedBody {
  tag: number;
  body: Uint8Array;
  spilled: Block | undefined;
}

/**
 * Encodes what the app sends: small bytes inline; bytes over `maxInline` copied once into a session-arena block
 * sent by handle (spilled); a Block of the session or app arena by handle (lent). Throws on anything else.
 */
export function encodeBody(arenas: BodyArenas, data: Uint8Array | Block, flags: number, maxInline: number): EncodedBody {
  if (data instanceof Uint8Array) {
    if (data.byteLength <= maxInline) return { tag: tagOf(BodyKind.Inline, flags), body: data, spilled: undefined };
    const arena = arenas.sessionArenaForChannels;
    const spilled = arena.alloc(data.byteLength);
    try {
      spilled.bytes.set(data);
      return { tag: tagOf(BodyKind.Spilled, flags), body: arenaCore(arena).lendEncoded(spilled), spilled };
    } catch (err) {
      spilled.release();
      throw err;
    }
  }
  for (const [arena, kind] of [[arenas.sessionArenaForChannels, BodyKind.SessionBlock], [arenas.appArenaForChannels, BodyKind.AppBlock]] as const) {
    if (arena.owns(data)) return { tag: tagOf(kind, flags), body: arenaCore(arena).lendEncoded(data), spilled: undefined };
  }
  throw new RangeError('a block sent on a channel must come from its session\'s session arena or app arena');
}

/** What delivering in place needs from the session: its arenas and its children (closed with it). */
export type InPlaceHost = BodyArenas & Pick<ChannelHost, 'adopt' | 'disown'>;

/**
 * The hold on a spilled payload delivered in place. A child of the session (let go when it closes), and let go
 * when the app releases the message or when the view of the bytes is garbage-collected — whichever comes first.
 * It never references the view, or the view could never be collected.
 */
class InPlaceHold implements SessionChild {
  constructor(private block: Block | undefined, private readonly host: InPlaceHost, readonly bytes: number) {}

  /** Lets go (idempotent). Never throws: it runs from finalizers and session teardown. */
  end(): void {
    const block = this.block;
    if (block === undefined) return;
    this.block = undefined;
    const budget = inPlaceBudgets.get(this.host);
    if (budget !== undefined) budget.used -= this.bytes;
    try {
      this.host.disown(this);
      if (block.held) block.release();
    } catch {
      // the arena was closed (session over): its holds went with it
    }
  }

  closeFromSession(): void {
    this.end();
  }
}

const inPlaceHolds = new FinalizationRegistry<InPlaceHold>((hold) => hold.end());
/** Bytes each session holds in place, against its budget. */
const inPlaceBudgets = new WeakMap<InPlaceHost, { used: number }>();

/**
 * Most of the session arena a receiver may hold in place for spilled payloads before it copies instead: an app
 * that keeps messages without releasing them pins at most this much until its garbage collector runs, and the
 * sender's spills always find room in the rest.
 */
export const IN_PLACE_SHARE = 0.25;

/**
 * Largest share of the session arena one spilled payload may take in place when nothing else is held that way.
 * A payload too large for {@link IN_PLACE_SHARE} would otherwise always be copied — a fresh private buffer of
 * its size, every page of it faulted in (a 1 GiB message cost 16× its in-place read). Half, so that the sender
 * keeps room for another message as large while this one is held.
 */
export const IN_PLACE_ALONE_SHARE = 0.5;

/** Whether a spilled payload of `length` bytes may be held in place next to `used` bytes already held. */
function fitsInPlace(used: number, length: number, arenaBytes: number): boolean {
  if (used + length <= arenaBytes * IN_PLACE_SHARE) return true;
  return used === 0 && length <= arenaBytes * IN_PLACE_ALONE_SHARE;
}

/**
 * A spilled payload (bytes the sender copied once into a session-arena block) as the receiver gets it: a view of
 * that block where it lies — no second copy — held until `release()`, the view's garbage collection, or the
 * session's close. Past {@link IN_PLACE_SHARE} of the session arena held this way (or, for one payload held
 * alone, {@link IN_PLACE_ALONE_SHARE}), a private copy instead (the block is let go at once). `inPlace` says which.
 */
export function deliverSpilled(host: InPlaceHost, tag: number, body: Uint8Array): { bytes: Uint8Array; release: (() => void) | undefined; inPlace: boolean } {
  const block = borrowBody(host, tag, body);
  let budget = inPlaceBudgets.get(host);
  if (budget === undefined) inPlaceBudgets.set(host, (budget = { used: 0 }));
  const length = block.length;
  if (!fitsInPlace(budget.used, length, host.sessionArenaForChannels.maxBytes)) {
    const copy = Buffer.allocUnsafe(length);
    copy.set(block.bytes);
    block.release();
    return { bytes: copy, release: undefined, inPlace: false };
  }
  budget.used += length;
  const hold = new InPlaceHold(block, host, length);
  host.adopt(hold);
  // A view of its own (not block.bytes, which the Block caches and the hold references); a Buffer, as the
  // private copies of small payloads are.
  const bytes = Buffer.from(block.buffer, block.offset, length);
  inPlaceHolds.register(bytes, hold, hold);
  return {
    bytes,
    release: () => {
      inPlaceHolds.unregister(hold);
      hold.end();
    },
    inPlace: true,
  };
}
