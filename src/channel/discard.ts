/**
 * Taking back what unread messages carry. A message sent by handle (a block of the session or app arena, or a
 * spilled payload) holds a lend of its block until the receiver borrows it; a message nobody will read would
 * keep its block alive for as long as the arena lives — for the app arena, longer than the session. Whoever
 * is last to see such a message borrows the handle and releases it.
 */
import { carriesHandle, takeBackLend } from './body.js';
import type { ChannelHost } from './host.js';
import type { RecordVisitor } from './transport.js';

/** Counts what a discard took back. */
export interface DiscardTally {
  messages: number;
  released: number;
  failed: number;
}

/** A visitor that takes back the lend of each handle-carrying record; errors are counted, never thrown. */
export function discardVisitor(host: ChannelHost, tally: DiscardTally): RecordVisitor {
  return (tag, _requestId, body) => {
    tally.messages++;
    if (!carriesHandle(tag)) return;
    try {
      takeBackLend(host, tag, body);
      tally.released++;
    } catch (err) {
      // Stale (the reader borrowed it before it died), or garbage from a broken peer: nothing to take back.
      tally.failed++;
      if (tally.failed <= 3) host.logger.debug({ err }, 'could not take back the handle of an unread message');
    }
  };
}

/**
 * Runs `discard` (a transport's discardInbound/discardOutbound) with a fresh visitor; logs and swallows every
 * error (a corrupt ring, a closed arena): closing never fails.
 */
export function discardUnread(host: ChannelHost, what: string, discard: (visit: RecordVisitor) => void): void {
  const tally: DiscardTally = { messages: 0, released: 0, failed: 0 };
  try {
    discard(discardVisitor(host, tally));
  } catch (err) {
    host.logger.warn({ err, what }, 'could not discard unread channel messages');
  }
  if (tally.messages > 0) host.logger.debug({ what, ...tally }, 'discarded unread channel messages');
}
