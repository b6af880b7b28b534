/**
 * The socket transport's wire format on the session's master socket, and the table of this session's socket
 * channels. The multiplexer only routes: a channel frame whose op is one of {@link SocketOp} comes here.
 *
 * Bodies (after the multiplexer's 8-byte channel-frame head):
 *   DATA         [u32 tag LE][u32 request id LE][message body]
 *   CREDIT       [u32 bytes LE]   the receiver consumed that much (see socket-transport.ts)
 *   WANT_CREDIT  (empty)          the sender is out of credit
 */
import { ShmxError } from '../errors.js';
import { SocketTransport } from './socket-transport.js';

/** Channel-frame ops of the socket transport (the multiplexer's op space: 2..5 are open/accept/reject/close). */
export const SocketOp = { Data: 6, Credit: 7, WantCredit: 8 } as const;

/** True when `op` is one of the socket transport's. */
export function isSocketOp(op: number): boolean {
  return op === SocketOp.Data || op === SocketOp.Credit || op === SocketOp.WantCredit;
}

/** What the socket channels need from the multiplexer. */
export interface SocketWireLink {
  /** Sends a channel frame of `op` for channel `id`; `bulk` for DATA (may be as large as maxSocketMessage). */
  sendOp(op: number, id: number, parts: Uint8Array[], bulk: boolean): void;
  /** Whether the session socket accepts more without buffering past its high-water mark. */
  masterWritable(): boolean;
  /** A DATA frame was queued for a channel: the delivery loop should look. */
  arrived(): void;
  /** Credit came back for channel `id`: it may send again. */
  credited(id: number): void;
  /** True when `id` is an open channel (of any transport) of this session. */
  isOpen(id: number): boolean;
  /** Data for a channel nobody will read (racing a close): take back what it carries. */
  discardLate(id: number, tag: number, requestId: number, body: Uint8Array): void;
}

/** This session side's socket channels: makes their transports and routes their frames. */
export class SocketChannels {
  private readonly transports = new Map<number, SocketTransport>();

  constructor(private readonly maxMessage: number, private readonly link: SocketWireLink) {}

  /** Makes the transport of socket channel `id` (opener and accepter alike). */
  create(id: number): SocketTransport {
    const link = this.link;
    const t = new SocketTransport(this.maxMessage, {
      send: (tag, requestId, body) => {
        const head = Buffer.allocUnsafe(8);
        head.writeUInt32LE(tag, 0);
        head.writeUInt32LE(requestId, 4);
        link.sendOp(SocketOp.Data, id, [head, body], true);
      },
      socketWritable: () => link.masterWritable(),
      sendCredit: (bytes) => {
        const b = Buffer.allocUnsafe(4);
        b.writeUInt32LE(bytes, 0);
        link.sendOp(SocketOp.Credit, id, [b], false);
      },
      sendWantCredit: () => link.sendOp(SocketOp.WantCredit, id, [], false),
    });
    this.transports.set(id, t);
    return t;
  }

  /** The transport is released: frames for `id` no longer reach it. */
  forget(id: number, transport: unknown): void {
    if (this.transports.get(id) === transport) this.transports.delete(id);
  }

  /** A socket-transport frame from the peer. Throws EPROTO on anything malformed (the session then faults). */
  onFrame(op: number, id: number, body: Buffer): void {
    switch (op) {
      case SocketOp.Data: {
        if (body.length < 8) throw new ShmxError('EPROTO', `bad data frame for channel ${id}`);
        const tag = body.readUInt32LE(0);
        const requestId = body.readUInt32LE(4);
        const t = this.transports.get(id);
        if (t !== undefined) {
          t.push(tag, requestId, body.subarray(8));
          this.link.arrived();
          return;
        }
        if (this.link.isOpen(id)) throw new ShmxError('EPROTO', `data frame for non-socket channel ${id}`);
        // Data racing a close (or the peer's late start on an open we abandoned): nobody will read it.
        this.link.discardLate(id, tag, requestId, body.subarray(8));
        return;
      }
      case SocketOp.Credit: {
        if (body.length !== 4) throw new ShmxError('EPROTO', `bad credit frame for channel ${id}`);
        const t = this.transports.get(id);
        if (t === undefined) return; // racing a close
        t.onCredit(body.readUInt32LE(0));
        this.link.credited(id);
        return;
      }
      case SocketOp.WantCredit:
        this.transports.get(id)?.onWantCredit();
        return;
      default:
        throw new ShmxError('EPROTO', `unknown socket op ${op}`);
    }
  }
}
