/**
 * Writes the frames of an open session on its master socket.
 *
 * A small frame (up to {@link JOIN_MAX} bytes) is joined into one buffer — one `write` instead of one per part —
 * and the socket stays corked until the next tick: the frames of one burst (a flood, the replies of a batch, a
 * reply and its credit) leave in one system call, which also wakes the peer once.
 *
 * A large frame goes out at once, after what was corked: the kernel takes what its socket buffer holds straight
 * from the caller's bytes (a writev on the descriptor, when nothing of ours waits in the stream before it), and
 * only the rest is copied for the stream to write later. Never a view of the caller's bytes in a pending write:
 * `send` promises the caller may reuse its buffer at once, and a 1 MiB payload reused right after a send that
 * left part of it to the stream arrived with what the caller wrote there next.
 */
import { writevSync } from 'node:fs';
import type { Socket } from 'node:net';
import { socketFd } from './peer-socket.js';
import { encodeFrameHeader, HEADER_BYTES, joinFrame, type FrameType } from './protocol.js';

/** Frames up to this size are joined into one buffer and corked until the next tick. */
export const JOIN_MAX = 64 * 1024;

export class FrameWriter {
  private corked = false;

  constructor(private readonly socket: Socket) {}

  /** Sends one frame made of consecutive parts; the parts may be reused as soon as this returns. */
  send(type: FrameType, parts: readonly Uint8Array[]): void {
    let length = 0;
    for (const p of parts) length += p.byteLength;
    const { socket } = this;
    if (length <= JOIN_MAX) {
      if (!this.corked) {
        this.corked = true;
        socket.cork();
        process.nextTick(this.uncork);
      }
      socket.write(joinFrame(type, parts, length));
      return;
    }
    this.uncork();
    if (socket.destroyed) return; // nothing reaches it (its close faults the session): no copy of a large tail
    const all = [encodeFrameHeader(type, length), ...parts];
    const total = HEADER_BYTES + length;
    // Only with nothing of ours queued in the stream: bytes written past it would overtake it.
    const taken = socket.writableLength === 0 ? writeNow(socket, all) : 0;
    if (taken < total) socket.write(copyTail(all, taken, total - taken));
  }

  /** Writes what was corked (idempotent: a large frame may have written it before the tick came). */
  readonly uncork = (): void => {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  };
}

/** What the kernel takes at once of `parts` (bytes); 0 when it takes nothing or the socket failed. */
function writeNow(socket: Socket, parts: Uint8Array[]): number {
  if (socket.destroyed || socket.connecting) return 0;
  try {
    return writevSync(socketFd(socket), parts);
  } catch {
    return 0; // EAGAIN: the buffer is full; any other error, the stream's own write of the copy reports
  }
}

/** A copy of the `length` bytes of `parts` that follow their first `skip` bytes. */
function copyTail(parts: readonly Uint8Array[], skip: number, length: number): Buffer {
  const tail = Buffer.allocUnsafe(length);
  let at = 0;
  for (const p of parts) {
    if (skip >= p.byteLength) {
      skip -= p.byteLength;
      continue;
    }
    tail.set(skip === 0 ? p : p.subarray(skip), at);
    at += p.byteLength - skip;
    skip = 0;
  }
  return tail;
}
