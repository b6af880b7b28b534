/**
 * One live server per server app. The lock is a listening socket in Linux's abstract namespace: binding it is
 * atomic, and the kernel releases it the instant its holder dies, however it dies — so a new server starts
 * cleanly over a crashed one without trusting any file it left.
 */
import { createServer, type Server } from 'node:net';
import { ShmxError } from '../errors.js';

/** Holds the lock of `serverApp` until `release()`. Rejects with ESERVERRUNNING while another server holds it. */
export async function acquireInstanceLock(serverApp: string): Promise<{ release(): Promise<void> }> {
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(new ShmxError('ESERVERRUNNING', `a server of app '${serverApp}' is already running`, {
          resource: serverApp,
        }));
      } else {
        reject(err);
      }
    });
    // Per user: another local user cannot block this user's server by taking the name first.
    server.listen(`\0shmx.server.${process.getuid?.() ?? 0}.${serverApp}`, resolve);
  });
  server.unref();
  return {
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
