/**
 * What a channel needs from the session it belongs to. The session layer implements this; the channel layer
 * never imports the session layer (dependencies point down).
 */
import type { Arena } from '../arena/index.js';
import type { CloseReason } from '../close-reason.js';
import type { ShmxError } from '../errors.js';
import type { Logger } from '../log.js';

/** Anything with its own close event that must close, exactly once, before its session's `close`. */
export interface SessionChild {
  closeFromSession(reason: CloseReason): void;
}

export interface ChannelHost {
  readonly side: 'server' | 'client';
  readonly id: string;
  readonly serverApp: string;
  readonly logger: Logger;
  /** The session arena (rings and spilled payloads live here). */
  readonly sessionArenaForChannels: Arena;
  readonly appArenaForChannels: Arena;
  /** Prefix, up to the nonce (ending in '.'), of kernel objects of this session made by this process: each
   *  object adds a fresh nonce and its part. */
  readonly localScopePrefix: string;
  /** Prefix every queue name the peer hands us must start with (its objects of this very session). */
  readonly peerScopePrefix: string;
  /** Permission bits for kernel objects of this session (the server app's permission level). */
  readonly objectMode: number;
  /** pid of the peer process (kernel-verified). */
  readonly peerPid: number;
  /**
   * Sends one channel frame, given as consecutive parts, on the master socket: a small frame is copied into one
   * buffer (the parts may be reused at once), a large one is written without a copy.
   * `bulk` frames (socket-transport DATA) may be as large as `maxSocketMessage`; control frames are small.
   */
  sendChannelFrame(parts: Uint8Array[], bulk?: boolean): void;
  /** Socket-level backpressure: false when the master socket's buffers are full. */
  readonly masterWritable: boolean;
  adopt(child: SessionChild): void;
  disown(child: SessionChild): void;
  /** A peer broke the rules (corrupt ring, stale handle): fault the whole session. */
  fault(err: ShmxError): void;
  countIn(bytes: number): void;
  countOut(bytes: number): void;
  countError(err: unknown): void;
  /** Bounds of every channel's send queue (ChannelSettings.sendHighWaterMark / sendQueueLimit). */
  readonly sendLimits: { readonly highWaterMark: number; readonly queueLimit: number };
  countSuccess(): void;
}
