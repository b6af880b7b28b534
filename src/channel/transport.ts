/**
 * One direction pair of a channel: how messages physically move. The Channel above it is the same for all.
 *
 * Life of a transport: open → `stop()` (the channel closed: no more reads or writes for the app) → discards
 * (records nobody will read are handed over so that the handles they carry are taken back) → `close()`
 * (resources released; the shared memory is never touched again).
 */

export type TransportKind = 'shm' | 'mq' | 'socket';

/**
 * From this size up, a kernel-copying transport (mq, socket) hands a body over as memory of its own (`owned`),
 * so the channel keeps it without a second copy. Smaller ones are views the channel copies, so that a kept small
 * message does not pin a whole receive buffer — except on socket, a body that is most of its read (a request read
 * alone), which is owned too (socket-transport.ts).
 */
export const OWN_BODY_MIN = 64 * 1024;

/**
 * Sees one record: its tag, request id and body — valid only during the call, unless `owned`: memory of its own,
 * which the channel may keep as it is (shm: the copies it asked for, see {@link Transport.read}; mq and socket:
 * bodies of {@link OWN_BODY_MIN} bytes and more; socket: also a body that is most of its read).
 */
export type RecordVisitor = (tag: number, requestId: number, body: Uint8Array, owned?: boolean) => void;

export interface Transport {
  readonly kind: TransportKind;
  /** Largest body sent inline; bigger payloads go through the arena. */
  readonly maxInline: number;
  /** Sends one message; false when the transport is full (nothing was sent). */
  write(tag: number, requestId: number, body: Uint8Array): boolean;
  /**
   * Delivers up to `limit` waiting messages; `body` is valid only during the call. Returns how many. Stops
   * after the current message once `stop()` was called, even from inside `deliver`. `copies`: the caller will
   * copy every body anyway — a transport that can copy a batch more cheaply than record by record (shm) hands
   * over private copies instead, marked `owned`; others ignore it.
   */
  read(limit: number, deliver: RecordVisitor, copies?: boolean): number;
  /** True when a message is waiting. */
  readonly readable: boolean;
  /** After a write returned false: true once there may be room again. */
  readonly writable: boolean;
  /** The channel wants messages (again): make sure the next arrival is noticed. Cheap when nothing to do. */
  resume(): void;
  /**
   * The channel closed: no more reads or writes. Idempotent; never throws. Records accepted by `write` but held
   * back (mq's batch of the tick) are sent if they can be; those that cannot are handed to `unsent`, whose lends
   * the caller takes back.
   */
  stop(unsent?: RecordVisitor): void;
  /**
   * Hands every record still waiting for us to `visit`, and any that arrive later (until `close`). May throw
   * ECHANNELCORRUPT (the caller logs it: a close never fails).
   */
  discardInbound(visit: RecordVisitor): void;
  /** Hands over the records we sent that the peer did not read and never will (it is gone). May throw. */
  discardOutbound(visit: RecordVisitor): void;
  /**
   * Optional (shm): writes until {@link uncork} are published to the peer together — one store of the write
   * count and at most one wake-up. Transports without it send each write at once.
   */
  cork?(): void;
  /** Publishes what was written since {@link cork} and wakes the peer if it sleeps. */
  uncork?(): void;
  /**
   * Optional (shm), zero-copy: room for a record whose body is at most `maxBody` bytes, as a view of the place it
   * will occupy; undefined when full (as for a refused write). One at a time; `write` throws EBUSY meanwhile.
   */
  reserve?(maxBody: number): Uint8Array | undefined;
  /** Sends the open reservation's first `bodyLength` bytes as a record of `tag` and `requestId`. */
  commit?(tag: number, requestId: number, bodyLength: number): void;
  /** Gives up the open reservation. */
  cancelReserve?(): void;
  /** Fill of the outbound and inbound rings, 0..1 (shm only; read-only, for operators). */
  fill?(): { out: number; in: number };
  /** Releases this side's resources (the opener also removes kernel objects). Idempotent; never throws. */
  close(): void;
}
