/**
 * Each test gets its own app names and run directory: tests run in parallel, and a server's start-up sweep
 * removes stale objects of its own app only. The names carry the run tag (names.ts), so the leak gate sees
 * everything the sessions of these apps create.
 */
import { mkdirSync } from 'node:fs';
import type { AppDefinition, ServerAppDefinition, UniverseDefinition } from '../../src/index.js';
import { runTag, uniqueTag } from './names.js';

/** This run's run directories live under here; the leak gate removes it at the end of the run. */
export const runDirectoryRoot = `/tmp/shmx-test/${runTag}`;

/** A fresh run directory for one test's server app. */
export function testRunDirectory(tag: string = uniqueTag()): string {
  const dir = `${runDirectoryRoot}/${tag}`;
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

/** A universe with one server app and one accepted client app (plus extras), all uniquely named. */
export function testUniverse(overrides: {
  server?: Partial<ServerAppDefinition>;
  client?: Partial<AppDefinition>;
  extraApps?: string[];
} = {}): { definition: UniverseDefinition; serverApp: string; clientApp: string } {
  const tag = uniqueTag();
  const serverApp = `srv${tag}`;
  const clientApp = `cli${tag}`;
  const runDirectory = testRunDirectory(tag);
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
