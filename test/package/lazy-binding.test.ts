/**
 * Importing shmx does not load the addon; the first call that needs it does, and an addon that cannot be
 * loaded is one ShmxError (ENOADDON) naming the platform, the Node ABI and how to build it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/child.js';

/** Runs an ES module snippet in a fresh node (through tsx, importing the sources) and returns its JSON line. */
function run(code: string, env: Record<string, string> = {}): Record<string, unknown> {
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

const index = JSON.stringify(join(repoRoot, 'src', 'index.ts'));
// Any mapped file ending in .node is an addon (the prebuild is node.abi<N>.glibc.node, a build shmx.node).
const addonMapped = `() => /\\.node$/m.test((await import('node:fs')).readFileSync('/proc/self/maps', 'utf8'))`;

describe('lazy binding', () => {
  it('importing shmx maps no addon; the first native call loads it', () => {
    const report = run(`
      const mapped = ${addonMapped.replace('() =>', 'async () =>')};
      const shmx = await import(${index});
      const afterImport = await mapped();
      new shmx.Universe({ apps: [{ name: 'a' }], servers: [{ name: 's', acceptedClients: ['a'] }] });
      const afterUniverse = await mapped();
      // A call into the addon (listResources would do too, but it scans everyone's objects, racing other runs).
      const { native } = await import(${JSON.stringify(join(repoRoot, 'src', 'native.ts'))});
      native.isAlive(process.pid);
      console.log(JSON.stringify({ afterImport, afterUniverse, afterCall: await mapped() }));
    `);
    expect(report).toEqual({ afterImport: false, afterUniverse: false, afterCall: true });
  });

  it('a missing addon fails the first call with ENOADDON naming platform, ABI and the build command', () => {
    const report = run(
      `
      const shmx = await import(${index});
      new shmx.Universe({ apps: [{ name: 'a' }], servers: [{ name: 's', acceptedClients: ['a'] }] });
      const errors = [];
      for (let i = 0; i < 2; i++) {
        try { shmx.listResources(); } catch (err) {
          errors.push({ name: err.name, code: err.code, isShmx: err instanceof shmx.ShmxError, message: err.message });
        }
      }
      console.log(JSON.stringify({ errors }));
    `,
      { SHMX_ADDON: '/nonexistent/shmx.node' },
    );
    const errors = report.errors as Array<Record<string, unknown>>;
    expect(errors).toHaveLength(2); // the second call fails the same way, it does not see a half-loaded binding
    for (const err of errors) {
      expect(err).toMatchObject({ name: 'ShmxError', code: 'ENOADDON', isShmx: true });
      const message = err.message as string;
      expect(message).toContain(`${process.platform}-${process.arch}`);
      expect(message).toContain(`ABI ${process.versions.modules}`);
      expect(message).toContain('/nonexistent/shmx.node');
      expect(message).toContain('--build-from-source');
    }
  });
});
