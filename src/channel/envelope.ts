/**
 * What every transport carries per message: a 32-bit tag (what the body is, and whether it is a request or a
 * response) and a 32-bit request id, then the body.
 */

/** What the body of a message is. */
export const BodyKind = {
  /** The payload itself. */
  Inline: 1,
  /** A handle to a block of the session arena, lent to the receiver (zero-copy). */
  SessionBlock: 2,
  /** A handle to a block of the app arena, lent to the receiver (zero-copy). */
  AppBlock: 3,
  /** A payload too big to go inline, copied into a session-arena block; the receiver copies it out. */
  Spilled: 4,
} as const;
export type BodyKind = (typeof BodyKind)[keyof typeof BodyKind];

export const TAG_REQUEST = 0x100;
export const TAG_RESPONSE = 0x200;

export function tagOf(kind: BodyKind, flags = 0): number {
  return kind | flags;
}

export function kindOf(tag: number): number {
  return tag & 0xff;
}

/** Bytes before the body on every transport: [u32 tag][u32 request id]. */
export const ENVELOPE_BYTES = 8;
