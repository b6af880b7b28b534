import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatResourceName } from '../../src/index.js';
import { native } from '../../src/native.js';
import { selfIdentity } from '../../src/cleanup/liveness.js';
import { repoRoot } from '../helpers/child.js';
import { uniqueApp } from '../helpers/names.js';
import { parseCommandLine, UsageError } from '../../src/cli/usage.js';
// The usage checks below run side by side (each start compiles the CLI with tsx): the async runner.
import { shmx as shmxAsync } from '../control/helpers.js';

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
  }, 60_000);

  it('rejects unknown commands, flags, extra or missing arguments and bad app names as usage errors', () => {
    for (const args of [
      ['frobnicate'], ['ls', '--bogus'], ['sweep', '--dry-run', 'extra-arg'], ['ls', '--server-app', 'Bad Name!'],
      ['status'], ['status', 'Bad Name!'], ['session', 'app'], ['close', 'app', 'id', 'more'], ['top', 'app', '--interval', '0'],
      ['status', 'app', '--run-dir', 'relative'], [], ['--version', 'x'], ['metrics', 'app', '--json'],
    ]) {
      expect(() => parseCommandLine(args), args.join(' ')).toThrow(UsageError);
    }
    expect(parseCommandLine(['close', 'app', 'app.1.2', '--reason', 'local-close'])).toMatchObject({
      command: 'close', args: { 'server-app': 'app', 'session-id': 'app.1.2' }, flags: { reason: 'local-close' },
    });
  });

  it('a usage error exits 2 with the reason and the usage on stderr', async () => {
    const cases = [['sweep', '--dry-run', 'extra-arg'], ['ls', '--server-app', 'Bad Name!'], ['frobnicate']];
    const results = await Promise.all(cases.map((args) => shmxAsync(args)));
    for (const r of results) {
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^shmx: .+\n\nusage: shmx/);
      expect(r.stdout).toBe('');
    }
    expect(results[0]!.stderr).toContain("unexpected argument 'extra-arg'");
    expect(results[1]!.stderr).toContain("'Bad Name!'");
  }, 120_000);

  it('--help lists every command and flag; --version prints the version', () => {
    const help = shmx('--help');
    expect(help.status).toBe(0);
    for (const text of ['shmx ls', 'shmx sweep [--dry-run] [--server-app NAME] [--json]', 'shmx status', 'shmx sessions', 'shmx session',
      'shmx arenas', 'shmx resources', 'shmx close', '--reason', 'shmx metrics', 'shmx top', '--interval', '--count', '--run-dir', '--version']) {
      expect(help.stdout).toContain(text);
    }
    const version = shmx('--version');
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  }, 60_000);

  it('a removal that fails exits 1 with a readable message, not a log line', () => {
    // A private mount namespace whose /dev/shm is a read-only tmpfs holding one stale object: unlink fails (EROFS).
    const stale = formatResourceName({ kind: 'sa', serverApp: 'clifail', creator: deadIdentity(), clientApp: 'web', session: 7, part: 'arena.h' });
    const script = `mount -t tmpfs none /dev/shm && touch /dev/shm/${stale} && mount -o remount,ro /dev/shm && ` +
      `exec '${process.execPath}' --import tsx src/cli/main.ts sweep --server-app clifail`;
    const r = spawnSync('unshare', ['-m', 'sh', '-c', script], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`shmx: could not remove shm ${stale}: EROFS (shm_unlink '${stale}': Read-only file system (EROFS))`);
    expect(r.stderr).not.toContain('{"level"');
  }, 60_000);
});
