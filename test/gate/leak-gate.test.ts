/**
 * The leak gate itself (test/global-setup.ts): vitest is run, with the suite's own configuration, on a fixture
 * test that leaves objects behind, and must exit non-zero naming each of them; on a fixture that cleans up it
 * must exit 0 even though another run's object lies in /dev/shm at the same time.
 *
 * The nested run gets its own tag, this run's tag plus 'g': the gate of the nested run counts only its own
 * objects, and whatever it might leave is still this run's in the eyes of this run's gate.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/native.js';
import { GATE } from '../global-setup.js';
import { Child, repoRoot, type ChildResult } from '../helpers/child.js';
import { newRunTag, RUN_TAG_ENV, runTag } from '../helpers/names.js';
import { listObjects, mqueueMounted, removeListed } from '../helpers/objects.js';

const nestedTag = `${runTag}g`;
const scratch: string[] = [];

afterEach(() => {
  // Whatever the nested runs made and their gate did not remove (the gate failing to remove is a failure too,
  // asserted below; this is the cleanup).
  removeListed(listObjects((n) => n.includes(nestedTag)));
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** `vitest run` of one gate fixture, as `npm test` runs vitest, under the nested tag. */
async function runFixture(fixture: 'leaks' | 'clean', env: Record<string, string> = {}): Promise<ChildResult & { output: string }> {
  const vitest = join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs');
  const child = Child.command(process.execPath, [vitest, 'run', '--config', 'test/fixtures/gate/vitest.config.ts', fixture], {
    env: { ...process.env, [RUN_TAG_ENV]: nestedTag, NO_COLOR: '1', ...env },
  });
  const result = await child.exited;
  return { ...result, output: `${result.stdout}\n${result.stderr}` };
}

describe('the leak gate', () => {
  it('fails the run (exit code 1) when a test leaves objects, names each of them, and then removes them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shmx-gate-'));
    scratch.push(dir);
    const reportFile = join(dir, 'report.json');
    const result = await runFixture('leaks', { SHMX_GATE_REPORT: reportFile });
    expect(existsSync(reportFile), result.output).toBe(true);
    const made = JSON.parse(readFileSync(reportFile, 'utf8')) as { segment: string; queue: string | null; serverApp: string };

    expect(result.code, result.output).toBe(1);
    expect(result.output).toContain(`${GATE} (run ${nestedTag}): FAILED`);
    expect(result.output).toContain(`/dev/shm/${made.segment}`);
    // The session's objects: found through the app names, which carry the tag.
    expect(result.output).toMatch(new RegExp(`/dev/shm/shmx\\.sa\\.${made.serverApp}\\.`));
    expect(result.output).toMatch(new RegExp(`/dev/shm/shmx\\.aa\\.${made.serverApp}\\.`));
    if (made.queue !== null && mqueueMounted()) expect(result.output).toContain(`/dev/mqueue/${made.queue}`);
    if (!mqueueMounted()) expect(result.output).toContain('/dev/mqueue is not mounted');
    // The gate removed them after naming them.
    expect(listObjects((n) => n.includes(nestedTag))).toEqual({ segments: [], queues: mqueueMounted() ? [] : null });
  }, 600_000);

  it('passes a run that removes what it creates, and does not blame another run for its objects', async () => {
    const foreign = `shmx.t.gateforeign.${newRunTag()}`; // another run's tag
    native.shmCreate(foreign, 4096, 0o600);
    try {
      const result = await runFixture('clean');
      expect(result.code, result.output).toBe(0);
      expect(result.output).toContain(`${GATE} (run ${nestedTag}): nothing of this run left`);
      expect(result.output).not.toContain(foreign);
      expect(existsSync(`/dev/shm/${foreign}`)).toBe(true);
    } finally {
      native.shmUnlink(foreign);
    }
  }, 600_000);
});
