/**
 * Facts about the process at the other end of a connected Unix socket, from the kernel (SO_PEERCRED).
 */
import type { Socket } from 'node:net';
import { native, type PeerCredentials } from '../native.js';

/** The descriptor behind a connected net.Socket (Node keeps it on the internal handle). */
export function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no descriptor');
  return fd;
}

/** pid, uid and gid of the peer, as the kernel recorded them at connect time. */
export function peerCredentialsOf(socket: Socket): PeerCredentials {
  return native.peerCredentials(socketFd(socket));
}
