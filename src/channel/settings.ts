/**
 * What a channel is opened with, and the session-wide channel settings.
 */
import type { MqChannelOptions } from './mq-transport.js';
import type { TransportKind } from './transport.js';

/** Options of `session.openChannel`. */
export interface OpenChannelOptions {
  /** Anything JSON-serialisable: tells the peer what the channel is for. */
  metadata?: unknown;
  /** Default `shm`. */
  transport?: TransportKind;
  /** shm: bytes per direction, a power of two (default 64 KiB). */
  ringCapacity?: number;
  /**
   * This side never parks while this channel is open — it polls on every event-loop turn for lowest latency
   * (see {@link Channel.setSpin}). Local only: the accepting side opts in with `channel.setSpin(true)`.
   */
  spin?: boolean;
  /** Receive small plain messages as views valid only during the 'message' listener (see Channel.setMessageViews). */
  messageViews?: boolean;
  /** mq: queue attributes. */
  mq?: MqChannelOptions;
  /**
   * Reject with TimeoutError if the peer has not accepted in time — counting from the call, including the
   * wait for the peer's channel layer to be ready. Default 5000 ms.
   */
  timeoutMs?: number;
  /** Aborting rejects the open with AbortError (a channel the peer accepts afterwards is closed at once). */
  signal?: AbortSignal;
}

/** Session-wide channel settings. */
export interface ChannelSettings {
  /** Longest an idle receiver polls before it parks, in µs. It polls only while messages usually come sooner
   *  than that and polling has paid for itself in avoided wake-ups (see spin-policy.ts); 0 never polls.
   *  Default 100. */
  spinMicros: number;
  /** Largest payload the `socket` transport carries on the socket itself; a larger one is copied once into a
   *  session-arena block and read in place, as on `mq`. Default 8 KiB (as `mq`'s default message size): from
   *  there up the kernel's two copies and a fresh receive buffer per message cost more than the arena's one copy.
   *  It also bounds the frame a peer can make this side assemble. Exchanged in the handshake: each side sends
   *  inline up to the smaller of its own and the peer's. */
  maxSocketMessage: number;
  /** Bytes queued by a channel's sends (each message: its length + 64) at which `send` returns false, as
   *  `Writable`'s highWaterMark. Default 256 KiB. */
  sendHighWaterMark: number;
  /** Bytes queued past which a send fails with ESENDQUEUEFULL instead of queueing (a producer that ignores
   *  false). One message larger than this is still queued when nothing else waits. Default 64 MiB; at least
   *  `sendHighWaterMark`. */
  sendQueueLimit: number;
}

/** Fills in and checks channel settings. */
export function resolveChannelSettings(partial: Partial<ChannelSettings> = {}): ChannelSettings {
  const spinMicros = partial.spinMicros ?? 100;
  const maxSocketMessage = partial.maxSocketMessage ?? 8 * 1024;
  if (!Number.isFinite(spinMicros) || spinMicros < 0 || spinMicros > 1_000_000) {
    throw new RangeError('spinMicros must be between 0 and 1e6');
  }
  if (!Number.isInteger(maxSocketMessage) || maxSocketMessage < 4096 || maxSocketMessage > 2 ** 31) {
    throw new RangeError('maxSocketMessage must be an integer between 4096 and 2^31');
  }
  const sendHighWaterMark = partial.sendHighWaterMark ?? 256 * 1024;
  const sendQueueLimit = partial.sendQueueLimit ?? 64 * 1024 * 1024;
  if (!Number.isSafeInteger(sendHighWaterMark) || sendHighWaterMark < 1) {
    throw new RangeError('sendHighWaterMark must be a positive integer (bytes)');
  }
  if (!Number.isSafeInteger(sendQueueLimit) || sendQueueLimit < sendHighWaterMark) {
    throw new RangeError('sendQueueLimit must be an integer of at least sendHighWaterMark (bytes)');
  }
  return { spinMicros, maxSocketMessage, sendHighWaterMark, sendQueueLimit };
}
