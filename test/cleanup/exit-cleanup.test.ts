/**
 * Exit-time cleanup (src/cleanup/exit-cleanup.ts), on real processes: a child that owns a server, its arenas, a
 * session and an `mq` channel ends by an uncaught exception, an unhandled rejection, process.exit, SIGTERM or
 * SIGINT with no handler of its own — and nothing of it is left, and it still ends the way it would have without
 * shmx (exit code, or death by the very signal). A child with its own SIGTERM handler keeps its behaviour.
 * The test workers run with SHMX_EXIT_CLEANUP=off (vitest.config.ts, so that the leak gate sees leaks of tests);
 * these children turn it on.
 */
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { sweepStale } from '../../src/index.js';
import { Child } from '../helpers/child.js';
import { listObjects, mqueueMounted } from '../helpers/objects.js';
import { testUniverse } from '../helpers/universe.js';

const children: Child[] = [];
const apps: string[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) await c.kill('SIGKILL');
  // What a failed test left: its creator is dead now, so the sweep takes it.
  for (const app of apps.splice(0)) sweepStale({ serverApp: app });
});

function start(mode: string): { child: Child; serverApp: string; runDirectory: string } {
  const { definition, serverApp, clientApp } = testUniverse();
  apps.push(serverApp);
  const child = new Child('exit-cleanup-owner.ts', [JSON.stringify({ definition, serverApp, clientApp, mode })], {
    env: { ...process.env, SHMX_EXIT_CLEANUP: 'on' },
  });
  children.push(child);
  return { child, serverApp, runDirectory: definition.servers[0]!.runDirectory! };
}

/** Segments, queues and run-directory files of one server app. */
function leftOf(serverApp: string, runDirectory: string): string[] {
  const { segments, queues } = listObjects((n) => n.includes(`.${serverApp}.`));
  return [...segments, ...(queues ?? []), ...readdirSync(runDirectory)];
}

/** What the child owns once ready: both arenas (header + data), the ledger, the queues, three files. */
function expectOwnsEverything(serverApp: string, runDirectory: string): void {
  const left = leftOf(serverApp, runDirectory);
  expect(left.filter((n) => n.startsWith(`shmx.sa.${serverApp}.`)).length).toBeGreaterThanOrEqual(2);
  expect(left.filter((n) => n.startsWith(`shmx.aa.${serverApp}.`)).length).toBeGreaterThanOrEqual(2);
  expect(left.filter((n) => n.startsWith(`shmx.lg.${serverApp}.`))).toHaveLength(1);
  if (mqueueMounted()) expect(left.filter((n) => n.startsWith(`shmx.mq.${serverApp}.`))).toHaveLength(2);
  expect(left.filter((n) => !n.startsWith('shmx.')).sort()).toEqual([`${serverApp}.ctl`, `${serverApp}.lock`, `${serverApp}.sock`].sort());
}

describe('exit-time cleanup', () => {
  it.each([
    ['throw', 1],
    ['reject', 1],
    ['exit', 3],
  ])('a process ending by %s leaves nothing behind and keeps its exit code', async (mode, code) => {
    const { child, serverApp, runDirectory } = start(mode);
    await child.waitFor((e) => e.event === 'ready');
    const result = await child.exited;
    expect(result.signal).toBeNull();
    expect(result.code).toBe(code);
    expect(leftOf(serverApp, runDirectory)).toEqual([]);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('%s with no handler of the app: nothing left, and the process still dies by it', async (signal) => {
    const { child, serverApp, runDirectory } = start('wait');
    await child.waitFor((e) => e.event === 'ready');
    expectOwnsEverything(serverApp, runDirectory);
    const result = await child.kill(signal);
    expect(result.signal).toBe(signal);
    expect(leftOf(serverApp, runDirectory)).toEqual([]);
  });

  it.each(['own-handler', 'own-once-first'])('an app with its own SIGTERM handler keeps its behaviour: shmx removes nothing, the process lives on (%s)', async (mode) => {
    const { child, serverApp, runDirectory } = start(mode);
    await child.waitFor((e) => e.event === 'ready');
    const before = leftOf(serverApp, runDirectory).sort();
    child.process.kill('SIGTERM');
    await child.waitFor((e) => e.event === 'handled');
    expect(child.running).toBe(true);
    expect(leftOf(serverApp, runDirectory).sort()).toEqual(before);
    child.send('exit'); // the app's own way out: process.exit(0), which runs the exit hook
    const result = await child.exited;
    expect(result.code).toBe(0);
    expect(leftOf(serverApp, runDirectory)).toEqual([]);
  });
});
