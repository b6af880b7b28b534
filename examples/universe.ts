/**
 * The one definition both programs import: which apps exist and who may talk to whom.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Universe } from '../src/index.js';

export const SERVER_APP = 'pricing';
export const CLIENT_APP = 'trader';

export const universe = new Universe({
  apps: [{ name: CLIENT_APP, uid: process.getuid?.() }],
  servers: [
    {
      name: SERVER_APP,
      acceptedClients: [CLIENT_APP],
      permissions: 'user',
      runDirectory: join(tmpdir(), `shmx-demo-${process.getuid?.() ?? 0}`),
    },
  ],
});
