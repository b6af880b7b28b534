/**
 * Each test gets its own app names and run directory: tests run in parallel, and a server's start-up sweep
 * removes stale objects of its own app only.
 */
import { mkdirSync } from 'node:fs';
import type { AppDefinition, ServerAppDefinition } from '../../src/index.js';

let counter = 0;

export interface UniverseDefinition {
  apps: AppDefinition[];
  servers: ServerAppDefinition[];
}

/** A universe with one server app and one accepted client app (plus extras), all uniquely named. */
export function testUniverse(overrides: {
  server?: Partial<ServerAppDefinition>;
  client?: Partial<AppDefinition>;
  extraApps?: string[];
} = {}): { definition: UniverseDefinition; serverApp: string; clientApp: string } {
  const tag = `${process.pid.toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const serverApp = `srv${tag}`;
  const clientApp = `cli${tag}`;
  const runDirectory = `/tmp/shmx-test/${tag}`;
  mkdirSync(runDirectory, { recursive: true, mode: 0o755 });
  const extras = (overrides.extraApps ?? []).map((name) => ({ name: `${name}${tag}` }));
  return {
    serverApp,
    clientApp,
    definition: {
      apps: [{ name: clientApp, ...overrides.client }, ...extras],
      servers: [
        {
          name: serverApp,
          acceptedClients: [clientApp],
          runDirectory,
          ...overrides.server,
        },
      ],
    },
  };
}

/** Names of shmx objects in /dev/shm containing `fragment` (an app name). */
export async function shmObjectsOf(fragment: string): Promise<string[]> {
  const { readdirSync } = await import('node:fs');
  return readdirSync('/dev/shm').filter((n) => n.startsWith('shmx') && n.includes(`.${fragment}.`));
}
