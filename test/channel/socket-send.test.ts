/**
 * The socket transport's sending side: credit for a consumed message goes out before the app's answer to it.
 */
import { describe, expect, it } from 'vitest';
import { SOCKET_WINDOW, SocketTransport } from '../../src/channel/socket-transport.js';

describe('socket transport credit', () => {
  it('returns the credit of a message before delivering it, so it precedes the app\'s answer', () => {
    const wire: string[] = [];
    const t = new SocketTransport(2 ** 30, {
      send: () => wire.push('data'),
      socketWritable: () => true,
      sendCredit: (bytes) => wire.push(`credit ${bytes}`),
      sendWantCredit: () => wire.push('want'),
    });
    const body = new Uint8Array(SOCKET_WINDOW / 2);
    t.push(0, 1, body);
    t.push(0, 2, new Uint8Array(8)); // small: its credit waits for more
    t.read(10, (_tag, requestId) => wire.push(`deliver ${requestId}`));
    expect(wire).toEqual([`credit ${body.length + 64}`, 'deliver 1', 'deliver 2']);
  });
});
