import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatResourceName } from '../../src/index.js';
import { native } from '../../src/native.js';
import { selfIdentity } from '../../src/cleanup/liveness.js';
import { repoRoot } from '../helpers/child.js';
import { uniqueApp } from '../helpers/names.js';

function shmx(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: repoRoot, encoding: 'utf8' });
}

/** A process that existed and is now dead and reaped: its identity is stale. */
function deadIdentity(): { pid: number; startTime: number } {
  const out = execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return { pid: Number(out), startTime: 12345 };
}

describe('shmx command line', () => {
  it('ls shows objects and their creator; sweep --dry-run removes nothing; sweep removes only the dead', () => {
    const serverApp = uniqueApp('cli');
    const stale = formatResourceName({
      kind: 'sa', serverApp, creator: deadIdentity(), clientApp: 'web', session: 7, part: 'arena.h',
    });
    const live = formatResourceName({
      kind: 'sa', serverApp, creator: selfIdentity(), clientApp: 'web', session: 8, part: 'arena.h',
    });
    native.shmCreate(stale, 4096, 0o600);
    native.shmCreate(live, 4096, 0o600);
    try {
      const ls = shmx('ls', '--server-app', serverApp);
      expect(ls.status).toBe(0);
      expect(ls.stdout).toContain(stale);
      expect(ls.stdout).toContain(live);
      expect(ls.stdout).toMatch(/\(dead\)/);
      expect(ls.stdout).toContain('2 object(s)');

      const dry = shmx('sweep', '--dry-run', '--server-app', serverApp);
      expect(dry.stdout).toContain(`would remove shm ${stale}`);
      expect(existsSync(`/dev/shm/${stale}`)).toBe(true);

      const sweep = shmx('sweep', '--server-app', serverApp, '--json');
      const report = JSON.parse(sweep.stdout) as { removed: Array<{ name: string }>; kept: number };
      expect(report.removed.map((r) => r.name)).toEqual([stale]);
      expect(report.kept).toBe(1);
      expect(existsSync(`/dev/shm/${stale}`)).toBe(false);
      expect(existsSync(`/dev/shm/${live}`)).toBe(true);
    } finally {
      native.shmUnlink(stale);
      native.shmUnlink(live);
    }
  });

  it('rejects unknown commands and options with usage and exit code 2', () => {
    expect(shmx('frobnicate').status).toBe(2);
    expect(shmx('ls', '--bogus').status).toBe(2);
    expect(shmx('--help').status).toBe(0);
  });
});
