/**
 * One direction pair of a channel: how messages physically move. The Channel above it is the same for all.
 */

export type TransportKind = 'shm' | 'mq' | 'socket';

export interface Transport {
  readonly kind: TransportKind;
  /** Largest body sent inline; bigger payloads go through the arena. */
  readonly maxInline: number;
  /** Sends one message; false when the transport is full (nothing was sent). */
  write(tag: number, requestId: number, body: Uint8Array): boolean;
  /** Delivers up to `limit` waiting messages; `body` is valid only during the call. Returns how many. */
  read(limit: number, deliver: (tag: number, requestId: number, body: Uint8Array) => void): number;
  /** True when a message is waiting. */
  readonly readable: boolean;
  /** After a write returned false: true once there may be room again. */
  readonly writable: boolean;
  /** Releases this side's resources (the opener also removes kernel objects). Idempotent. */
  close(): void;
}
