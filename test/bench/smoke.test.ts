/**
 * The benchmark suite runs: `--smoke --check` (tiny counts, no timing asserted) over the shm path and its `net`
 * baseline, through every suite, and the report renders from what it wrote. Proves the harness, the peer
 * roles, the checks and the generator work — not how fast anything is.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'shmx-bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('runs every suite with --smoke --check and renders the report', { timeout: 180_000 }, async () => {
  // The suite measures the compiled library: build it if this checkout has not (CI's typecheck has).
  if (!existsSync(join(root, 'dist', 'index.js'))) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root });
  execFileSync('npx', ['tsc', '-p', 'bench/tsconfig.json'], { cwd: root });
  const out = join(dir, 'results.json');
  const run = spawnSync(process.execPath, ['dist-bench/run.js', '--smoke', '--check', '--paths', 'shm', '--out', out], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(run.stderr).toContain('0 failure(s)');
  expect(run.status).toBe(0);
  const results = JSON.parse(readFileSync(out, 'utf8'));
  expect(results.failures).toEqual([]);
  expect(results.rtt.cells.shm['64'].summary.count).toBeGreaterThan(0);
  expect(results.rtt.cells.net['64'].summary.count).toBeGreaterThan(0);
  expect(Object.keys(results.throughput.median).sort()).toEqual(['net', 'shm']);
  expect(results.sweep.removed).toBe(results.sweep.objects);
  const { performanceMarkdown } = await import(join(root, 'dist-bench', 'report.js'));
  const { markdown } = performanceMarkdown(results);
  expect(markdown).toMatch(/^<!-- bench:begin -->[\s\S]*### Round trip vs payload size[\s\S]*<!-- bench:end -->$/);
});
