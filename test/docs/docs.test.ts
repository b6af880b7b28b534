/**
 * Runnable docs: the complete programs of README.md and docs/guide.md run as written, under tsx (what the
 * README recommends), as real processes, against this checkout's sources; and `npm start` (examples/demo.ts)
 * runs. The same programs compiled to JavaScript run against the packed package in test/package/pack.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/child.js';
import { codeBlocks, isolatedEnv, objectsOf, programFiles, runPair } from './programs.js';

const readme = join(repoRoot, 'README.md');
const guide = join(repoRoot, 'docs', 'guide.md');
const dirs: string[] = [];

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Writes a document's program into a fresh folder, `'shmx'` pointing at this checkout's sources. */
function writeProgram(markdown: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'shmx-docs-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'tmp'));
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules')); // tsx, pino
  const entry = pathToFileURL(join(repoRoot, 'src', 'index.ts')).href;
  writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
  for (const [file, code] of programFiles(markdown)) {
    writeFileSync(join(dir, file), code.replaceAll("from 'shmx'", `from '${entry}'`));
  }
  return dir;
}

const tsx = [process.execPath, '--import', 'tsx'];

describe('runnable docs', () => {
  it('every program file in the docs is one this test runs (a new one must be added here)', () => {
    expect([...programFiles(readme).keys()].sort()).toEqual(['client.ts', 'server.ts', 'universe.ts']);
    expect([...programFiles(guide).keys()].sort()).toEqual(['client.ts', 'main.ts', 'server.ts', 'universe.ts', 'worker.ts']);
    // Program files are TypeScript modules that import shmx the way a user does.
    for (const doc of [readme, guide]) {
      for (const block of codeBlocks(doc).filter((b) => b.file !== undefined)) expect(block.lang).toBe('ts');
    }
  });

  it("README's minimal program: the client prints the server's sum; nothing is left after Ctrl-C", async () => {
    const dir = writeProgram(readme);
    const run = await runPair({
      cwd: dir,
      command: tsx,
      env: isolatedEnv(process.env, dir),
      server: 'server.ts',
      serverReady: /listening on/,
      clients: ['client.ts'],
      stop: 'SIGINT',
    });
    expect(run.clients[0], JSON.stringify(run)).toMatchObject({ code: 0 });
    expect(run.clients[0]!.stdout).toContain('2097152 doubles, sum 1048576');
    expect(run.server, JSON.stringify(run)).toMatchObject({ code: 0 });
    expect(objectsOf(run)).toEqual([]);
  }, 300_000);

  it("the guide's programs: server, client with back-off, and the Worker example under tsx", async () => {
    const dir = writeProgram(guide);
    const run = await runPair({
      cwd: dir,
      command: tsx,
      env: isolatedEnv(process.env, dir),
      server: 'server.ts',
      clients: ['client.ts', 'main.ts'], // the client retries until the server listens
      stop: 'SIGTERM',
    });
    for (const client of run.clients) expect(client, JSON.stringify(run)).toMatchObject({ code: 0 });
    expect(run.clients[1]!.stdout).toContain('worker: 1048576 bytes back');
    expect(run.clients[1]!.stdout).toContain('worker: 15 bytes back');
    expect(run.server, JSON.stringify(run)).toMatchObject({ code: 0 });
    expect(objectsOf(run)).toEqual([]);
  }, 300_000);

  it('npm start (examples/demo.ts) runs to the end and leaves nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shmx-demo-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'tmp'));
    const result = spawnSync('/usr/bin/unshare', ['--net', '--', ...tsx, join(repoRoot, 'examples', 'demo.ts')], {
      cwd: repoRoot,
      env: isolatedEnv(process.env, dir),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain('[demo] objects left after the server stopped: 0');
  }, 300_000);
});
