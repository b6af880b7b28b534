/**
 * The one codec of a message body, shared by the channel (sending and delivering), the transports that must
 * know what a record carries (the socket transport's credit bookkeeping) and the discards: what kind a tag
 * says the body is, whether it carries a lend of an arena block, in which arena, and how to take that lend back.
 */
import { decodeHandle, encodeHandle, HANDLE_BYTES, type Arena, type Block } from '../arena/index.js';
import { ShmxError } from '../errors.js';
import { BodyKind, kindOf, tagOf } from './envelope.js';
import type { ChannelHost } from './host.js';

/** The arenas a body's handle may point into. */
export type BodyArenas = Pick<ChannelHost, 'sessionArenaForChannels' | 'appArenaForChannels'>;

/** True when the body is a handle whose block is lent to the receiver (a block, or a spilled payload). */
export function carriesHandle(tag: number): boolean {
  const kind = kindOf(tag);
  return kind === BodyKind.SessionBlock || kind === BodyKind.AppBlock || kind === BodyKind.Spilled;
}

/** The arena a handle-carrying body's block belongs to (app blocks: the app arena; all else: the session's). */
export function arenaOfBody(arenas: BodyArenas, tag: number): Arena {
  return kindOf(tag) === BodyKind.AppBlock ? arenas.appArenaForChannels : arenas.sessionArenaForChannels;
}

/** Borrows the block a handle-carrying body names (validated: a malformed or stale handle throws). */
export function borrowBody(arenas: BodyArenas, tag: number, body: Uint8Array): Block {
  if (body.byteLength !== HANDLE_BYTES) throw new ShmxError('EPROTO', 'malformed block handle');
  return arenaOfBody(arenas, tag).borrow(decodeHandle(body));
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
      return { tag: tagOf(BodyKind.Spilled, flags), body: encodeHandle(arena.lend(spilled)), spilled };
    } catch (err) {
      spilled.release();
      throw err;
    }
  }
  for (const [arena, kind] of [[arenas.sessionArenaForChannels, BodyKind.SessionBlock], [arenas.appArenaForChannels, BodyKind.AppBlock]] as const) {
    if (arena.owns(data)) return { tag: tagOf(kind, flags), body: encodeHandle(arena.lend(data)), spilled: undefined };
  }
  throw new RangeError('a block sent on a channel must come from its session\'s session arena or app arena');
}
